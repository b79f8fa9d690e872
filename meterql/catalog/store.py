"""The catalog's persistence: one DuckDB file with a schema version and a migration chain."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import duckdb

from meterql.catalog.model import Column, Source, Table

SCHEMA_VERSION = 7


def _v1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE sources (
            name VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,
            uri VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,
            options VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            refreshed_at TIMESTAMPTZ
        )
        """
    )
    con.execute(
        """
        CREATE TABLE columns (
            source VARCHAR NOT NULL,
            schema_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            table_kind VARCHAR NOT NULL,
            ordinal INTEGER NOT NULL,
            column_name VARCHAR NOT NULL,
            duckdb_type VARCHAR NOT NULL,
            source_type VARCHAR NOT NULL,
            nullable BOOLEAN NOT NULL
        )
        """
    )


def _v2(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE table_stats (
            source VARCHAR NOT NULL,
            schema_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            row_estimate BIGINT
        )
        """
    )


def _v3(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE sync_tables (
            source VARCHAR NOT NULL,
            schema_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            strategy VARCHAR NOT NULL,
            cursor_column VARCHAR,
            lag BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (source, schema_name, table_name)
        )
        """
    )


def _v4(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE table_keys (
            source VARCHAR NOT NULL,
            schema_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            column_name VARCHAR NOT NULL
        )
        """
    )


def _v5(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("ALTER TABLE sync_tables ADD COLUMN soft_delete VARCHAR")


def _v6(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE aggregates (
            name VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            sql VARCHAR NOT NULL,
            description VARCHAR,
            unit VARCHAR,
            dialect VARCHAR NOT NULL,
            customer_column VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (name, version)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE evaluations (
            id VARCHAR PRIMARY KEY,
            aggregate VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            seconds DOUBLE NOT NULL,
            rows BIGINT NOT NULL,
            result_hash VARCHAR NOT NULL,
            provenance VARCHAR NOT NULL  -- JSON: sql, parameters, sources, watermarks
        )
        """
    )
    con.execute(
        """
        CREATE TABLE api_keys (
            id VARCHAR PRIMARY KEY,
            name VARCHAR,
            scope VARCHAR NOT NULL,
            key_hash VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            revoked_at TIMESTAMPTZ
        )
        """
    )


def _v7(con: duckdb.DuckDBPyConnection) -> None:
    # an aggregate's freshness bound (its header '-- freshness: 1h'), kept with each version
    con.execute("ALTER TABLE aggregates ADD COLUMN freshness VARCHAR")


#: Each entry upgrades the catalog from version ``i`` to ``i + 1``; append, never edit.
MIGRATIONS: tuple[Callable[[duckdb.DuckDBPyConnection], None], ...] = (
    _v1, _v2, _v3, _v4, _v5, _v6, _v7)


