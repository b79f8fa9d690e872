"""The ``cdc`` strategy: PostgreSQL's own change log, read through a logical replication slot.

A run reads, over the ordinary connection and inside the run's snapshot, every change the slot
holds for the source's ``cdc`` tables (``pg_logical_slot_peek_binary_changes`` with the
``pgoutput`` plugin and a publication), and applies them in commit order:

- Only committed transactions are in the log; a rolled-back one never appears.
- All ``cdc`` tables of a source are applied in ONE DuckDB transaction together with their
  state (the log position applied, per table). Only after that commit is the slot advanced to
  that position (``pg_replication_slot_advance``): the one thing meterql changes at a source,
  and only on the slot the user gave it.
- A run killed after the commit and before the advance reads those transactions again next
  time; each table skips transactions at or before the position it has applied. Exactly once.
- A table copied whole (its first run, or a changed column list) is copied in the snapshot and
  then has the log replayed over it from the slot's confirmed position. Replaying a change the
  copy already holds is harmless: every change carries the row's full new image (or the key of
  a deleted row), and the last change per key wins, so the table ends exactly at the log's end.

Values arrive as PostgreSQL text output and are cast by DuckDB to the replica column's type.
Columns a change leaves out (an unchanged TOASTed value, or a column added later) keep the
value the replica or an earlier change in the run holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from meterql.catalog import Source, Table
from meterql.connectors import Connector
from meterql.engine.hybrid import Overlay
from meterql.errors import SourceQueryError
from meterql.sql_text import (
    quote_ident,
    quote_ident_if_needed,
    quote_literal,
    quote_qualified,
)
from meterql.sync.pgoutput import (
    UNCHANGED,
    Change,
    Commit,
    Decoder,
    Truncate,
    Value,
    format_lsn,
    parse_lsn,
)
from meterql.sync.replica import STATE_SCHEMA, transaction
from meterql.wording import count

#: Changes held in memory before they are written into the open replica transaction.
FLUSH_EVERY = 50_000

_SLOT_SQL = (
    "SELECT s.plugin::text, s.confirmed_flush_lsn::text, pg_current_wal_flush_lsn()::text "
    "FROM pg_replication_slots s WHERE s.slot_name = $1 AND s.database = current_database()"
)
_PUBLICATION_SQL = (
    "SELECT p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, "
    "  ARRAY(SELECT t.schemaname || '.' || t.tablename FROM pg_publication_tables t "
    "        WHERE t.pubname = p.pubname)::text "
    "FROM pg_publication p WHERE p.pubname = $1"
)
_PEEK_SQL = (
    "SELECT data FROM pg_logical_slot_peek_binary_changes("
    "$1, $2::pg_lsn, NULL, 'proto_version', '1', 'publication_names', $3)"
)
_ADVANCE_SQL = "SELECT (pg_replication_slot_advance($1, $2::pg_lsn)).end_lsn::text"


def slot_names(source: Source) -> tuple[str, str]:
    """The replication slot and publication a source's ``cdc`` tables read."""
    slot = source.options.get("cdc_slot") or f"meterql_{source.name}".lower()
    return slot, source.options.get("cdc_publication") or slot


def setup_sql(source: Source, tables: list[Table]) -> str:
    """What a PostgreSQL administrator runs once so ``cdc`` works (shown in errors and docs)."""
    slot, publication = slot_names(source)
    names = ", ".join(f"{quote_ident_if_needed(t.schema)}.{quote_ident_if_needed(t.name)}"
                      for t in tables) or "..."
    return (
        "with wal_level = logical (then restart), as a superuser: "
        f"CREATE PUBLICATION {publication} FOR TABLE {names}; "
        f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput'); "
        "and give meterql's role the REPLICATION attribute"
    )


@dataclass
class CdcTableResult:
    table: Table
    copied_rows: int = 0
    changes: dict[str, int] = field(
        default_factory=lambda: {"insert": 0, "update": 0, "delete": 0, "truncate": 0})
    note: str | None = None


Progress = Callable[[str, int], None]
CopyWhole = Callable[[duckdb.DuckDBPyConnection, Table], int]


