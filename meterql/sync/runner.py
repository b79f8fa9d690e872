"""A sync run: copy each table of a source into its replica, rows and state in one transaction.

Strategies (per table, ``full`` by default):

- ``full``: read the whole table and replace the replica table. Exact for inserts, updates and
  deletes; its cost follows the table's size.
- ``append``: a monotonic cursor column (an id or a created_at): read ``cursor >= last - lag``,
  delete the replica's rows in that window and insert what was read. Rows with the same cursor
  value as the last run's maximum are read again, never lost (strict ``>`` loses them) and
  never doubled; late rows within the lag are picked up. Its cost follows the change.

- ``merge``: an ``updated_at``-style cursor plus the primary key: read ``cursor >= last - lag``
  and upsert those rows by key, then reconcile deletes by reading the source's key column(s)
  alone and removing replica rows whose key is gone. Exact for inserts, updates and deletes;
  it reads the changed rows plus one key column, not the whole table. With a soft-delete
  column configured, deletes are updates the cursor already carries, and the key read is
  skipped.
- ``cdc`` (PostgreSQL): the source's change log through a logical replication slot; see
  :mod:`meterql.sync.cdc`. Exact, and its cost follows the change.

Every way the new rows and the table's state commit in one DuckDB transaction: a run killed at
any point leaves the replica exactly as the last committed run left it, and queries running
meanwhile see that state.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import duckdb
import pyarrow as pa

from meterql.catalog import Source, Table
from meterql.connectors import Connector
from meterql.dialects import dialect_for
from meterql.engine.planner.scan_sql import scan_select
from meterql.errors import MeterqlError, SourceQueryError, SourceUnavailableError
from meterql.sql_text import quote_ident, quote_qualified
from meterql.sync.cdc import sync_cdc
from meterql.sync.config import TableSyncConfig
from meterql.sync.delta import column_change, delta_scan, key_scan, replica_columns
from meterql.sync.replica import STATE_SCHEMA, transaction
from meterql.wording import count, format_duration


@dataclass
class TableSyncReport:
    table: str
    strategy: str
    rows: int = 0
    seconds: float = 0.0
    cursor: Any = None
    note: str | None = None  # e.g. why an incremental table was copied whole this time
    changes: dict[str, int] | None = None  # cdc: inserts, updates, deletes, truncates applied
    #: Rows read from the source when that differs from ``rows`` (append and merge read their
    #: cursor's window again, so rows already in the replica are read but are not new).
    read: int | None = None
    #: Why this table was not synced (its replica table keeps its last committed state).
    error: MeterqlError | None = None
    #: On the spark engine: the Parquet snapshot the sync wrote (or why it did not).
    snapshot: str | None = None

    def line(self) -> str:
        """This table's run in one line, as ``meterql sync`` prints it (``pg.public.usage:
        append, 0 new rows (1 row read) in 0.01s``)."""
        if self.error is not None:
            return f"{self.table}: {self.strategy}, not synced (its replica keeps its last state)"
        if self.changes is not None:
            done = count(self.rows, "row") + " and changes"
        elif self.strategy == "append":
            done = count(self.rows, "new row")
        elif self.strategy == "merge":
            done = count(self.rows, "row") + " changed"
        else:
            done = count(self.rows, "row") + " copied"
        if self.read is not None and self.read != self.rows:
            done += f" ({count(self.read, 'row')} read)"
        return (f"{self.table}: {self.strategy}, {done} in {format_duration(self.seconds)}"
                + (f"; {self.note}" if self.note else "")
                + (f"; {self.snapshot}" if self.snapshot else ""))


@dataclass
class SyncReport:
    """What one sync run of one source copied, table by table, and its error: the error that
    stopped it, or the failed tables' (each table's own is in its report; the other tables
    were synced)."""

    source: str
    tables: list[TableSyncReport] = field(default_factory=list)
    seconds: float = 0.0
    error: MeterqlError | None = None

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables if t.error is None)

    @property
    def failed(self) -> list[TableSyncReport]:
        """The tables that were not synced."""
        return [t for t in self.tables if t.error is not None]


Progress = Callable[[str, int], None]


def sync_source(
    duck: duckdb.DuckDBPyConnection,
    connector: Connector,
    source: Source,
    tables: list[Table],
    configs: dict[tuple[str, str], TableSyncConfig],
    progress: Progress | None = None,
    full_copy_on_schema_change: bool = True,
) -> SyncReport:
    """Sync every table of one source, each in its own transaction. A table that fails is
    reported (its replica table keeps its last committed state) and the others are synced;
    the report's error then names the failed tables. An error of the source as a whole (it is
    unreachable) stops the run."""
    report = SyncReport(source.name)
    t0 = time.perf_counter()
    chosen = [(t, configs.get((t.schema, t.name), TableSyncConfig())) for t in tables]
    pending = [(t, config) for t, config in chosen if config.strategy != "cdc"]
    try:
        # All tables of one run are read in one snapshot of the source (PostgreSQL: one
        # REPEATABLE READ transaction), so the replica never mixes two moments of the source.
        # A table that fails may have ended that transaction: the tables after it are read in
        # a new snapshot.
        with connector.snapshot():
            # The change log first: its slot position is read at the snapshot's start.
            cdc = [t for t, config in chosen if config.strategy == "cdc"]
            if cdc:
                report.tables += _sync_cdc(duck, connector, source, cdc, progress,
                                           full_copy_on_schema_change, {
                                               t.full_name: config.cluster_by
                                               for t, config in chosen})
            _sync_tables(duck, connector, pending, progress, full_copy_on_schema_change,
                         report)
        while pending:
            with connector.snapshot():
                _sync_tables(duck, connector, pending, progress, full_copy_on_schema_change,
                             report)
        report.error = _failed_tables_error(source, report)
    except MeterqlError as exc:
        report.error = exc
    report.seconds = time.perf_counter() - t0
    return report


def _sync_tables(duck: duckdb.DuckDBPyConnection, connector: Connector,
                 pending: list[tuple[Table, TableSyncConfig]], progress: Progress | None,
                 full_copy_on_schema_change: bool, report: SyncReport) -> None:
    """Sync the pending tables in order, each taken off ``pending`` and added to ``report``,
    until one fails (reported; the caller goes on with the rest in a new snapshot)."""
    while pending:
        table, config = pending.pop(0)
        started = time.perf_counter()
        try:
            report.tables.append(_sync_table(duck, connector, table, config, progress,
                                             full_copy_on_schema_change))
        except MeterqlError as exc:
            if isinstance(exc, SourceUnavailableError):
                raise  # (the source is gone: the other tables cannot be read either)
            report.tables.append(TableSyncReport(
                table.full_name, config.strategy, seconds=time.perf_counter() - started,
                error=_table_error(connector, table, exc)))
            return


def _table_error(connector: Connector, table: Table, exc: MeterqlError) -> MeterqlError:
    """A table's error naming the table (and, for a value that does not fit its column, the
    column, the value and the fix)."""
    field, value = exc.details.get("field"), exc.details.get("value")
    column = table.column(field) if isinstance(field, str) else None
    hint, message = exc.hint, exc.message
    if column is not None and value is not None and column.source_type.lower() == "numeric":
        scale = _decimals(str(value))
        current = connector.unconstrained_decimal[1]
        if scale is not None and scale > current:
            message = (f"column '{column.name}' (numeric) has the value {value}, with more "
                       f"decimals than {column.type} keeps")
            hint = (f"{table.source}'s numeric columns without a declared scale are read with "
                    f"{current} decimals and this value has {scale}: keep them with "
                    f"'meterql source set {table.source} --option numeric_scale={scale}' and "
                    "sync again, or declare the column numeric(p,s) at the source")
    if table.full_name not in message:
        message = f"{table.full_name}: {message}"
    details = dict(exc.details)
    return type(exc)(f"{message}; its replica keeps its last state", hint=hint,
                     source=table.source, table=table.full_name, **details)


def _decimals(text: str) -> int | None:
    """The decimals of a number written as text (``"0.120"``: 3), or None if it is not one."""
    try:
        exponent = Decimal(text).as_tuple().exponent
    except InvalidOperation:
        return None
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _failed_tables_error(source: Source, report: SyncReport) -> MeterqlError | None:
    """The run's error when tables failed: the one table's, or one naming them all."""
    failed = report.failed
    if not failed:
        return None
    first = failed[0].error
    assert first is not None
    if len(failed) == 1:
        return first
    names = ", ".join(t.table for t in failed)
    return type(first)(
        f"{len(failed)} of {len(report.tables)} tables of '{source.name}' were not synced "
        f"({names}); the first: {first.message}",
        hint=first.hint, source=source.name, table=first.table)


def _sync_table(
    duck: duckdb.DuckDBPyConnection,
    connector: Connector,
    table: Table,
    config: TableSyncConfig,
    progress: Progress | None,
    full_copy_on_schema_change: bool = True,
) -> TableSyncReport:
    t0 = time.perf_counter()
    target = _target(table)
    cur = duck.cursor()
    try:
        note = _shape_change(cur, table, full_copy_on_schema_change)
        exists = replica_columns(cur, table) != []
        incremental = config.strategy in ("append", "merge") and exists and note is None
        if not incremental:
            with transaction(cur):
                rows = _copy_whole(cur, connector, table, progress, config.cluster_by)
                cursor_value = _write_state(cur, table, config)
            return TableSyncReport(table.full_name, config.strategy, rows,
                                   time.perf_counter() - t0, cursor_value, note)
        if config.cursor is None:
            raise RuntimeError(f"the {config.strategy} sync of {table.full_name} has no cursor")
        scan, params, low = delta_scan(cur, table, config, connector.source.kind)
        with connector.stream(scan.sql, params, schema=scan.schema) as reader, \
                _writing(table):
            counted = _Counted(reader, table.full_name, progress)
            with transaction(cur):
                if config.strategy == "merge":
                    new = _merge(cur, target, table, counted, connector,
                                 reconcile=config.soft_delete is None, order=config.cluster_by)
                else:
                    again = 0  # rows of the window read again (already in the replica)
                    if low is not None:
                        again = cur.execute(
                            f"DELETE FROM {target} WHERE {quote_ident(config.cursor)} >= ?",
                            [low]).fetchall()[0][0]
                    _insert(cur, target, counted, config.cluster_by)
                    new = counted.rows - again
                cursor_value = _write_state(cur, table, config)
        return TableSyncReport(table.full_name, config.strategy, new,
                               time.perf_counter() - t0, cursor_value, note, read=counted.rows)
    except duckdb.Error as exc:
        raise _replica_error(table, exc) from exc
    finally:
        cur.close()


def _sync_cdc(
    duck: duckdb.DuckDBPyConnection,
    connector: Connector,
    source: Source,
    tables: list[Table],
    progress: Progress | None,
    full_copy_on_schema_change: bool,
    cluster_by: dict[str, tuple[str, ...]],
) -> list[TableSyncReport]:
    t0 = time.perf_counter()
    cur = duck.cursor()
    try:
        reasons = [(t, _shape_change(cur, t, full_copy_on_schema_change)) for t in tables]
    finally:
        cur.close()
    results, position = sync_cdc(
        duck, connector, source, reasons,
        lambda cur, table: _copy_whole(cur, connector, table, progress,
                                       cluster_by.get(table.full_name, ())), progress)
    seconds = time.perf_counter() - t0
    reports = []
    for result in results:
        counts = ", ".join(count(n, op) for op, n in result.changes.items() if n)
        note = "; ".join(filter(None, [
            result.note,
            f"copied {count(result.copied_rows, 'row')}" if result.copied_rows else None,
            counts or "no changes"]))
        reports.append(TableSyncReport(
            result.table.full_name, "cdc", result.copied_rows + sum(result.changes.values()),
            seconds, position, note, dict(result.changes)))
    return reports


def _shape_change(cur: duckdb.DuckDBPyConnection, table: Table,
                  full_copy_on_schema_change: bool) -> str | None:
    """Why the replica table must be copied whole because its columns changed, or None.

    A new, dropped or retyped column at the source makes this run copy the table whole, or,
    when the setting forbids that, stops the run with the replica as it was."""
    changed = column_change(cur, table)
    if changed is None:
        return None
    change = _describe_change(*changed)
    if not full_copy_on_schema_change:
        raise SourceQueryError(
            f"{table.full_name} changed at the source ({change}); the replica keeps "
            "its last state",
            source=table.source, table=table.full_name,
            hint="allow a full copy with 'meterql settings set "
            "sync_full_copy_on_schema_change on', or change the source back",
        )
    return f"columns changed at the source ({change}): copied whole"


def _copy_whole(cur: duckdb.DuckDBPyConnection, connector: Connector, table: Table,
                progress: Progress | None, order: Sequence[str] = ()) -> int:
    """Replace the replica table with every row of the source table (inside the caller's
    transaction), in the order of the columns ``order`` when it names any (the table's
    clustering key); returns the rows copied."""
    target = _target(table)
    scan = scan_select(table, list(table.columns), dialect_for(connector.source.kind), [],
                       scaled_integers=True)
    with connector.stream(scan.sql, [], schema=scan.schema) as reader, _writing(table):
        counted = _Counted(reader, table.full_name, progress)
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_qualified(table.source, table.schema)}")
        cur.execute(f"DROP TABLE IF EXISTS {target}")
        columns = ", ".join(f"{quote_ident(c.name)} {c.type}" for c in table.columns)
        cur.execute(f"CREATE TABLE {target} ({columns})")
        _insert(cur, target, counted, order)
    return counted.rows


def _insert(cur: duckdb.DuckDBPyConnection, target: str, counted: _Counted,
            order: Sequence[str] = ()) -> None:
    """Append the rows read to the replica table, sorted by ``order`` when it names columns
    (DuckDB keeps the insertion order, so each batch lands sorted by the clustering key)."""
    cur.register("sync_rows", counted.reader())
    try:
        cur.execute(f"INSERT INTO {target} SELECT * FROM sync_rows{_order_by(order)}")
    except duckdb.Error:
        if counted.error is not None:  # (reading the source failed: that error, not DuckDB's)
            raise counted.error from None
        raise
    finally:
        _unregister(cur, "sync_rows")


def _unregister(cur: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a registered view; in a transaction a failure aborted, DuckDB refuses that (the
    cursor is closed with the run anyway), and the failure is what the caller reports."""
    with contextlib.suppress(duckdb.Error):
        cur.unregister(name)


