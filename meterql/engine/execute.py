"""Run a plan: fragments concurrently over their connectors, streamed into DuckDB; then the
residual. Time limits and cancellation stop the sources' statements and DuckDB alike."""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from meterql.connectors import CancelHandle, Connector
from meterql.connectors.duckdb_arrow import answer_table, carried_reader
from meterql.connectors.duckdb_errors import FROM_DUCKDB, USER_FAULTS, place, query_fault
from meterql.dialects import dialect_for
from meterql.dialects.arrow_types import arrow_type, carried_schema, carried_types
from meterql.engine.hybrid import Deltas, NoDeltas
from meterql.engine.planner.dynamic import DynamicFilter, KeyUse
from meterql.engine.planner.plan import Fragment, Plan, ResultTyping, fragment_table
from meterql.engine.result import FragmentStats, Result
from meterql.errors import (
    MeterqlError,
    ParameterError,
    QueryCancelledError,
    QueryError,
    QueryTimeoutError,
    RowLimitError,
    SourceQueryError,
)
from meterql.sql_text import quote_ident, sql_type
from meterql.wording import count

#: A watchdog entry: [deadline, sequence number, callback]; the callback is ``None`` once
#: removed. A list, so that removing it is setting its callback in place.
_WatchdogEntry: TypeAlias = list[Any]


