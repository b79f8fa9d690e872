"""Run a plan: fragments concurrently over their connectors, streamed into DuckDB; then the
residual. Time limits and cancellation stop the sources' statements and DuckDB alike."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import pyarrow as pa

from meterql.connectors import CancelHandle, Connector
from meterql.engine.plan import Fragment, Plan
from meterql.engine.result import FragmentStats, Result
from meterql.errors import (
    MeterqlError,
    QueryCancelledError,
    QueryTimeoutError,
    RowLimitError,
    SourceQueryError,
)

_query_ids = itertools.count(1)


class QueryControl:
    """Cancellation and the time limit of one running query."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._handles: list[CancelHandle] = []
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self.cancelled = False
        self.timed_out = False
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        if self.timeout is not None:
            self._timer = threading.Timer(self.timeout, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        self.timed_out = True
        self.cancel()

    def handle(self) -> CancelHandle:
        handle = CancelHandle()
        with self._lock:
            self._handles.append(handle)
            if self.cancelled:
                handle.cancel()
        return handle

    def cursor(self, cur: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        with self._lock:
            self._cursors.append(cur)
            if self.cancelled:
                cur.interrupt()
        return cur

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
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


class Executor:
    """Runs plans against connectors and an in-memory DuckDB."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, connector: Callable[[str], Connector]):
        self._duck = duck
        self._connector = connector

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
            raise
        except duckdb.InterruptException:
            control.check()
            raise
        finally:
            control.finish()
        control.check()
        if truncated and on_row_limit == "error":
            raise RowLimitError(
                f"the result has more than {max_rows} rows",
                hint="add a LIMIT or a filter, or raise the row cap (--max-rows)",
            )
        return Result(table, plan, truncated, time.perf_counter() - start, stats)

    # -- one fragment is the whole query -----------------------------------------------------
    def _run_whole(self, plan, params, control, max_rows):
        frag = plan.fragments[0]
        stats = FragmentStats(frag.id, frag.source)
        t0 = time.perf_counter()
        connector = self._connector(frag.source)
        values = [params[name] for name in frag.params]
        with connector.stream(
            frag.sql, values, schema=frag.schema, cancel=control.handle(), skip_rows=frag.skip_rows
        ) as reader:
            table, truncated = _read_capped(reader, max_rows)
        stats.rows, stats.bytes = table.num_rows, table.nbytes
        stats.seconds = time.perf_counter() - t0
        return table, truncated, [stats]

    # -- fragments into DuckDB, then the residual -------------------------------------------
    def _run_split(self, plan, params, control, max_rows):
        schema = f"q{next(_query_ids)}"
        base = control.cursor(self._duck.cursor())
        base.execute(f"CREATE SCHEMA {schema}")
        try:
            stats = self._load_fragments(plan.fragments, params, control, schema)
            control.check()
            sql = plan.residual_sql(schema)
            values = {name: params[name] for name in plan.params}
            try:
                reader = base.sql(sql, params=values or None).to_arrow_reader(65_536)
                table, truncated = _read_capped(reader, max_rows)
            except duckdb.InterruptException:
                control.check()
                raise
            except duckdb.Error as exc:
                raise SourceQueryError(
                    f"DuckDB failed the query: {exc}",
                    hint="the query's local part failed; check types and functions",
                ) from exc
            return table, truncated, stats
        finally:
            with contextlib.suppress(Exception):
                base.execute(f"DROP SCHEMA {schema} CASCADE")
            base.close()

    def _load_fragments(self, fragments, params, control, schema):
        def load(frag: Fragment) -> FragmentStats:
            stats = FragmentStats(frag.id, frag.source)
            t0 = time.perf_counter()
            cur = control.cursor(self._duck.cursor())
            try:
                connector = self._connector(frag.source)
                values = [params[name] for name in frag.params]
                with connector.stream(
                    frag.sql,
                    values,
                    schema=frag.schema,
                    cancel=control.handle(),
                    skip_rows=frag.skip_rows,
                ) as reader:
                    counted = _CountingReader(reader)
                    cur.register("fragment_rows", counted.reader())
                    try:
                        cur.execute(f'CREATE TABLE {schema}."{frag.id}" AS FROM fragment_rows')
                    except duckdb.Error:
                        # DuckDB wraps errors raised while it reads the stream; keep ours.
                        if counted.error is not None:
                            raise counted.error from None
                        raise
                    finally:
                        cur.unregister("fragment_rows")
                stats.rows, stats.bytes = counted.rows, counted.bytes
            except duckdb.InterruptException:
                control.check()
                raise
            finally:
                cur.close()
            stats.seconds = time.perf_counter() - t0
            return stats

        if len(fragments) == 1:
            return [load(fragments[0])]
        with ThreadPoolExecutor(max_workers=min(4, len(fragments))) as pool:
            futures = [pool.submit(load, f) for f in fragments]
            results, first_error = [], None
            for future in futures:
                try:
                    results.append(future.result())
                except BaseException as exc:  # stop the others, then report the first failure
                    if first_error is None:
                        first_error = exc
                        control.cancel()
            if first_error is not None:
                if control.timed_out:
                    control.check()
                raise first_error
            return results


class _CountingReader:
    """Counts rows and bytes as DuckDB pulls batches, and keeps the error that stopped it."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self._reader = reader
        self.rows = 0
        self.bytes = 0
        self.error: BaseException | None = None

    def reader(self) -> pa.RecordBatchReader:
        def batches():
            try:
                for batch in self._reader:
                    self.rows += batch.num_rows
                    self.bytes += batch.nbytes
                    yield batch
            except BaseException as exc:
                self.error = exc
                raise

        return pa.RecordBatchReader.from_batches(self._reader.schema, batches())


def _read_capped(reader: pa.RecordBatchReader, max_rows: int | None) -> tuple[pa.Table, bool]:
    batches, rows = [], 0
    for batch in reader:
        if max_rows is not None and rows + batch.num_rows > max_rows:
            batches.append(batch.slice(0, max_rows - rows))
            return pa.Table.from_batches(batches, reader.schema), True
        batches.append(batch)
        rows += batch.num_rows
    return pa.Table.from_batches(batches, reader.schema), False
