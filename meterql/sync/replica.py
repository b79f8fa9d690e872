"""Replicas: one DuckDB file per synced source, attached to the engine under the source's name,
so ``pg.public.events`` names the same table whether ``pg`` is direct or synced.

Each replica file also holds its sync state (``__meterql__.sync_state``), written in the same
transaction as the rows, so the replica is always exactly one committed sync run. That
bookkeeping has a version (``__meterql__.meta``, key ``schema_version``) and a migration chain
(:data:`MIGRATIONS`), as the catalog has: :func:`attach` upgrades an older replica, and refuses
one written by a newer meterql.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from meterql.catalog.catalog import SYNC_STATE_SCHEMA as STATE_SCHEMA
from meterql.errors import WorkspaceError
from meterql.file_modes import private_file, private_folder
from meterql.sql_text import quote_ident, quote_literal


@dataclass(frozen=True)
class ReplicaWatermark:
    """How fresh one replica table is: its last committed sync."""

    table: str
    strategy: str
    synced_at: datetime
    rows: int
    cursor_column: str | None = None
    cursor: Any = None

    def describe(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "strategy": self.strategy,
            "synced_at": self.synced_at.isoformat(),
            "rows": self.rows,
            "cursor_column": self.cursor_column,
            "cursor": None if self.cursor is None else str(self.cursor),
        }


def replica_folder(home: Path) -> Path:
    """The folder of a workspace's replica files."""
    return home / "replicas"


def replica_path(home: Path, source: str) -> Path:
    return replica_folder(home) / f"{source}.duckdb"


def _v1(cur: duckdb.DuckDBPyConnection, source: str) -> None:
    """The sync state: one row per table, written with the table's rows. (Replicas made before
    the bookkeeping had a version have it already: hence IF NOT EXISTS.)"""
    cur.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {quote_ident(source)}.{STATE_SCHEMA}.sync_state (
            schema_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            strategy VARCHAR NOT NULL,
            cursor_column VARCHAR,
            cursor_value VARCHAR,
            rows BIGINT NOT NULL,
            synced_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (schema_name, table_name)
        )
        """
    )


#: Each entry upgrades a replica's bookkeeping from version ``i`` to ``i + 1`` (given a cursor
#: and the source's name, which is the attached replica's name); append, never edit.
MIGRATIONS: tuple[Callable[[duckdb.DuckDBPyConnection, str], None], ...] = (_v1,)
#: The replica bookkeeping version this meterql writes.
SCHEMA_VERSION = len(MIGRATIONS)


def attach(duck: duckdb.DuckDBPyConnection, home: Path, source: str) -> None:
    """Attach (creating if needed) a source's replica under the source's name, and bring its
    bookkeeping to :data:`SCHEMA_VERSION`.

    Raises:
        WorkspaceError: the replica was written by a newer meterql (it is left detached).
    """
    path = replica_path(home, source)
    private_folder(path.parent)
    attached_now = source not in _attached(duck)
    if attached_now:
        duck.execute(f"ATTACH {quote_literal(str(path))} AS {quote_ident(source)}")
        private_file(path)  # (0600: DuckDB creates it with the umask's mode)
    try:
        _migrate(duck, source, path)
    except BaseException:
        if attached_now:
            with contextlib.suppress(duckdb.Error):
                duck.execute(f"DETACH {quote_ident(source)}")
        raise


def replica_version(duck: duckdb.DuckDBPyConnection, source: str) -> int:
    """The bookkeeping version of an attached replica (0: made before it had one)."""
    rows = duck.execute(
        f"SELECT value FROM {quote_ident(source)}.{STATE_SCHEMA}.meta "
        "WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


def _migrate(duck: duckdb.DuckDBPyConnection, source: str, path: Path) -> None:
    db = quote_ident(source)
    duck.execute(f"CREATE SCHEMA IF NOT EXISTS {db}.{STATE_SCHEMA}")
    duck.execute(f"CREATE TABLE IF NOT EXISTS {db}.{STATE_SCHEMA}.meta "
                 "(key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    version = replica_version(duck, source)
    if version > SCHEMA_VERSION:
        raise WorkspaceError(
            f"the replica of source '{source}' ({path}) was written by a newer meterql "
            f"(replica version {version}, this one knows {SCHEMA_VERSION})",
            source=source,
            hint=f"upgrade meterql, or delete {path.name} from {path.parent} and run "
                 f"'meterql sync {source}' (a full copy)")
    for step in range(version, SCHEMA_VERSION):
        cur = duck.cursor()
        try:
            with transaction(cur):
                MIGRATIONS[step](cur, source)
                cur.execute(f"INSERT OR REPLACE INTO {db}.{STATE_SCHEMA}.meta VALUES "
                            "('schema_version', ?)", [str(step + 1)])
        finally:
            cur.close()


@contextlib.contextmanager
def transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction on ``cur``: committed when the block ends, rolled back (and
    the error raised as it was) when it fails."""
    cur.execute("BEGIN TRANSACTION")
    try:
        yield
        cur.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        raise


def detach(duck: duckdb.DuckDBPyConnection, source: str, delete_file: Path | None = None) -> None:
    if source in _attached(duck):
        duck.execute(f"DETACH {quote_ident(source)}")
    if delete_file is not None:
        for path in (delete_file, delete_file.with_name(delete_file.name + ".wal")):
            path.unlink(missing_ok=True)


def watermarks(
    duck: duckdb.DuckDBPyConnection, source: str
) -> dict[tuple[str, str], ReplicaWatermark]:
    """The last committed sync of every table of a replica."""
    rows = duck.execute(
        f"SELECT schema_name, table_name, strategy, synced_at, rows, cursor_column, cursor_value "
        f"FROM {quote_ident(source)}.{STATE_SCHEMA}.sync_state"
    ).fetchall()
    return {
        (schema, table): ReplicaWatermark(f"{source}.{schema}.{table}", strategy, synced_at,
                                          rows, cursor_column, cursor)
        for schema, table, strategy, synced_at, rows, cursor_column, cursor in rows
    }


def _attached(duck: duckdb.DuckDBPyConnection) -> set[str]:
    rows = duck.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    return {row[0] for row in rows}