class _Watchdog:
    """One thread for every query's time limit (a Timer thread per query costs ~0.5 ms)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_WatchdogEntry] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: float, callback: Callable[[], None]) -> _WatchdogEntry:
        entry = [deadline, next(self._seq), callback]
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="meterql-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return entry

    def remove(self, entry: _WatchdogEntry) -> None:
        entry[2] = None  # dropped lazily when it reaches the top

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2] is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                entry = heapq.heappop(self._heap)
                callback, entry[2] = entry[2], None
                self._cond.release()
                try:
                    with contextlib.suppress(Exception):  # a failing cancel must not stop it
                        callback()
                finally:
                    self._cond.acquire()


_WATCHDOG = _Watchdog()


class QueryControl:
    """Cancellation and the time limit of one running query."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._handles: list[CancelHandle] = []
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self.cancelled = False
        self.timed_out = False
        self._stopping = False  # stopped because a part of the query failed, not cancelled
        self._timer: _WatchdogEntry | None = None

    def start(self) -> None:
        if self.timeout is not None:
            self._timer = _WATCHDOG.add(time.monotonic() + self.timeout, self._expire)

    def finish(self) -> None:
        if self._timer is not None:
            _WATCHDOG.remove(self._timer)

    def _expire(self) -> None:
        self.timed_out = True
        self.cancel()

    def handle(self) -> CancelHandle:
        handle = CancelHandle()
        with self._lock:
            self._handles.append(handle)
            if self.cancelled or self._stopping:
                handle.cancel()
        return handle

    def cursor(self, cur: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        with self._lock:
            self._cursors.append(cur)
            if self.cancelled or self._stopping:
                cur.interrupt()
        return cur

    def cancel(self) -> None:
        """The caller (or the time limit) stops the query."""
        with self._lock:
            self.cancelled = True
        self._stop_all()

    def stop(self) -> None:
        """Stop the query's other statements after one of them failed; that failure is the
        query's error, so this does not count as a cancellation."""
        with self._lock:
            self._stopping = True
        self._stop_all()

    def _stop_all(self) -> None:
        with self._lock:
            handles, cursors = list(self._handles), list(self._cursors)
        for handle in handles:
            handle.cancel()
        for cur in cursors:
            with contextlib.suppress(Exception):
                cur.interrupt()

    def check(self) -> None:
        """Raise the right error if the query was stopped."""
        if self.timed_out:
            raise QueryTimeoutError(
                f"the query ran longer than its time limit of {self.timeout:g} s",
                hint="narrow the query or raise the limit (--timeout)",
            )
        if self.cancelled:
            raise QueryCancelledError("the query was cancelled")


#: What one fragment's load returns (see :meth:`Executor._concurrently`).
_Loaded = TypeVar("_Loaded")


class Executor:
    """Runs plans against connectors and an in-memory DuckDB."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, connector: Callable[[str], Connector],
                 deltas: Deltas | None = None):
        self.duck = duck
        self._duck = duck
        self._connector = connector
        self._deltas = deltas or NoDeltas()
        self._types: OrderedDict[_TypingKey, pa.Schema | None] = OrderedDict()
        self._types_lock = threading.Lock()

    def run(
        self,
        plan: Plan,
        params: Mapping[str, Any],
        control: QueryControl,
        max_rows: int | None,
        on_row_limit: str = "truncate",
    ) -> Result:
        start = time.perf_counter()
        control.start()
        try:
            if plan.residual is None:
                table, truncated, stats = self._run_whole(plan, params, control, max_rows)
            else:
                table, truncated, stats = self._run_split(plan, params, control, max_rows)
        except MeterqlError as exc:
            if control.cancelled and not isinstance(exc, (QueryTimeoutError,)):
                control.check()
            if isinstance(exc, QueryError) and exc.sql is None and exc.details.get(FROM_DUCKDB):
                place(exc, plan.sql)  # a DuckDB source's complaint, placed in the query
            raise
        except duckdb.InterruptException:
            control.check()
            raise
        finally:
            control.finish()
        control.check()
        if truncated and on_row_limit == "error":
            raise RowLimitError(
                f"the result has more than {count(max_rows or 0, 'row')}",
                hint="add a LIMIT or a filter, or raise the row cap (--max-rows)",
            )
        return Result(table, plan, truncated, time.perf_counter() - start, stats)

    def _bind(self, frag: Fragment, names: list[str], params: Mapping[str, Any]) -> list[Any]:
        """Parameter values in marker order; text compared with a typed column is converted to
        that type with DuckDB's own cast when the source types parameters by their value."""
        values = [_bindable(params[name]) for name in names]
        if not dialect_for(frag.kind).capabilities.typed_parameters:
            return values
        targets = [frag.param_types[i] if i < len(frag.param_types) else None
                   for i in range(len(names))]
        by_name = {name: t for name, t in zip(names, targets, strict=True) if t is not None}
        for i, name in enumerate(names):
            target = targets[i]
            value = values[i]
            if value is None:
                # The source types a parameter from its value, and a NULL has none: bind it
                # as the type it is compared with (or the same name's elsewhere), else text.
                typed = target or by_name.get(name)
                values[i] = pa.scalar(None, (arrow_type(typed) if typed else None)
                                      or pa.string())
                continue
            if target is None or isinstance(value, bool):
                continue
            if isinstance(value, str):
                values[i] = _cast(self._duck, value, target, name)
            elif isinstance(value, int | float | Decimal):
                if _TEXT.match(target):
                    raise ParameterError(
                        f"parameter :{name} is a number ({value!r}) but is compared with a "
                        f"{target} column", hint="pass the value as text")
        return values

    # -- one fragment is the whole query -----------------------------------------------------
    def _run_whole(
        self, plan: Plan, params: Mapping[str, Any], control: QueryControl, max_rows: int | None
    ) -> tuple[pa.Table, bool, list[FragmentStats]]:
        frag = plan.fragments[0]
        stats = FragmentStats(frag.id, frag.source)
        t0 = time.perf_counter()
        connector = self._connector(frag.source)
        values = self._bind(frag, frag.params, params)
        schema = frag.schema
        if schema is None and frag.typing is not None:
            schema = self._duckdb_types(frag.typing, {n: params[n] for n in frag.params})
        with connector.stream(
            frag.sql, values, schema=schema, cancel=control.handle()
        ) as reader:
            table, truncated = read_capped(reader, max_rows)
        if schema is not None and frag.typing is not None:
            # The names the query gives its columns (PostgreSQL cuts names at 63 bytes).
            table = table.rename_columns(schema.names)
        if carried_types(schema or table.schema):
            table = self._answer(table.cast(schema or table.schema))
        stats.rows, stats.bytes = table.num_rows, table.nbytes
        stats.seconds = time.perf_counter() - t0
        return table, truncated, [stats]

    def _answer(self, table: pa.Table) -> pa.Table:
        """A result with columns carried as text as a caller gets it (see duckdb_arrow)."""
        cur = self._duck.cursor()
        try:
            return answer_table(cur, table)
        finally:
            cur.close()

    def _duckdb_types(self, typing: ResultTyping, params: Mapping[str, Any]) -> pa.Schema | None:
        """The Arrow schema DuckDB gives the query (run over empty stand-ins of its tables), or
        ``None`` when DuckDB cannot run it (the source's own types are kept then)."""
        key = _typing_key(typing, params)
        with self._types_lock:
            if key is not None and key in self._types:
                self._types.move_to_end(key)
                return self._types[key]
        cur = self._duck.cursor()  # temporary tables live and die with this connection
        try:
            for name, columns in typing.tables:
                cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in columns)
                cur.execute(f"CREATE TEMPORARY TABLE {quote_ident(name)} ({cols})")
            result = cur.sql(typing.sql, params=dict(params) or None)
            schema = carried_schema(result.to_arrow_table().schema,
                                    [str(t) for t in result.types])
        except duckdb.Error:
            schema = None
        finally:
            cur.close()
        if key is not None:
            with self._types_lock:
                self._types[key] = schema
                if len(self._types) > _TYPES_CACHED:
                    self._types.popitem(last=False)
        return schema

    # -- fragments into DuckDB, then the residual -------------------------------------------
    def _run_split(
        self, plan: Plan, params: Mapping[str, Any], control: QueryControl, max_rows: int | None
    ) -> tuple[pa.Table, bool, list[FragmentStats]]:
        residual_sql = plan.residual_sql
        if residual_sql is None:
            raise RuntimeError("a plan without a residual reached the split run")
        tables, stats = self._load_fragments(plan.fragments, params, control)
        control.check()
        base = control.cursor(self._duck.cursor())
        try:
            # Registrations are local to this cursor: concurrent queries never see each other's.
            for frag_id, table in tables.items():
                register_typed(base, fragment_table(frag_id), table)
            if plan.hybrid:
                # One transaction: the replica the overlays start from is the one the query reads.
                base.begin()
                stats += self._overlays(base, plan, control)
            values = {name: params[name] for name in plan.residual_params}
            try:
                relation = base.sql(residual_sql, params=values or None)
                table, truncated = read_capped(carried_reader(base, relation, 65_536),
                                                max_rows)
                table = answer_table(base, table)
            except duckdb.InterruptException:
                control.check()
                raise
            except USER_FAULTS as exc:
                # the query itself is wrong (a GROUP BY, a cast, a type, a range): the caller's
                raise query_fault(exc, plan.sql) from exc
            except duckdb.Error as exc:
                raise SourceQueryError(
                    f"DuckDB failed the query: {exc}",
                    hint="the query's local part failed; check types and functions",
                ) from exc
            return table, truncated, stats
        finally:
            base.close()

    def _overlays(self, cur: duckdb.DuckDBPyConnection, plan: Plan,
                  control: QueryControl) -> list[FragmentStats]:
        """Make each hybrid table's view on ``cur``: the replica plus the source's delta."""
        stats = []
        for read in plan.hybrid:
            control.check()
            source = read.table.split(".", 1)[0]
            try:
                overlay = self._deltas.overlay(cur, read.table, read.name)
            except duckdb.Error as exc:
                raise SourceQueryError(
                    f"reading the replica of {read.table} failed: {exc}", table=read.table,
                    hint="run the query again; if it fails again, sync the source") from exc
            for name, frame in overlay.frames.items():
                register_typed(cur, name, frame)
            cur.execute(f"CREATE TEMPORARY VIEW {quote_ident(read.name)} AS {overlay.sql}")
            done = FragmentStats(read.name, source)
            done.rows, done.seconds, done.note = overlay.rows, overlay.seconds, overlay.note
            done.bytes = sum(frame.nbytes for frame in overlay.frames.values())
            stats.append(done)
        return stats

    def _load_fragments(
        self, fragments: list[Fragment], params: Mapping[str, Any], control: QueryControl
    ) -> tuple[dict[str, pa.Table], list[FragmentStats]]:
        """Read every fragment into Arrow; fragments with a dynamic filter wait for the
        fragments whose keys they take."""
        tables: dict[str, pa.Table] = {}

        def load(frag: Fragment) -> tuple[FragmentStats, pa.Table]:
            stats = FragmentStats(frag.id, frag.source)
            t0 = time.perf_counter()
            connector = self._connector(frag.source)
            sql, names = frag.sql, frag.params
            extra: dict[str, Any] = {}
            if frag.dynamic is not None:
                sql, names, extra, stats.note = _dynamic_filter(tables, frag.dynamic)
            values = self._bind(frag, names, {**params, **extra})
            arrow_schema = frag.schema
            if arrow_schema is None and frag.typing is not None:
                arrow_schema = self._duckdb_types(frag.typing, {n: params[n] for n in frag.params})
            with connector.stream(
                sql, values, schema=arrow_schema, cancel=control.handle()
            ) as reader:
                table = reader.read_all()
            stats.rows, stats.bytes = table.num_rows, table.nbytes
            stats.seconds = time.perf_counter() - t0
            return stats, table

        first = [f for f in fragments if f.dynamic is None]
        then: list[Fragment] = [f for f in fragments if f.dynamic is not None]
        by_id: dict[str, FragmentStats] = {}
        for phase in (first, then):
            for stats, table in self._concurrently(load, phase, control):
                by_id[stats.fragment] = stats
                tables[stats.fragment] = table
        return tables, [by_id[f.id] for f in fragments]

    @staticmethod
    def _concurrently(
        load: Callable[[Fragment], _Loaded], fragments: list[Fragment], control: QueryControl
    ) -> list[_Loaded]:
        if len(fragments) <= 1:
            return [load(f) for f in fragments]
        with ThreadPoolExecutor(max_workers=min(4, len(fragments))) as pool:
            futures = [pool.submit(load, f) for f in fragments]
            results: list[_Loaded] = []
            errors: list[BaseException] = []
            for future in futures:
                try:
                    results.append(future.result())
                except BaseException as exc:  # stop the others, then report the failure
                    if not errors:
                        control.stop()
                    errors.append(exc)
            if errors:
                if control.timed_out or control.cancelled:
                    control.check()
                # The fragments that the failure stopped report being stopped: report the failure.
                stopped = (QueryCancelledError, duckdb.InterruptException)
                raise next((e for e in errors if not isinstance(e, stopped)), errors[0])
            return results


