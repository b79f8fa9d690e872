"""The engine: parse, bind, plan and execute a query against the catalog's sources."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from meterql.catalog import Catalog
from meterql.connectors import Connector
from meterql.connectors.lockdown import open_embedded
from meterql.engine.bind import bind, check_params
from meterql.engine.execute import Executor, QueryControl
from meterql.engine.parse import parse_query
from meterql.engine.plan_cache import PlanCache
from meterql.engine.planner import Plan, plan_query
from meterql.engine.planner.fragments import result_typing
from meterql.engine.result import Result
from meterql.errors import QueryError, SourceUnavailableError, StatementNotAllowedError
from meterql.sql_text import quote_ident

#: Defaults for every query unless the caller says otherwise.
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MAX_ROWS = 1_000_000


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
    ) -> None:
        """``files`` and ``folders``: the only files its DuckDB may open (to attach the local
        store and replicas); everything else is refused (connectors/lockdown.py)."""
        self.catalog = catalog
        self._watermark = watermark
        self._duck = open_embedded(files=files, folders=folders, settings=settings)
        self._executor = Executor(self._duck, connector)
        self.plans: PlanCache[tuple[Plan, bool, bool]] = PlanCache(
            catalog.settings["plan_cache_size"]
        )

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        """The engine's DuckDB (replicas are attached to it under their sources' names)."""
        return self._duck

    def close(self) -> None:
        self._duck.close()

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
        except duckdb.Error as exc:
            raise QueryError(f"the query cannot run: {str(exc).splitlines()[0]}",
                             sql=sql) from exc
        finally:
            cur.close()

    def plan(self, sql: str, dialect: str = "duckdb") -> tuple[Plan, bool, bool]:
        """The plan of a query, and whether it was an EXPLAIN / EXPLAIN ANALYZE."""
        key = (sql, dialect, self.catalog.version)
        cached = self.plans.get(key)
        if cached is not None:
            return cached
        self.plans.size = self.catalog.settings["plan_cache_size"]
        planned = self._plan(sql, dialect)
        self.plans.put(key, planned)
        return planned

    def _plan(self, sql: str, dialect: str) -> tuple[Plan, bool, bool]:
        parsed = parse_query(sql, dialect)
        bound = bind(parsed.tree, self.catalog, dialect, sql)
        if not bound.tables:
            raise QueryError(
                "the query reads no table",
                sql=sql,
                hint="meterql queries registered tables; list them with 'meterql tables'",
            )
        return plan_query(bound, self.catalog, sql), parsed.explain, parsed.analyze

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
    ) -> Result:
        plan, explain, analyze = self.plan(sql, dialect)
        values = check_params(plan.params, params)
        if explain and not analyze:
            return Result(_plan_table(str(plan)), plan)
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
        result = self._executor.run(plan, values, control, max_rows, on_row_limit)
        result.watermarks = marks
        if analyze:
            lines = [str(plan), f"- ran in {result.seconds * 1000:.1f} ms"]
            for s in result.fragments:
                lines.append(
                    f"- {s.fragment} on '{s.source}': {s.rows} rows, {s.bytes} bytes, "
                    f"{s.seconds * 1000:.1f} ms" + (f"; {s.note}" if s.note else "")
                )
            lines.append(f"- result: {result.num_rows} rows")
            return Result(_plan_table("\n".join(lines)), plan, seconds=result.seconds,
                          fragments=result.fragments)
        return result


def _plan_table(text: str) -> pa.Table:
    return pa.table({"plan": text.splitlines()})