def sync_cdc(
    duck: duckdb.DuckDBPyConnection,
    connector: Connector,
    source: Source,
    tables: list[tuple[Table, str | None]],
    copy_whole: CopyWhole,
    progress: Progress | None = None,
) -> tuple[list[CdcTableResult], str]:
    """Apply the slot's changes to the ``cdc`` tables of one source (called inside the run's
    snapshot). ``tables`` pairs each table with the reason it must first be copied whole, or
    None. Returns per-table results and the log position now applied."""
    slot, publication = slot_names(source)
    confirmed, end = _check_source(connector, source, [t for t, _ in tables], slot, publication)
    cur = duck.cursor()
    try:
        applied = _applied_positions(cur, source.name)
        results = {(t.schema, t.name): CdcTableResult(t, note=reason) for t, reason in tables}
        with transaction(cur):
            for table, reason in tables:
                if reason is not None or (table.schema, table.name) not in applied:
                    results[(table.schema, table.name)].copied_rows = copy_whole(cur, table)
                    applied[(table.schema, table.name)] = confirmed
            _apply_log(cur, connector, slot, publication, end, results, applied, progress)
            for result in results.values():
                _write_state(cur, result.table, end)
    except duckdb.Error as exc:
        raise SourceQueryError(
            f"cdc sync of source '{source.name}' failed writing the replica: {exc}",
            source=source.name,
            hint="the replica keeps its last committed state; run the sync again",
        ) from exc
    finally:
        cur.close()
    if end > confirmed:
        with connector.stream(_ADVANCE_SQL, [slot, format_lsn(end)]) as reader:
            reader.read_all()
    return list(results.values()), format_lsn(end)


def _check_source(connector: Connector, source: Source, tables: list[Table], slot: str,
                  publication: str) -> tuple[int, int]:
    """The slot's confirmed position and the log's flushed end; clear errors for missing
    setup."""
    with connector.stream(_SLOT_SQL, [slot]) as reader:
        rows = reader.read_all().to_pylist()
    if not rows:
        raise SourceQueryError(
            f"replication slot '{slot}' does not exist in the database of source '{source.name}'",
            source=source.name,
            hint=setup_sql(source, tables)
            + (f"; or name an existing slot with 'meterql source set {source.name} "
               "--option cdc_slot=NAME'"),
        )
    plugin, confirmed, end = rows[0]["plugin"], rows[0]["confirmed_flush_lsn"], rows[0][
        "pg_current_wal_flush_lsn"]
    if plugin != "pgoutput":
        raise SourceQueryError(
            f"replication slot '{slot}' uses the {plugin} plugin; cdc reads pgoutput",
            source=source.name,
            hint=f"create a slot with SELECT pg_create_logical_replication_slot('{slot}', "
            "'pgoutput') and point cdc_slot at it",
        )
    with connector.stream(_PUBLICATION_SQL, [publication]) as reader:
        pubs = reader.read_all().to_pylist()
    if not pubs:
        raise SourceQueryError(
            f"publication '{publication}' does not exist in the database of source "
            f"'{source.name}'",
            source=source.name,
            hint=setup_sql(source, tables),
        )
    pub = list(pubs[0].values())
    if not all(pub[:4]):
        raise SourceQueryError(
            f"publication '{publication}' does not publish every kind of change",
            source=source.name,
            hint=f"ALTER PUBLICATION {publication} SET (publish = "
            "'insert, update, delete, truncate')",
        )
    published = set(pub[4].strip("{}").replace('"', "").split(",")) if pub[4] != "{}" else set()
    for table in tables:
        if f"{table.schema}.{table.name}" not in published:
            raise SourceQueryError(
                f"{table.full_name} is not in publication '{publication}', so its changes "
                "would never reach the replica",
                source=source.name, table=table.full_name,
                hint=f"ALTER PUBLICATION {publication} ADD TABLE "
                f"{quote_ident_if_needed(table.schema)}.{quote_ident_if_needed(table.name)}",
            )
    return parse_lsn(confirmed), parse_lsn(end)


def applied_position(cur: duckdb.DuckDBPyConnection, table: Table) -> int | None:
    """The change log position a ``cdc`` table's replica has applied (``None``: none yet,
    its next run copies it whole)."""
    return _applied_positions(cur, table.source).get((table.schema, table.name))


def _applied_positions(cur: duckdb.DuckDBPyConnection, source: str) -> dict[tuple[str, str], int]:
    rows = cur.execute(
        f"SELECT schema_name, table_name, cursor_value FROM {quote_ident(source)}.{STATE_SCHEMA}"
        ".sync_state WHERE strategy = 'cdc' AND cursor_value IS NOT NULL").fetchall()
    return {(schema, table): parse_lsn(value) for schema, table, value in rows}


def _apply_log(cur, connector: Connector, slot: str, publication: str, end: int,
               results: dict[tuple[str, str], CdcTableResult], applied: dict[tuple[str, str], int],
               progress: Progress | None) -> None:
    buffers = {key: _TableBuffer(result.table) for key, result in results.items()}

    def flush() -> None:
        for buffer in buffers.values():
            buffer.flush(cur)

    _read_log(connector, slot, publication, end, buffers, results, applied, progress, flush)
    flush()


