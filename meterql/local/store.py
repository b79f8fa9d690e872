"""The workspace's own data: ``local.duckdb``, attached to the engine as ``local``.

Schemas users query: ``local.events.<stream>`` (usage events pushed over the API),
``local.uploads.<name>`` (CSV uploads) and ``local.manual.<name>`` (rows entered by hand).
Bookkeeping lives in ``local.__meterql__`` (event ids for de-duplication, corrections, backfills,
upload fingerprints, the audit of manual edits, last-ingest watermarks) and is not in the
catalog; its version is in ``local.__meterql__.meta``, and :data:`MIGRATIONS` upgrades it
when the workspace opens. Every write goes through :meth:`LocalStore.write`: one writer at a
time, one DuckDB transaction per call, committed before the caller is answered.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from meterql.catalog import Catalog, Column, Table
from meterql.dialects.duckdb import DIALECT as DUCKDB
from meterql.errors import WorkspaceError
from meterql.sql_text import quote_ident, quote_literal

SCHEMAS = ("events", "uploads", "manual")
META = "__meterql__"

_META_TABLES = (
    """CREATE TABLE IF NOT EXISTS local.__meterql__.streams (
        stream VARCHAR PRIMARY KEY, id_field VARCHAR NOT NULL, timestamp_field VARCHAR NOT NULL,
        customer_field VARCHAR NOT NULL, declared BOOLEAN NOT NULL DEFAULT false,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS local.__meterql__.event_ids (
        stream VARCHAR NOT NULL, id VARCHAR NOT NULL, body_hash VARCHAR NOT NULL,
        backfill VARCHAR, PRIMARY KEY (stream, id))""",
    """CREATE TABLE IF NOT EXISTS local.__meterql__.event_history (
        stream VARCHAR NOT NULL, id VARCHAR NOT NULL, action VARCHAR NOT NULL,
        previous JSON NOT NULL, actor VARCHAR, changed_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS local.__meterql__.backfills (
        id VARCHAR PRIMARY KEY, stream VARCHAR NOT NULL, starts TIMESTAMPTZ NOT NULL,
        ends TIMESTAMPTZ NOT NULL, state VARCHAR NOT NULL, events BIGINT NOT NULL DEFAULT 0,
        opened_at TIMESTAMPTZ NOT NULL DEFAULT now(), closed_at TIMESTAMPTZ,
        reverted_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS local.__meterql__.uploads (
        table_name VARCHAR NOT NULL, file_hash VARCHAR NOT NULL, mode VARCHAR NOT NULL,
        rows BIGINT NOT NULL, uploaded_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS local.__meterql__.audit (
        table_name VARCHAR NOT NULL, action VARCHAR NOT NULL, row_key JSON NOT NULL,
        before JSON, after JSON, actor VARCHAR, changed_at TIMESTAMPTZ NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS local.__meterql__.watermarks (
        table_name VARCHAR PRIMARY KEY, last_ingest_at TIMESTAMPTZ NOT NULL)""",
    # the last record of the event log (eventlog.py) applied: one row
    """CREATE TABLE IF NOT EXISTS local.__meterql__.event_log (applied_seq BIGINT NOT NULL)""",
    # the bookkeeping's version (key 'schema_version'; see MIGRATIONS)
    """CREATE TABLE IF NOT EXISTS local.__meterql__.meta (
        key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
)


def _v1(cur: duckdb.DuckDBPyConnection) -> None:
    """Body fingerprints no longer depend on a column's type: a DECIMAL with a scale is
    written without trailing zeros (see ``event_values.fingerprint_sql``), so a retry after
    its column was widened from BIGINT is still a duplicate. Every stored event's
    fingerprint is computed again from its row (in the stream or in a backfill's staging).
    Voided events have no row: theirs stay as they were (a retry of one, with a fraction,
    is then answered as a conflict rather than a duplicate; its id stays taken either way)."""
    from meterql.local.event_values import fingerprint_sql

    streams = cur.execute("SELECT stream, id_field FROM local.__meterql__.streams").fetchall()
    for stream, id_field in streams:
        for schema, table in (("events", stream), (META, f"staged_{stream}")):
            columns = cur.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = "
                "'local' AND schema_name = ? AND table_name = ?", [schema, table]).fetchall()
            fields = [(name, typ.startswith("DECIMAL(") and not typ.endswith(",0)"))
                      for name, typ in columns if name not in ("_ingested_at", "_backfill")]
            if not any(fraction for _, fraction in fields):
                continue  # (nothing else renders differently)
            cur.execute(
                f"UPDATE local.{META}.event_ids AS e SET body_hash = r.fp FROM (SELECT "
                f"{quote_ident(id_field)} AS id, {fingerprint_sql(fields)} AS fp FROM "
                f"local.{quote_ident(schema)}.{quote_ident(table)}) AS r "
                "WHERE e.stream = ? AND e.id = r.id", [stream])


#: Each entry upgrades local.duckdb's bookkeeping from version ``i`` to ``i + 1``; append,
#: never edit.
MIGRATIONS: tuple[Callable[[duckdb.DuckDBPyConnection], None], ...] = (_v1,)


class LocalStore:
    def __init__(self, duck: duckdb.DuckDBPyConnection, home: Path, catalog: Catalog) -> None:
        self._duck = duck
        self._catalog = catalog
        self.home = home
        self._lock = threading.RLock()
        path = home / "local.duckdb"
        attached = {r[0] for r in duck.execute(
            "SELECT database_name FROM duckdb_databases()").fetchall()}
        if "local" not in attached:
            duck.execute(f"ATTACH {quote_literal(str(path))} AS local")
        for schema in (*SCHEMAS, META):
            duck.execute(f"CREATE SCHEMA IF NOT EXISTS local.{schema}")
        for ddl in _META_TABLES:
            duck.execute(ddl)
        self._marks: dict[str, datetime] = {}
        self._before_read: dict[str, Callable[[], None]] = {}
        self._migrate()
        self.refresh_catalog()

    def _migrate(self) -> None:
        with self.write() as cur:
            row = cur.execute("SELECT value FROM local.__meterql__.meta WHERE key = "
                              "'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise WorkspaceError(
                f"local.duckdb was written by a newer meterql (bookkeeping version {version}, "
                f"this one knows {len(MIGRATIONS)})", hint="upgrade meterql")
        for step in range(version, len(MIGRATIONS)):
            with self.write() as cur:
                MIGRATIONS[step](cur)
                cur.execute("INSERT OR REPLACE INTO local.__meterql__.meta VALUES "
                            "('schema_version', ?)", [str(step + 1)])

    @contextlib.contextmanager
    def write(self, committed: Callable[[], None] | None = None
              ) -> Iterator[duckdb.DuckDBPyConnection]:
        """One writer, one transaction: committed when the block ends, rolled back on error.
        ``committed`` runs once the commit succeeded, before the next writer starts (to publish
        what the transaction changed, such as cached stream shapes)."""
        with self._lock:
            cur = self._duck.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
                cur.execute("COMMIT")
                if committed is not None:
                    committed()
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()

    def read(self) -> duckdb.DuckDBPyConnection:
        return self._duck.cursor()

    def before_read(self, schema: str, step: Callable[[], None]) -> None:
        """Have :meth:`prepare_read` run ``step`` before a query reads a table of
        ``local.<schema>`` (the workspace registers the event log's flush for ``events``)."""
        self._before_read[schema] = step

    def prepare_read(self, tables: Iterable[str]) -> None:
        """Make everything already answered visible to a query that reads ``tables`` (full
        names; other sources' are ignored). For ``local.events.*`` this applies the event
        log: a 2xx push promises that the next query sees its events."""
        schemas = {t.split(".", 2)[1] for t in tables if t.startswith("local.")}
        for schema in sorted(schemas):
            step = self._before_read.get(schema)
            if step is not None:
                step()

    def touch(self, cur: duckdb.DuckDBPyConnection, table: str) -> None:
        """Record an ingest into ``table`` (``schema.name``) in the open transaction."""
        now = datetime.now(UTC)
        # an update (the common case) costs a third of DuckDB's INSERT OR REPLACE
        counted = cur.execute("UPDATE local.__meterql__.watermarks SET last_ingest_at = ? "
                              "WHERE table_name = ?", [now, table]).fetchone()
        if counted is None:
            raise RuntimeError("DuckDB answered an UPDATE without its row count")
        updated = counted[0]
        if not updated:
            cur.execute("INSERT INTO local.__meterql__.watermarks VALUES (?, ?)", [table, now])
        self._marks[table] = now

    def mark(self, table: str, at: datetime) -> None:
        """An ingest into ``table`` committed at ``at``, recorded in memory only: for event
        streams, whose rows carry ``_ingested_at`` (read back by :meth:`watermark`)."""
        self._marks[table] = max(at, self._marks.get(table, at))

    def watermark(self, table: str) -> dict[str, Any]:
        """``local.schema.name`` -> its last ingest (None if nothing was ingested yet): the
        later of the recorded one and, for event streams, the newest row's ``_ingested_at``."""
        _, schema, name = table.split(".", 2)
        key = f"{schema}.{name}"
        if key not in self._marks:
            with self.read() as cur:
                rows = cur.execute("SELECT last_ingest_at FROM local.__meterql__.watermarks "
                                   "WHERE table_name = ?", [key]).fetchall()
                if schema == "events":
                    rows += cur.execute("SELECT max(_ingested_at) FROM local.events."
                                        f"{quote_ident(name)} HAVING count(*) > 0").fetchall()
            if rows:  # (a commit may have marked a later time meanwhile)
                self.mark(key, max(r[0] for r in rows))
        at = self._marks.get(key)
        return {"table": table, "kind": "local",
                "last_ingest_at": None if at is None else at.isoformat()}

    def refresh_catalog(self) -> None:
        """Tell the catalog the local tables' current columns (after a table or column was
        added), so queries plan against them."""
        with self.read() as cur:
            rows = cur.execute(
                "SELECT schema_name, table_name, column_name, data_type, is_nullable "
                "FROM duckdb_columns() WHERE database_name = 'local' AND schema_name IN "
                "('events', 'uploads', 'manual') ORDER BY schema_name, table_name, column_index"
            ).fetchall()
            keys = dict(((r[0], r[1]), tuple(r[2])) for r in cur.execute(
                "SELECT schema_name, table_name, constraint_column_names FROM "
                "duckdb_constraints() WHERE database_name = 'local' AND "
                "constraint_type = 'PRIMARY KEY'").fetchall())
        tables: dict[tuple[str, str], list[Column]] = {}
        for schema, name, column, typ, nullable in rows:
            tables.setdefault((schema, name), []).append(
                Column(column, DUCKDB.map_type(typ), typ, bool(nullable)))
        self._catalog.set_local_tables([
            Table("local", schema, name, tuple(columns), kind="table",
                  primary_key=keys.get((schema, name), ()))
            for (schema, name), columns in tables.items()
        ])

