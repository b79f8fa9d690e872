"""What planner rules read and return: the bound query, the catalog, and the plan so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from meterql.catalog import Catalog
from meterql.engine.bind import BoundQuery
from meterql.engine.planner.plan import Fragment, Plan


@dataclass(frozen=True)
class PlanContext:
    """The input and output of every rule: rules return a new context, never mutate one.

    Attributes:
        bound: the query with its names resolved.
        catalog: sources, tables and their statistics.
        sql: the query as written.
        settings: the workspace settings in force.
        plan: the plan so far (``None`` until a rule shapes one).
        notes: why the plan has its shape, for EXPLAIN.
        residual: the residual being built (the query with pushed parts replaced), before a
            plan exists.
        fragments: fragments made so far, before a plan exists.
        handled: table references already read by a fragment (no scan needed).
    """

    bound: BoundQuery
    catalog: Catalog
    sql: str
    settings: dict[str, Any]
    plan: Plan | None = None
    notes: list[str] = field(default_factory=list)
    residual: exp.Expression | None = None
    fragments: list[Fragment] = field(default_factory=list)
    handled: frozenset[int] = frozenset()