def _read_log(connector: Connector, slot: str, publication: str, end: int,
              buffers: dict[tuple[str, str], _TableBuffer],
              results: dict[tuple[str, str], CdcTableResult],
              applied: dict[tuple[str, str], int], progress: Progress | None,
              flush: Callable[[], None] | None) -> None:
    """Peek the slot's committed changes up to ``end`` into ``buffers`` (nothing is consumed);
    ``flush``, when given, empties the buffers every ``FLUSH_EVERY`` changes."""
    decoder = Decoder()
    pending: list[Change | Truncate] = []  # the open transaction's changes to our tables
    held = 0
    with connector.stream(_PEEK_SQL, [slot, format_lsn(end), publication]) as reader:
        for batch in reader:
            for data in batch.column(0).to_pylist():
                message = decoder.decode(data)
                if isinstance(message, Change):
                    key = (message.relation.schema, message.relation.name)
                    if key in buffers:
                        pending.append(message)
                elif isinstance(message, Truncate):
                    pending.append(message)
                elif isinstance(message, Commit):
                    for change in pending:
                        held += _take(change, message.end_lsn, buffers, results, applied)
                    pending = []
                    if flush is not None and held >= FLUSH_EVERY:
                        flush()
                        held = 0
                    if progress is not None:
                        progress(f"{connector.source.name} (cdc)", sum(
                            sum(r.changes.values()) for r in results.values()))


def overlay(cur: duckdb.DuckDBPyConnection, connector: Connector, table: Table,
            prefix: str) -> Overlay:
    """The hybrid read of a ``cdc`` table: the replica with the slot's pending changes applied
    in a query, as the next run would apply them (the slot is peeked, never advanced)."""
    t0 = time.perf_counter()
    source = connector.source
    slot, publication = slot_names(source)
    _, end = _check_source(connector, source, [table], slot, publication)
    key = (table.schema, table.name)
    applied = _applied_positions(cur, source.name)
    if key not in applied:
        raise RuntimeError(f"{table.full_name} has no change log position applied yet")
    results = {key: CdcTableResult(table)}
    buffer = _TableBuffer(table)
    _read_log(connector, slot, publication, end, {key: buffer}, results, applied, None, None)
    name = f"{prefix}_changes"
    names = ", ".join(quote_ident(c) for c in buffer.columns)
    keys = ", ".join(quote_ident(k) for k in buffer.key)
    # After a truncate the replica's rows are gone, also as the base of unchanged columns.
    base = f"(SELECT * FROM {buffer.target} WHERE false)" if buffer.truncated else buffer.target
    final = buffer.final_sql(name, base)
    sql = (f"WITH final AS ({final}) SELECT {names} FROM {base} WHERE ({keys}) NOT IN "
           f"(SELECT ({keys}) FROM final) UNION ALL SELECT {names} FROM final WHERE __op = 'U'")
    counts = ", ".join(count(n, op) for op, n in results[key].changes.items() if n)
    return Overlay(sql, {name: buffer.frame()}, sum(results[key].changes.values()),
                   time.perf_counter() - t0,
                   f"cdc delta: {counts or 'no changes'} pending in slot {slot}")


def _take(change: Change | Truncate, commit_end: int, buffers: dict[tuple[str, str], _TableBuffer],
          results: dict[tuple[str, str], CdcTableResult],
          applied: dict[tuple[str, str], int]) -> int:
    relations = change.relations if isinstance(change, Truncate) else (change.relation,)
    taken = 0
    for relation in relations:
        key = (relation.schema, relation.name)
        if key not in buffers or commit_end <= applied.get(key, 0):
            continue  # not ours, or already in the replica (a run that stopped before advancing)
        if isinstance(change, Truncate):
            buffers[key].truncate()
            results[key].changes["truncate"] += 1
        else:
            buffers[key].add(change)
            results[key].changes[change.op] += 1
        taken += 1
    return taken


