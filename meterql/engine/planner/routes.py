"""Freshness routing: for each table of a source in ``auto`` mode, read its replica or the
source, by the query's bound ``max_staleness`` (seconds; ``0`` means live, ``None`` accepts a
replica of any age).

One decision per table, made before the rules run and kept in ``PlanContext.routes``:

- **replica** when the table has been synced and its watermark's age is within the bound;
- **hybrid** when the replica is older than the bound but the table's sync strategy defines
  its delta exactly (``append``, ``merge``): the replica plus the source's rows past the
  watermark, combined as the next sync would combine them (``meterql.sync.delta``);
- **source** otherwise (a direct read, as in ``direct`` mode);
- **failover**: when the engine found the source unreachable, its tables are read from the
  replica if within the bound, and the query fails with ``StaleReplicaError`` otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from meterql.catalog import Catalog
from meterql.engine.hybrid import Deltas, NoDeltas
from meterql.errors import StaleReplicaError
from meterql.wording import format_duration

RouteKind = Literal["replica", "source", "hybrid"]


@dataclass(frozen=True)
class Route:
    """Where one table of an ``auto`` source is read from, and why (one line for EXPLAIN).

    >>> print(Route("pg.public.events", "replica", "synced 3m ago, within the bound 5m"))
    pg.public.events -> replica: synced 3m ago, within the bound 5m
    """

    table: str
    kind: RouteKind
    reason: str
    failover: bool = False
    delta: str | None = None  # hybrid: how the delta is read ("append on id")

    def __str__(self) -> str:
        return f"{self.table} -> {self.kind}: {self.reason}"

    def describe(self) -> dict[str, Any]:
        return {"table": self.table, "route": self.kind, "reason": self.reason,
                "failover": self.failover}

    @property
    def live(self) -> bool:
        """Whether the table is read as the source has it now (source or hybrid)."""
        return self.kind in ("source", "hybrid")


def bound_text(max_staleness: float | None) -> str:
    return "none" if max_staleness is None else format_duration(max_staleness)


def choose_route(
    table: str, synced_at: datetime | None, max_staleness: float | None, now: datetime,
    *, unreachable: bool = False, delta: Callable[[], str | None] = lambda: None,
) -> Route:
    """The route of one table of an ``auto`` source.

    >>> from datetime import datetime, timezone
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> now = datetime(2026, 1, 1, 0, 3, tzinfo=timezone.utc)
    >>> print(choose_route("pg.public.e", t0, 300, now).reason)
    synced 3m ago, within the bound 5m
    >>> print(choose_route("pg.public.e", t0, 60, now).reason)
    replica synced 3m ago, bound 1m
    >>> print(choose_route("pg.public.e", None, None, now).reason)
    not synced yet
    >>> print(choose_route("pg.public.e", t0, 0, now, delta=lambda: "append on id"))
    pg.public.e -> hybrid: replica synced 3m ago, bound 0s; plus its delta (append on id)
    """
    if synced_at is None:
        if unreachable:
            raise StaleReplicaError(
                f"{table} cannot be read: its source is unreachable and it has no replica "
                "yet", table=table, hint="sync the source once it can be reached")
        return Route(table, "source", "not synced yet")
    age = max(0.0, (now - synced_at).total_seconds())
    within = max_staleness is None or age <= max_staleness
    bound = bound_text(max_staleness)
    if unreachable:
        if not within:
            raise StaleReplicaError(
                f"{table} cannot be read: its source is unreachable and its replica was "
                f"synced {format_duration(age)} ago, past the bound {bound}",
                table=table,
                hint="loosen max_staleness to accept the replica, or retry once the source "
                     "can be reached")
        return Route(table, "replica",
                     f"failover: source unreachable, replica synced {format_duration(age)} ago, "
                     f"within the bound {bound}", failover=True)
    if within:
        return Route(table, "replica", f"synced {format_duration(age)} ago, within the bound "
                                       f"{bound}")
    how = delta()
    if how is not None:
        return Route(table, "hybrid", f"replica synced {format_duration(age)} ago, bound {bound}; "
                                      f"plus its delta ({how})", delta=how)
    return Route(table, "source", f"replica synced {format_duration(age)} ago, bound {bound}")


def route_tables(
    tables: Iterable[str], catalog: Catalog, watermark: Callable[[str], dict[str, Any] | None],
    max_staleness: float | None, now: datetime, unreachable: frozenset[str] = frozenset(),
    deltas: Deltas | None = None,
) -> dict[str, Route]:
    """The route of every table (full names) of an ``auto`` source among ``tables``;
    ``unreachable``: sources found unreachable (their tables fail over to the replica);
    ``deltas``: which tables have an exact delta (the hybrid route)."""
    deltas = deltas or NoDeltas()
    routes: dict[str, Route] = {}
    for table in dict.fromkeys(tables):
        source = catalog.source(table.split(".", 1)[0])
        if source.mode != "auto":
            continue
        mark = watermark(table)
        synced_at = None if mark is None else datetime.fromisoformat(mark["synced_at"])
        routes[table] = choose_route(table, synced_at, max_staleness, now,
                                     unreachable=source.name in unreachable,
                                     delta=functools.partial(deltas.delta_of, table))
    return routes
