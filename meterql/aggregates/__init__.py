"""Aggregates: named, versioned SQL that computes billable usage per customer and period."""

from meterql.aggregates.definition import (
    ENGINE_PARAMETERS,
    Aggregate,
    new_aggregate,
    parse_definition,
)
from meterql.aggregates.evaluate import WINDOWS, Cancel, Evaluation, periods, result_hash

__all__ = [
    "ENGINE_PARAMETERS",
    "WINDOWS",
    "Aggregate",
    "Cancel",
    "Evaluation",
    "new_aggregate",
    "parse_definition",
    "periods",
    "result_hash",
]