@contextlib.contextmanager
def _writing(table: Table):
    """DuckDB's errors while a source's rows stream in, as the replica's (the connector's
    stream would otherwise take them for the source's)."""
    try:
        yield
    except duckdb.Error as exc:
        raise _replica_error(table, exc) from exc


def _write_state(cur: duckdb.DuckDBPyConnection, table: Table, config: TableSyncConfig) -> Any:
    target = _target(table)
    total = cur.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
    cursor_value = None
    if config.strategy in ("append", "merge") and config.cursor:
        cursor_value = cur.execute(
            f"SELECT max({quote_ident(config.cursor)}) FROM {target}").fetchall()[0][0]
    cur.execute(
        f"INSERT OR REPLACE INTO {quote_ident(table.source)}.{STATE_SCHEMA}.sync_state "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [table.schema, table.name, config.strategy, config.cursor,
         None if cursor_value is None else str(cursor_value), total, datetime.now(UTC)],
    )
    return cursor_value


def _target(table: Table) -> str:
    return quote_qualified(table.source, table.schema, table.name)


def _replica_error(table: Table, exc: duckdb.Error) -> SourceQueryError:
    return SourceQueryError(
        f"sync of {table.full_name} failed writing the replica: {exc}",
        source=table.source, table=table.full_name,
        hint="the replica keeps its last committed state; run the sync again",
    )


