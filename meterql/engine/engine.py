"""The engine: parse, bind, plan and execute a query against the catalog's sources."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from meterql.catalog import Catalog
from meterql.catalog.settings import parse_staleness
from meterql.connectors import Connector
from meterql.connectors.duckdb_errors import USER_FAULTS, query_fault
from meterql.connectors.lockdown import open_embedded
from meterql.engine.bind import BoundQuery, bind, check_params
from meterql.engine.execute import Executor, QueryControl
from meterql.engine.hybrid import Deltas, NoDeltas
from meterql.engine.limits import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S
from meterql.engine.parse import parse_query
from meterql.engine.plan_cache import PlanCache
from meterql.engine.planner import Plan, plan_query
from meterql.engine.planner.costs import RouteCost
from meterql.engine.planner.fragments import result_typing
from meterql.engine.planner.routes import route_tables
from meterql.engine.result import Result, plan_table, time_zone_table
from meterql.engine.shared_lock import SharedLock
from meterql.engine.time_zone import check_time_zone, in_time_zone, set_time_zone
from meterql.errors import (
    QueryError,
    SourceUnavailableError,
    StaleReplicaError,
    StatementNotAllowedError,
)
from meterql.sql_text import quote_ident
from meterql.wording import count


class Engine:
    """Plans and runs queries. The residual runs in an in-memory DuckDB owned by the engine."""

    def __init__(
        self,
        catalog: Catalog,
        connector: Callable[[str], Connector],
        watermark: Callable[[str], dict[str, Any] | None] = lambda table: None,
        *,
        files: Sequence[Path] = (),
        folders: Sequence[Path] = (),
        settings: dict[str, str] | None = None,
        deltas: Deltas | None = None,
        lake: Path | None = None,
        time_columns: Callable[[str], Sequence[str]] = lambda table: (),
    ) -> None:
        """``files`` and ``folders``: the only files its DuckDB may open (to attach the local
        store and replicas); everything else is refused (connectors/lockdown.py). ``deltas``:
        the replicas' deltas, for the hybrid route (``engine/hybrid.py``). ``lake``: the
        folder of the spark engine's Parquet snapshots unless the setting ``spark_storage``
        names another; ``time_columns(table)``: the columns a table's snapshots may be
        partitioned by (engine/spark/lake.py)."""
        self.catalog = catalog
        self._deltas = deltas or NoDeltas()
        self._watermark = watermark
        self._duck = open_embedded(files=files, folders=folders, settings=settings)
        self._executor = Executor(self._duck, connector, self._deltas)
        self._settings = settings
        self._connector = connector
        self._lake = lake
        self._time_columns = time_columns
        #: the spark engine's executor, made on first use (pyspark loads only then)
        self._spark: Any = None
        self._spark_lock = threading.Lock()
        #: a DuckDB per time zone, allowed no file at all, for the queries that read no table
        self._zoned: dict[str, Executor] = {}
        self._zoned_lock = threading.Lock()
        #: queries hold it shared; re-attaching a replica after a sync holds it alone
        self.replicas = SharedLock()
        self.plans: PlanCache[_Prepared] = PlanCache(
            catalog.settings["plan_cache_size"]
        )

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        """The engine's DuckDB (replicas are attached to it under their sources' names)."""
        return self._duck

    def close(self) -> None:
        if self._spark is not None:
            self._spark.spark.close()
        self._duck.close()
        with self._zoned_lock:
            for executor in self._zoned.values():
                executor.duck.close()
            self._zoned.clear()

    def _in_zone(self, zone: str) -> Executor:
        """The executor whose DuckDB computes in ``zone`` (locked down as the engine's own, and
        allowed no file): a query that reads no table runs there whole."""
        with self._zoned_lock:
            executor = self._zoned.get(zone)
            if executor is None:
                if len(self._zoned) >= _ZONES_KEPT:
                    _, old = self._zoned.popitem()
                    old.duck.close()
                duck = open_embedded(settings={k: v for k, v in (self._settings or {}).items()
                                               if k != "temp_directory"}, time_zone=zone)
                executor = self._zoned[zone] = Executor(duck, lambda source: self._no_source())
            return executor

    def _spark_executor(self) -> Executor:
        """The executor of the spark engine for the settings of this moment."""
        settings = self.catalog.settings
        remote = settings["spark_remote"]
        if not remote:
            raise QueryError("the workspace's engine is spark but spark_remote is not set",
                             hint="meterql settings set spark_remote sc://HOST:15002, or set "
                                  "engine to duckdb")
        root = Path(settings["spark_storage"]) if settings["spark_storage"] else self._lake
        if root is None:
            raise QueryError("the spark engine has no folder for its Parquet snapshots",
                             hint="meterql settings set spark_storage /shared/folder")
        from meterql.connectors.spark_connect import SparkConnection
        from meterql.engine.spark.executor import SparkExecutor
        from meterql.engine.spark.lake import Lake

        with self._spark_lock:
            current: SparkExecutor | None = self._spark
            if current is None or current.spark.remote != remote or current.lake.root != root:
                if current is not None:
                    current.spark.close()
                current = self._spark = SparkExecutor(
                    self._duck, self._connector, SparkConnection(remote),
                    Lake(root, self._time_columns),
                    self._deltas, statistics=lambda name: self.catalog.statistics(name))
            return current

    def export_snapshot(self, table: str,
                        progress: Callable[[int], None] | None = None) -> str:
        """On the spark engine, write the Parquet snapshot of ``table`` (a replica or a local
        table) for its current state, unless it has one: a sync does, so that the first query
        after it does not pay for the export. ``progress(rows)``: the rows written so far.
        Says what was written."""
        from meterql.engine.spark.executor import SparkExecutor

        executor = self._spark_executor()
        assert isinstance(executor, SparkExecutor)
        with self.replicas.shared():
            return executor.lake.snapshot(self._duck, table, progress).describe()

    @staticmethod
    def _no_source() -> Connector:
        raise RuntimeError("a query that reads no table asked for a source")

    def output_schema(self, sql: str, params: Mapping[str, Any] | None = None,
                      dialect: str = "duckdb") -> pa.Schema:
        """The names and types a SELECT's result has, found without asking any source: DuckDB
        runs it over empty stand-ins of its tables. Errors name the problem in the SQL."""
        parsed = parse_query(sql, dialect)
        if parsed.explain:
            raise StatementNotAllowedError(
                "EXPLAIN has no result to type", sql=sql, hint="give the SELECT alone")
        bound = bind(parsed.tree, self.catalog, dialect, sql)
        typing = result_typing(bound.tree)
        cur = self._duck.cursor()  # the stand-ins live and die with this connection
        try:
            for name, columns in typing.tables:
                cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in columns)
                cur.execute(f"CREATE TEMPORARY TABLE {quote_ident(name)} ({cols})")
            return cur.sql(typing.sql, params=dict(params or {}) or None).to_arrow_table().schema
        except USER_FAULTS as exc:
            raise query_fault(exc, sql) from exc
        except duckdb.Error as exc:
            raise QueryError(f"the query cannot run: {str(exc).splitlines()[0]}",
                             sql=sql) from exc
        finally:
            cur.close()

    def plan(self, sql: str, dialect: str = "duckdb", max_staleness: float | str | None = None,
             unreachable: frozenset[str] = frozenset()) -> tuple[Plan, bool, bool]:
        """The plan of a query, and whether it was an EXPLAIN / EXPLAIN ANALYZE.
        ``max_staleness``: the freshness bound for ``auto`` sources (seconds, a duration, or
        ``"none"``; ``None`` takes the workspace setting ``max_staleness``).

        A query is parsed and bound once per catalog version. One that reads an ``auto``
        source is routed each time (the bound and the replicas' age decide), and keeps one
        plan per combination of routes."""
        limit = self.bound(max_staleness)
        key = (sql, dialect, self.catalog.version)
        entry = self.plans.get(key)
        if entry is None:
            self.plans.size = self.catalog.settings["plan_cache_size"]
            entry = self._prepare(sql, dialect)
            self.plans.put(key, entry)
        if entry.plan is not None:
            return entry.plan, entry.explain, entry.analyze
        bound = entry.bound
        assert bound is not None
        routes = route_tables(
            bound, self.catalog, self._watermark, limit, datetime.now(UTC), unreachable,
            self._deltas, entry.costs)
        shape = tuple((r.table, r.kind, r.delta) for r in routes.values())
        plan = entry.by_routes.get(shape)
        if plan is None:
            plan = plan_query(bound, self.catalog, sql, routes)
            _ = plan.residual_sql, plan.residual_params  # made once, kept by every copy
            if len(entry.by_routes) < _ROUTE_PLANS_KEPT:
                entry.by_routes[shape] = plan
        routed = copy.copy(plan)  # (keeps the generated residual SQL)
        routed.routes = list(routes.values())  # this moment's reasons (ages)
        return routed, entry.explain, entry.analyze

    def bound(self, max_staleness: float | str | None) -> float | None:
        """A freshness bound in seconds (``None``: any age), or ``QueryError``."""
        try:
            return parse_staleness(self.catalog.settings["max_staleness"]
                                   if max_staleness is None else max_staleness)
        except ValueError:
            raise QueryError(
                f"max_staleness takes a duration (0, 30s, 5m, 1h) or none, not "
                f"{max_staleness!r}", hint="0 reads auto sources live") from None

    def _prepare(self, sql: str, dialect: str) -> _Prepared:
        zone = set_time_zone(sql)
        if zone is not None:
            return _Prepared(False, False, Plan(sql, [], None, [], [
                f"SET TimeZone: the session's time zone becomes {zone}; no source is asked"],
                time_zone=zone))
        parsed = parse_query(sql, dialect)
        bound = bind(parsed.tree, self.catalog, dialect, sql)
        if not bound.tables:
            # SELECT 1, SELECT now(), VALUES (1): DuckDB runs it, in the session's time zone
            return _Prepared(parsed.explain, parsed.analyze, Plan(sql, [], bound.tree.copy(),
                bound.params, [
                "the query reads no table: it runs in the local DuckDB (no source is asked)"]))
        if any(self.catalog.source(t.source).mode == "auto" for _, t in bound.tables):
            return _Prepared(parsed.explain, parsed.analyze, bound=bound)
        return _Prepared(parsed.explain, parsed.analyze, plan_query(bound, self.catalog, sql))

    def run(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        dialect: str = "duckdb",
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        max_rows: int | None = DEFAULT_MAX_ROWS,
        on_row_limit: str = "truncate",
        control: QueryControl | None = None,
        tz: str | None = None,
        max_staleness: float | str | None = None,
    ) -> Result:
        """Run one statement. ``tz``: the session's time zone (an IANA name; UTC when
        ``None``): TIMESTAMPTZ values are shown in it, and a query that reads no table
        (``SELECT now()``, ``SELECT current_date``) runs in it. ``SET TimeZone = 'zone'``
        runs nothing: its result names the zone (``Result.time_zone``), which the caller's
        session keeps and passes as ``tz``. ``max_staleness``: as :meth:`plan`'s; when an
        ``auto`` source routed to is unreachable, its tables are read from the replica if
        within the bound (the result's ``warnings`` say so), else ``StaleReplicaError``."""
        with self.replicas.shared():
            return self._failing_over(sql, params, dialect, timeout, max_rows, on_row_limit,
                                      control, tz, max_staleness)

    def _failing_over(self, sql: str, params: Mapping[str, Any] | None, dialect: str,
                      timeout: float | None, max_rows: int | None, on_row_limit: str,
                      control: QueryControl | None, tz: str | None,
                      max_staleness: float | str | None) -> Result:
        try:
            return self._run(sql, params, dialect, timeout, max_rows, on_row_limit, control, tz,
                             max_staleness, frozenset())
        except SourceUnavailableError as exc:
            source = exc.source
            if (isinstance(exc, StaleReplicaError) or source is None
                    or source not in {s.name for s in self.catalog.sources()}
                    or self.catalog.source(source).mode != "auto"):
                raise
            return self._run(sql, params, dialect, timeout, max_rows, on_row_limit, control, tz,
                             max_staleness, frozenset({source}))

    def _run(self, sql: str, params: Mapping[str, Any] | None, dialect: str,
             timeout: float | None, max_rows: int | None, on_row_limit: str,
             control: QueryControl | None, tz: str | None,
             max_staleness: float | str | None, unreachable: frozenset[str]) -> Result:
        zone = None if tz is None else check_time_zone(tz)
        plan, explain, analyze = self.plan(sql, dialect, max_staleness, unreachable)
        if plan.time_zone is not None:
            check_params(plan.params, params)
            return Result(time_zone_table(plan.time_zone), plan)
        if explain and not analyze:  # nothing runs: parameters may be left out
            return Result(plan_table(str(plan)), plan)
        values = check_params(plan.params, params)
        marks = []
        for table in plan.local_tables:
            mark = self._watermark(table)
            if mark is None:
                source = table.split(".", 1)[0]
                raise SourceUnavailableError(
                    f"{table} has no replica yet: source '{source}' is in sync mode and has "
                    "not been synced",
                    source=source, table=table,
                    hint=f"run 'meterql sync {source}' (or ws.sync('{source}'))",
                )
            marks.append(mark)
        control = control or QueryControl(timeout)
        control.timeout = timeout
        executor = self._executor
        if plan.residual is not None and self.catalog.settings["engine"] == "spark":
            executor = self._spark_executor()
        if not plan.fragments and not plan.local_tables:
            # reads no table: a DuckDB that may open no file at all, in the session's zone
            executor = self._in_zone(zone or "UTC")
        result = executor.run(plan, values, control, max_rows, on_row_limit)
        routes = {route.table: route for route in plan.routes}
        for mark in marks:
            route = routes.get(mark.get("table", ""))
            if route is not None:
                mark["route"] = route.kind
                if route.kind == "hybrid":
                    mark["reason"] = route.reason
        result.watermarks = marks + [
            {"table": r.table, "route": "source", "reason": r.reason}
            for r in plan.routes if r.kind == "source"]
        result.warnings = [
            f"{r.table} was read from its replica: {r.reason}" for r in plan.routes if r.failover]
        if zone is not None:
            result.table = in_time_zone(result.table, zone)
        if analyze:
            lines = [str(plan), f"- ran in {result.seconds * 1000:.1f} ms"]
            for s in result.fragments:
                lines.append(
                    f"- {s.fragment} on '{s.source}': {count(s.rows, 'row')}, "
                    f"{count(s.bytes, 'byte')}, "
                    f"{s.seconds * 1000:.1f} ms" + (f"; {s.note}" if s.note else "")
                )
            lines.append(f"- result: {count(result.num_rows, 'row')}")
            return Result(plan_table("\n".join(lines)), plan, seconds=result.seconds,
                          fragments=result.fragments)
        return result


@dataclass
class _Prepared:
    """A query parsed and bound (cached per catalog version): its plan, or, when it reads an
    ``auto`` source, its bound tree and the plans made so far per combination of routes."""

    explain: bool
    analyze: bool
    plan: Plan | None = None
    bound: BoundQuery | None = None
    by_routes: dict[tuple[Any, ...], Plan] = field(default_factory=dict)
    costs: dict[tuple[Any, ...], RouteCost] = field(default_factory=dict)  # (routes.py)


#: Plans kept per query for different combinations of routes (replica, hybrid, source).
_ROUTE_PLANS_KEPT = 8

#: Time zones whose DuckDB is kept open (each a few MB).
_ZONES_KEPT = 8
