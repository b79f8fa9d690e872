"""What every planner rule reads: the bound query, the catalog, the query text, the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meterql.catalog import Catalog
from meterql.engine.bind import BoundQuery


@dataclass(frozen=True)
class PlanContext:
    """The input every rule shares; rules never change it (they copy trees before rewriting).

    Attributes:
        bound: the query with its names resolved.
        catalog: sources, tables and their statistics.
        sql: the query as written.
        settings: the workspace settings in force.
    """

    bound: BoundQuery
    catalog: Catalog
    sql: str
    settings: dict[str, Any]