def register_typed(cur: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Register an Arrow table on ``cur`` as ``name``; columns carried as text (see
    arrow_types.CARRIED_AS_TEXT) are cast back to their DuckDB type by a view of that name."""
    carried = carried_types(table.schema)
    if not carried:
        cur.register(name, table)
        return
    raw = f"{name}_carried"
    cur.register(raw, table)
    casts = ", ".join(f"CAST({quote_ident(c)} AS {sql_type(t)}) AS {quote_ident(c)}"
                      for c, t in carried.items())
    cur.execute(f"CREATE OR REPLACE TEMPORARY VIEW {quote_ident(name)} AS "
                f"SELECT * REPLACE ({casts}) FROM {quote_ident(raw)}")


def _cast(duck: duckdb.DuckDBPyConnection, value: Any, target: str, name: str) -> Any:
    """``value`` as the column type ``target``, by DuckDB's own cast (as DuckDB would compare
    them), or a :class:`ParameterError` naming the parameter."""
    cur = duck.cursor()
    try:
        return cur.execute(f"SELECT CAST(? AS {sql_type(target)})", [value]).fetchall()[0][0]
    except duckdb.Error as exc:
        raise ParameterError(
            f"parameter :{name} = {value!r} is not a valid {target}",
            hint=f"pass a value that reads as {target}",
        ) from exc
    finally:
        cur.close()


#: Column types compared as text.
_TEXT = re.compile(r"^(VARCHAR|TEXT|STRING|CHAR|BPCHAR|UUID|JSON)\b", re.IGNORECASE)


def _bindable(value: Any) -> Any:
    """An integer no source binds as an integer (past 64 bits) is bound as the exact decimal
    it is."""
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        return Decimal(value)
    return value


def _dynamic_filter(
    tables: Mapping[str, pa.Table], df: DynamicFilter
) -> tuple[str, list[str], dict[str, Any], str]:
    """The probe's SQL, parameter names and key values, from the build fragments' rows: each key
    as a set up to ``max_keys`` keys, else as their range where that means the same at the
    source, else unused."""
    uses: list[KeyUse] = []
    values: dict[str, Any] = {}
    notes: list[str] = []
    for i, key in enumerate(df.keys):
        keys = pc.unique(tables[key.build].column(key.build_column)).drop_null()
        if df.style in ("array", "json") and keys.type == pa.uint64():
            # These sources hold integers in 64 signed bits: a UBIGINT key past them matches
            # no row there, and would not bind as their BIGINT.
            keys = keys.filter(pc.less_equal(keys, pa.scalar(2**63 - 1, pa.uint64())))
        if len(keys) <= df.max_keys:
            uses.append("keys")
            values[f"__keys_{i}__"] = _key_set(keys.to_pylist(), df.style)
            notes.append(f"{len(keys)} keys from {key.build}")
        elif not key.ranged:
            uses.append("none")
            notes.append(f"skipped: more than {df.max_keys} keys from {key.build}")
        else:
            # Arrow compares text bytewise, as DuckDB does; such a range only goes to sources
            # that order text the same way (the rule leaves ``ranged`` unset otherwise).
            bounds = pc.min_max(keys)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            uses.append("range")
            values[f"__min_{i}__"], values[f"__max_{i}__"] = low, high
            notes.append(f"more than {df.max_keys} keys from {key.build}, range [{low}, {high}]")
    sql, names = df.statement(uses)
    if all(u == "none" for u in uses) and len(notes) == 1:
        return sql, names, values, "dynamic filter " + notes[0]
    return sql, names, values, "dynamic filter: " + "; ".join(notes)


def _key_set(keys: list[Any], style: str) -> Any:
    """Keys bound as one parameter, as the source's key-set style takes them."""
    if style == "array":  # a PostgreSQL array literal, cast to the key type in the SQL
        return "{" + ",".join(_array_element(k) for k in keys) + "}"
    if style == "json":
        return json.dumps(keys, ensure_ascii=False)
    return list(keys)


