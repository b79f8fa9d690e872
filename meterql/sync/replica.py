"""Replicas: one DuckDB file per synced source, attached to the engine under the source's name,
so ``pg.public.events`` names the same table whether ``pg`` is direct or synced.

Each replica file also holds its sync state (``__meterql__.sync_state``), written in the same
transaction as the rows, so the replica is always exactly one committed sync run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from meterql.catalog.catalog import SYNC_STATE_SCHEMA as STATE_SCHEMA
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


def attach(duck: duckdb.DuckDBPyConnection, home: Path, source: str) -> None:
    """Attach (creating if needed) a source's replica under the source's name."""
    path = replica_path(home, source)
    private_folder(path.parent)
    if source not in _attached(duck):
        duck.execute(f"ATTACH {quote_literal(str(path))} AS {quote_ident(source)}")
        private_file(path)  # (0600: DuckDB creates it with the umask's mode)
    duck.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(source)}.{STATE_SCHEMA}")
    duck.execute(
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