def _order_by(columns: Sequence[str]) -> str:
    """`` ORDER BY "a", "b"`` for a clustering key, or nothing."""
    return " ORDER BY " + ", ".join(quote_ident(c) for c in columns) if columns else ""


def _merge(cur, target: str, table: Table, counted: _Counted, connector: Connector,
           reconcile: bool = True, order: Sequence[str] = ()) -> int:
    """Upsert the changed rows by primary key, then (unless deletes at the source are soft,
    i.e. updates the cursor already carries) drop replica rows whose key is gone. Returns the
    rows that changed: new, updated (a row read again as the replica has it is not) and
    deleted."""
    changed = counted.reader().read_all()
    key = ", ".join(quote_ident(k) for k in table.primary_key)
    cur.register("sync_rows", changed)
    try:
        [(new,)] = cur.execute(
            f"SELECT count(*) FROM (SELECT * FROM sync_rows EXCEPT ALL SELECT * FROM {target} "
            f"WHERE ({key}) IN (SELECT ({key}) FROM sync_rows))").fetchall()
        cur.execute(f"DELETE FROM {target} WHERE ({key}) IN (SELECT ({key}) FROM sync_rows)")
        cur.execute(f"INSERT INTO {target} SELECT * FROM sync_rows{_order_by(order)}")
    finally:
        _unregister(cur, "sync_rows")
    if not reconcile:
        return new
    scan = key_scan(table, connector.source.kind)
    with connector.stream(scan.sql, [], schema=scan.schema) as reader, _writing(table):
        keys = reader.read_all()
    cur.register("source_keys", keys)
    try:
        [(gone,)] = cur.execute(
            f"DELETE FROM {target} WHERE ({key}) NOT IN (SELECT ({key}) FROM source_keys)"
        ).fetchall()
    finally:
        _unregister(cur, "source_keys")
    return int(new) + int(gone)