def _array_element(key: Any) -> str:
    if isinstance(key, str):
        return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(key)


#: Whole queries whose DuckDB result types are remembered.
_TYPES_CACHED = 256


#: What DuckDB's result types for a query depend on (see :func:`_typing_key`).
_TypingKey: TypeAlias = tuple[
    str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...], tuple[tuple[str, Any], ...]
]


def _typing_key(typing: ResultTyping, params: Mapping[str, Any]) -> _TypingKey | None:
    """What DuckDB's result types depend on: the query, its tables, and how DuckDB types each
    parameter value (an int by its size, a Decimal by its digits); ``None`` if unsure."""
    signature: list[tuple[str, Any]] = []
    for name, value in sorted(params.items()):
        if value is None or isinstance(value, bool | float | str | bytes | dt.date | dt.time):
            kind: Any = type(value).__name__
            if isinstance(value, dt.datetime | dt.time):
                kind = (kind, value.tzinfo is None)
        elif isinstance(value, int):
            kind = ("int", value.bit_length())
        elif isinstance(value, Decimal):
            digits = value.as_tuple()
            kind = ("decimal", len(digits.digits), digits.exponent)
        else:
            return None
        signature.append((name, kind))
    tables = tuple((name, tuple(columns)) for name, columns in typing.tables)
    return typing.sql, tables, tuple(signature)



def read_capped(reader: pa.RecordBatchReader, max_rows: int | None) -> tuple[pa.Table, bool]:
    batches, rows = [], 0
    for batch in reader:
        if max_rows is not None and rows + batch.num_rows > max_rows:
            batches.append(batch.slice(0, max_rows - rows))
            return pa.Table.from_batches(batches, reader.schema), True
        batches.append(batch)
        rows += batch.num_rows
    return pa.Table.from_batches(batches, reader.schema), False