class _TableBuffer:
    """One table's changes in commit order, written into the replica as a set: per key the
    last change wins; touched keys are deleted and their final rows inserted."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.target = quote_qualified(table.source, table.schema, table.name)
        self.columns = [c.name for c in table.columns]
        self.key = list(table.primary_key)
        self.rows: list[tuple[int, str, dict[str, Value]]] = []
        self.latest: dict[tuple[Value, ...], dict[str, Value]] = {}
        self.truncated = False

    def add(self, change: Change) -> None:
        names = change.relation.columns
        if change.old is not None:
            old = dict(zip(names, change.old, strict=True))
            old_key = tuple(old.get(k) for k in self.key)
        else:
            old_key = None
        if change.new is not None:
            new = dict(zip(names, change.new, strict=True))
            known = self.latest.get(tuple(new.get(k) for k in self.key))
            row = {c: _resolve(new.get(c, UNCHANGED), known, c) for c in self.columns}
            new_key = tuple(row[k] for k in self.key)
            if old_key is not None and old_key != new_key:
                self._delete(old_key)
            self.rows.append((len(self.rows), "U", row))
            self.latest[new_key] = row
        elif old_key is not None:
            self._delete(old_key)

    def _delete(self, key: tuple[Value, ...]) -> None:
        self.rows.append((len(self.rows), "D", dict(zip(self.key, key, strict=True))))
        self.latest.pop(key, None)

    def truncate(self) -> None:
        self.rows, self.latest, self.truncated = [], {}, True

    def frame(self) -> pa.Table:
        """The buffered changes: sequence, operation, columns kept as they were, and every
        column's new value as text."""
        arrays = {
            "__seq": pa.array([seq for seq, _, _ in self.rows], pa.int64()),
            "__op": pa.array([op for _, op, _ in self.rows], pa.string()),
            "__keep": pa.array([[c for c, v in row.items() if v is UNCHANGED]
                                for _, _, row in self.rows], pa.list_(pa.string())),
        }
        for column in self.columns:
            arrays[column] = pa.array(
                [None if (v := row.get(column)) is UNCHANGED else v for _, _, row in self.rows],
                pa.string())
        return pa.table(arrays)

    def final_sql(self, changes: str, base: str) -> str:
        """Per key, its last change (``__op`` U or D) with the row it leaves, typed as the
        replica; columns a change left out are taken from ``base`` (the replica)."""
        typed = {c.name: _from_text(f"c.{quote_ident(c.name)}", c.type) for c in self.table.columns}
        key_cols = ", ".join(quote_ident(k) for k in self.key)
        join = " AND ".join(f"r.{quote_ident(k)} = {typed[k]}" for k in self.key)
        values = ", ".join(
            f"CASE WHEN list_contains(c.__keep, {quote_literal(c)}) THEN r.{quote_ident(c)} "
            f"ELSE {typed[c]} END AS {quote_ident(c)}"
            for c in self.columns
        )
        last = (f"SELECT * FROM {quote_ident(changes)} QUALIFY row_number() OVER "
                f"(PARTITION BY {key_cols} ORDER BY __seq DESC) = 1")
        return f"SELECT c.__op, {values} FROM ({last}) c LEFT JOIN {base} r ON {join}"

    def flush(self, cur: duckdb.DuckDBPyConnection) -> None:
        if self.truncated:
            cur.execute(f"DELETE FROM {self.target}")
            self.truncated = False
        if not self.rows:
            return
        cur.register("cdc_changes", self.frame())
        try:
            self._write(cur)
        finally:
            cur.unregister("cdc_changes")
        self.rows, self.latest = [], {}

    def _write(self, cur: duckdb.DuckDBPyConnection) -> None:
        key_cols = ", ".join(quote_ident(k) for k in self.key)
        cur.execute(f"CREATE OR REPLACE TEMP TABLE cdc_final AS "
                    f"{self.final_sql('cdc_changes', self.target)}")
        try:
            cur.execute(f"DELETE FROM {self.target} WHERE ({key_cols}) IN "
                        f"(SELECT ({key_cols}) FROM cdc_final)")
            names = ", ".join(quote_ident(c) for c in self.columns)
            cur.execute(f"INSERT INTO {self.target} SELECT {names} FROM cdc_final "
                        "WHERE __op = 'U'")
        finally:
            cur.execute("DROP TABLE cdc_final")


def _resolve(value: Value, known: dict[str, Value] | None, column: str) -> Value:
    """An unchanged value taken from an earlier change of the same row in this run, if any."""
    if value is UNCHANGED and known is not None:
        return known.get(column, UNCHANGED)
    return value


def _from_text(expr: str, duckdb_type: str) -> str:
    """A DuckDB expression turning PostgreSQL's text output into the replica column's type."""
    upper = duckdb_type.upper()
    if upper in ("BLOB", "BYTEA", "VARBINARY"):
        return f"from_hex(substr({expr}, 3))"  # bytea_output = hex: '\\x4142'
    if upper == "INTERVAL":
        return f"CAST(replace({expr}, '+', '') AS INTERVAL)"  # '-1 days +02:00:00'
    if upper in ("VARCHAR", "TEXT"):
        return expr
    return f"CAST({expr} AS {duckdb_type})"


def _write_state(cur: duckdb.DuckDBPyConnection, table: Table, end: int) -> None:
    target = quote_qualified(table.source, table.schema, table.name)
    rows = cur.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]
    cur.execute(
        f"INSERT OR REPLACE INTO {quote_ident(table.source)}.{STATE_SCHEMA}.sync_state "
        "VALUES (?, ?, 'cdc', NULL, ?, ?, ?)",
        [table.schema, table.name, format_lsn(end), rows, datetime.now(UTC)],
    )


__all__ = ["CdcTableResult", "applied_position", "overlay", "setup_sql", "slot_names",
           "sync_cdc"]