class CatalogStore:
    """Reads and writes sources and introspected tables in ``catalog.duckdb``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._migrate()

    def _migrate(self) -> None:
        con = self._con
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            from meterql.errors import WorkspaceError

            raise WorkspaceError(
                f"the catalog was written by a newer meterql (schema version {version}, "
                f"this one knows {SCHEMA_VERSION})",
                hint="upgrade meterql",
            )
        for step in range(version, SCHEMA_VERSION):
            with self._transaction():
                MIGRATIONS[step](con)
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(step + 1)]
                )

    def settings(self) -> dict[str, str]:
        rows = self._con.execute(
            "SELECT key, value FROM meta WHERE key LIKE 'setting:%'"
        ).fetchall()
        return {key.removeprefix("setting:"): value for key, value in rows}

    def set_setting(self, name: str, value: str | None) -> None:
        self._con.execute("BEGIN")
        if value is None:
            self._con.execute("DELETE FROM meta WHERE key = ?", [f"setting:{name}"])
        else:
            self._con.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", [f"setting:{name}", value]
            )
        self._bump()
        self._con.execute("COMMIT")

    @property
    def version(self) -> int:
        """A counter bumped by every change; plans are cached per catalog version."""
        row = self._con.execute("SELECT value FROM meta WHERE key = 'catalog_version'").fetchone()
        return int(row[0]) if row else 0

    def _bump(self) -> None:
        self._con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('catalog_version', ?)", [str(self.version + 1)]
        )

    def sources(self) -> list[Source]:
        rows = self._con.execute(
            "SELECT name, kind, uri, mode, options FROM sources ORDER BY name"
        ).fetchall()
        return [Source(n, k, u, m, json.loads(o)) for n, k, u, m, o in rows]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction: committed whole, or rolled back whole (the connection stays usable)."""
        self._con.execute("BEGIN")
        try:
            yield
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # keep the original error, not this one
                self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def add_source(self, source: Source, tables: Iterable[Table]) -> None:
        """Store a source and its introspected tables together: both or neither."""
        with self._transaction():
            self._con.execute(
                "INSERT INTO sources (name, kind, uri, mode, options, refreshed_at) "
                "VALUES (?, ?, ?, ?, ?, now())",
                [source.name, source.kind, source.uri, source.mode, json.dumps(source.options)],
            )
            self._insert_tables(tables)
            self._bump()

    def delete_source(self, name: str) -> None:
        with self._transaction():
            self._con.execute("DELETE FROM columns WHERE source = ?", [name])
            self._con.execute("DELETE FROM table_stats WHERE source = ?", [name])
            self._con.execute("DELETE FROM sync_tables WHERE source = ?", [name])
            self._con.execute("DELETE FROM table_keys WHERE source = ?", [name])
            self._con.execute("DELETE FROM sources WHERE name = ?", [name])
            self._bump()

    def set_options(self, name: str, options: dict[str, Any]) -> None:
        with self._transaction():
            self._con.execute("UPDATE sources SET options = ? WHERE name = ?",
                              [json.dumps(options), name])
            self._bump()

    def set_mode(self, name: str, mode: str) -> None:
        with self._transaction():
            self._con.execute("UPDATE sources SET mode = ? WHERE name = ?", [mode, name])
            self._bump()

    def sync_configs(
        self, source: str
    ) -> dict[tuple[str, str], tuple[str, str | None, int, str | None]]:
        rows = self._con.execute(
            "SELECT schema_name, table_name, strategy, cursor_column, lag, soft_delete "
            "FROM sync_tables WHERE source = ?", [source]
        ).fetchall()
        return {(row[0], row[1]): tuple(row[2:]) for row in rows}

    def set_sync_config(
        self, source: str, schema: str, table: str, strategy: str, cursor: str | None, lag: int,
        soft_delete: str | None = None,
    ) -> None:
        with self._transaction():
            self._con.execute(
                "INSERT OR REPLACE INTO sync_tables (source, schema_name, table_name, strategy, "
                "cursor_column, lag, soft_delete) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [source, schema, table, strategy, cursor, lag, soft_delete],
            )
            self._bump()

    def replace_tables(self, source: str, tables: Iterable[Table]) -> None:
        """Swap a source's introspected tables in one transaction."""
        with self._transaction():
            self._con.execute("DELETE FROM columns WHERE source = ?", [source])
            self._con.execute("DELETE FROM table_stats WHERE source = ?", [source])
            self._con.execute("DELETE FROM table_keys WHERE source = ?", [source])
            self._insert_tables(tables)
            self._con.execute("UPDATE sources SET refreshed_at = now() WHERE name = ?", [source])
            self._bump()

    def _insert_tables(self, tables: Iterable[Table]) -> None:
        tables = list(tables)
        rows = [
            (t.source, t.schema, t.name, t.kind, i, c.name, c.type, c.source_type, c.nullable)
            for t in tables
            for i, c in enumerate(t.columns)
        ]
        if rows:
            self._con.executemany("INSERT INTO columns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        stats = [(t.source, t.schema, t.name, t.rows) for t in tables if t.rows is not None]
        if stats:
            self._con.executemany("INSERT INTO table_stats VALUES (?, ?, ?, ?)", stats)
        keys = [(t.source, t.schema, t.name, i, c) for t in tables
                for i, c in enumerate(t.primary_key)]
        if keys:
            self._con.executemany("INSERT INTO table_keys VALUES (?, ?, ?, ?, ?)", keys)

    def tables(self) -> list[Table]:
        rows = self._con.execute(
            """
            SELECT source, schema_name, table_name, table_kind, column_name, duckdb_type,
                   source_type, nullable
            FROM columns ORDER BY source, schema_name, table_name, ordinal
            """
        ).fetchall()
        grouped: dict[tuple[str, str, str], tuple[str, list[Column]]] = {}
        for src, schema, table, kind, col, dtype, stype, nullable in rows:
            entry = grouped.setdefault((src, schema, table), (kind, []))
            entry[1].append(Column(col, dtype, stype, nullable))
        stats = {
            (src, schema, table): rows
            for src, schema, table, rows in self._con.execute(
                "SELECT source, schema_name, table_name, row_estimate FROM table_stats"
            ).fetchall()
        }
        keys: dict[tuple[str, str, str], list[str]] = {}
        for src, schema, table, column in self._con.execute(
            "SELECT source, schema_name, table_name, column_name FROM table_keys "
            "ORDER BY source, schema_name, table_name, position"
        ).fetchall():
            keys.setdefault((src, schema, table), []).append(column)
        return [
            Table(src, schema, table, tuple(cols), kind, stats.get((src, schema, table)),
                  tuple(keys.get((src, schema, table), ())))
            for (src, schema, table), (kind, cols) in grouped.items()
        ]