def _describe_change(had: list[tuple[str, str]], wants: list[tuple[str, str]]) -> str:
    old, new = dict(had), dict(wants)
    parts = [f"new column {c}" for c in new if c not in old]
    parts += [f"dropped column {c}" for c in old if c not in new]
    parts += [f"{c} {old[c]} -> {new[c]}" for c in new if c in old and old[c] != new[c]]
    return ", ".join(parts) or "column order"


#: DuckDB's row group size. Batches of other lengths leave partial row groups that DuckDB
#: merges and rewrites at checkpoint (measured on 10M rows: 1.2 to 1.9 s and a 50% larger file).
ROW_GROUP = 122_880


def whole_row_groups(reader: pa.RecordBatchReader, size: int = ROW_GROUP):
    """The same rows in batches whose lengths are multiples of ``size`` (the last excepted),
    as a sync feeds them to DuckDB.

    Example:
        >>> batch = pa.record_batch({"a": list(range(5))})
        >>> reader = pa.RecordBatchReader.from_batches(batch.schema, [batch, batch])
        >>> [b.num_rows for b in whole_row_groups(reader, size=4)]
        [4, 4, 2]
    """
    schema, batches = reader.schema, reader
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= size:
            table = pa.Table.from_batches(pending, schema=schema)
            cut = count // size * size
            yield from table.slice(0, cut).combine_chunks().to_batches()
            rest = table.slice(cut)
            pending = rest.combine_chunks().to_batches() if rest.num_rows else []
            count = rest.num_rows
    if count:
        yield from pa.Table.from_batches(pending, schema=schema).combine_chunks().to_batches()


class _Counted:
    def __init__(self, reader: pa.RecordBatchReader, table: str, progress: Progress | None):
        self._reader, self._table, self._progress = reader, table, progress
        self.rows = 0
        self.error: BaseException | None = None

    def reader(self) -> pa.RecordBatchReader:
        def batches():
            try:
                for batch in whole_row_groups(self._reader):
                    self.rows += batch.num_rows
                    if self._progress is not None:
                        self._progress(self._table, self.rows)
                    yield batch
            except BaseException as exc:
                self.error = exc
                raise

        return pa.RecordBatchReader.from_batches(self._reader.schema, batches())
