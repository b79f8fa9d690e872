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
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from meterql.catalog import Catalog, Table, TableStats
from meterql.engine.bind import BoundQuery
from meterql.engine.hybrid import Deltas, NoDeltas
from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.costs import (
    CostConstants,
    RouteCost,
    cheapest,
    constants_for,
    estimate_routes,
)
from meterql.engine.planner.plan import Plan
from meterql.engine.planner.push_whole_query import push_whole_query
from meterql.errors import StaleReplicaError
from meterql.wording import approx_duration, format_duration

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
    price: Callable[[dict[str, str | None]], RouteCost] | None = None,
) -> Route:
    """The route of one table of an ``auto`` source. ``price``, given the candidate routes
    (name -> how its delta is read, for hybrid), answers the cheapest (``costs.py``); without
    it the freshest route the bound allows is taken.

    >>> from datetime import datetime, timezone
    >>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> now = datetime(2026, 1, 1, 0, 3, tzinfo=timezone.utc)
    >>> print(choose_route("pg.public.e", t0, 300, now).reason)
    synced 3m ago, within the bound 5m
    >>> print(choose_route("pg.public.e", t0, 60, now).reason)
    replica synced 3m ago, bound 1m; no delta to add (a full sync, or changed columns)
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
    synced = f"replica synced {format_duration(age)} ago"
    if within:
        why = f"{synced}, within the bound {bound}"
        if price is None:
            return Route(table, "replica", f"synced {format_duration(age)} ago, within the "
                                           f"bound {bound}")
        best = price({"replica": None, "source": None})
        return Route(table, best.route, f"synced {format_duration(age)} ago, within the bound "
                                        f"{bound}; {_said(best)}")
    how = delta()
    why = f"{synced}, bound {bound}"
    if how is not None:
        if price is None:
            return Route(table, "hybrid", f"{why}; plus its delta ({how})", delta=how)
        best = price({"hybrid": how, "source": None})
        return Route(table, best.route, f"{why}; {_said(best)}",
                     delta=how if best.route == "hybrid" else None)
    return Route(table, "source", f"{why}; no delta to add (a full sync, or changed columns)")


def _sent_whole(bound: BoundQuery, table: Table, catalog: Catalog) -> bool:
    """Whether the query, with this table read from its source, would be sent whole to it."""
    if any(t.full_name != table.full_name for _, t in bound.tables):
        return False
    route = {table.full_name: Route(table.full_name, "source", "")}
    ctx = PlanContext(bound, catalog, "", dict(catalog.settings), route)
    return isinstance(push_whole_query(ctx), Plan)


def _said(cost: RouteCost) -> str:
    """A cost's reason without its route's name (the route line names it)."""
    return cost.reason.removeprefix(f"{cost.route}: ")


def route_tables(
    bound: BoundQuery, catalog: Catalog, watermark: Callable[[str], dict[str, Any] | None],
    max_staleness: float | None, now: datetime, unreachable: frozenset[str] = frozenset(),
    deltas: Deltas | None = None, memo: dict[tuple[Any, ...], RouteCost] | None = None,
) -> dict[str, Route]:
    """The route of every table of an ``auto`` source the bound query reads;
    ``unreachable``: sources found unreachable (their tables fail over to the replica);
    ``deltas``: which tables have an exact delta (the hybrid route). Among the routes the
    bound allows, the cheapest by the cost model (``costs.py``) is taken; ``memo`` keeps the
    estimates of one bound query (they change only with the statistics, the constants and the
    replica's row count)."""
    deltas = deltas or NoDeltas()
    refs: dict[str, list[int]] = {}
    entries: dict[str, Table] = {}
    for ref, (_, table) in enumerate(bound.tables):
        refs.setdefault(table.full_name, []).append(ref)
        entries[table.full_name] = table
    routes: dict[str, Route] = {}
    for name, table in entries.items():
        source = catalog.source(table.source)
        if source.mode != "auto":
            continue
        mark = watermark(name)
        synced_at = None if mark is None else datetime.fromisoformat(mark["synced_at"])
        replica_rows = None if mark is None else mark.get("rows")
        price = functools.partial(_price, bound, refs[name], table, catalog, replica_rows,
                                  {} if memo is None else memo)
        routes[name] = choose_route(name, synced_at, max_staleness, now,
                                    unreachable=source.name in unreachable,
                                    delta=functools.partial(deltas.delta_of, name), price=price)
    return routes


def _price(bound: BoundQuery, refs: list[int], table: Table, catalog: Catalog,
           replica_rows: int | None, memo: dict[tuple[Any, ...], RouteCost],
           candidates: dict[str, str | None]) -> RouteCost:
    """The cheapest of ``candidates`` for every reference of one table, with its reason."""
    stats = catalog.statistics(table.full_name)
    constants = constants_for(catalog, table.source)
    config = catalog.sync_configs(table.source).get((table.schema, table.name))
    cluster_by = config[4] if config is not None else ()
    key = (table.full_name, replica_rows, tuple(candidates.items()),
           None if stats is None else stats.read_at, constants, cluster_by)
    known = memo.get(key)
    if known is None:
        if len(memo) >= 64:  # (a new row count after each sync: the old ones go)
            memo.clear()
        known = memo[key] = _cheapest(bound, refs, table, stats, constants, replica_rows,
                                      candidates, _sent_whole(bound, table, catalog),
                                      cluster_by)
    return known


def _cheapest(bound: BoundQuery, refs: list[int], table: Table, stats: TableStats | None,
              constants: CostConstants, replica_rows: int | None,
              candidates: dict[str, str | None], whole: bool,
              cluster_by: tuple[str, ...] = ()) -> RouteCost:
    per_ref = [estimate_routes(bound, ref, table, stats, replica_rows, constants, whole,
                               cluster_by) for ref in refs]
    costs: dict[str, RouteCost] = {}
    for kind, how in candidates.items():
        base = "replica" if kind == "hybrid" else kind
        if any(base not in est for est in per_ref):
            continue
        parts = [est[base] for est in per_ref]
        top = max(parts, key=lambda c: c.ms)
        ms = sum(c.ms for c in parts)
        reads = "" if len(parts) == 1 else f" ({len(parts)} reads)"
        if kind != "hybrid":
            costs[kind] = replace(top, ms=ms, rows_read=sum(c.rows_read for c in parts),
                                  reason=top.reason + reads, would=top.would + reads)
            continue
        # the delta: the replica's last cursor value and one read at the source (merge also
        # reads every key of the source, as its sync does: a narrow read, counted as moved)
        ms += 2 * constants.round_trip_ms
        if how and "every key" in how:
            ms += (replica_rows or 0) * constants.transfer_row_ns / 1e6
        scan = top.reason.removeprefix("replica: ").rsplit(", ~", 1)[0]
        costs[kind] = RouteCost(
            "hybrid", ms, sum(c.rows_read for c in parts),
            f"hybrid: {scan}{reads} plus its delta ({how}), ~{approx_duration(ms)}",
            f"hybrid (replica plus delta) would take ~{approx_duration(ms)}")
    if not costs:
        raise RuntimeError(f"no route of {table.full_name} could be priced")
    return cheapest(costs)
