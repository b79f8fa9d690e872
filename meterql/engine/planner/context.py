"""What every planner rule reads: the bound query, the catalog, the query text, the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meterql.catalog import Catalog
from meterql.engine.bind import BoundQuery

if TYPE_CHECKING:
    from meterql.engine.planner.routes import Route


@dataclass(frozen=True)
class PlanContext:
    """The input every rule shares; rules never change it (they copy trees before rewriting).

    Attributes:
        bound: the query with its names resolved.
        catalog: sources, tables and their statistics.
        sql: the query as written.
        settings: the workspace settings in force.
        routes: the route of each table of an ``auto`` source (``planner/routes.py``).
    """

    bound: BoundQuery
    catalog: Catalog
    sql: str
    settings: dict[str, Any]
    routes: dict[str, Route] = field(default_factory=dict)

    def reads_replica(self, table: str, source: str) -> bool:
        """Whether a table (full name) is read from its local replica: every table of a
        ``sync`` source, and the tables of an ``auto`` source routed to the replica (or to the
        replica plus its delta: the residual reads both)."""
        mode = self.catalog.source(source).mode
        if mode == "auto":
            route = self.routes.get(table)
            return route is not None and route.kind in ("replica", "hybrid")
        return mode == "sync"
