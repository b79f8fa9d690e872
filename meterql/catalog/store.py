"""The catalog's persistence: one DuckDB file with a schema version and a migration chain."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import duckdb

from meterql.catalog.model import Column, ColumnStats, IndexInfo, Source, Table, TableStats
from meterql.catalog.stat_values import read_value, value_text

SCHEMA_VERSION = 9


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
    # Statistics are read again at every refresh and sync: they change no catalog version
    # (routed plans are made per query; other plans do not read them).
    con.execute(
        """
        CREATE TABLE table_statistics (
            source VARCHAR NOT NULL,
            schema_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            rows BIGINT,
            read_at TIMESTAMPTZ NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE column_statistics (
            source VARCHAR NOT NULL,
            schema_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            column_name VARCHAR NOT NULL,
            family VARCHAR,  -- the DuckDB type family its values are read back as
            distinct_count DOUBLE,
            null_frac DOUBLE,
            min_value VARCHAR,
            max_value VARCHAR,
            histogram VARCHAR NOT NULL,  -- JSON: the bounds as text
            common VARCHAR NOT NULL,  -- JSON: [[value as text, fraction], ...]
            correlation DOUBLE
        )
        """
    )
    con.execute(
        """
        CREATE TABLE table_indexes (
            source VARCHAR NOT NULL,
            schema_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            index_name VARCHAR NOT NULL,
            is_unique BOOLEAN NOT NULL,
            columns VARCHAR NOT NULL  -- JSON: the key columns in order
        )
        """
    )
    con.execute(
        """
        CREATE TABLE cost_constants (
            source VARCHAR PRIMARY KEY,
            constants VARCHAR NOT NULL,  -- JSON: name -> number (engine/planner/costs.py)
            measured_at TIMESTAMPTZ NOT NULL
        )
        """
    )


def _v8(con: duckdb.DuckDBPyConnection) -> None:
    # an aggregate's freshness bound (its header '-- freshness: 1h'), kept with each version
    con.execute("ALTER TABLE aggregates ADD COLUMN freshness VARCHAR")


def _v9(con: duckdb.DuckDBPyConnection) -> None:
    # a table's declared clustering key: the replica's rows are kept in this order (JSON list)
    con.execute("ALTER TABLE sync_tables ADD COLUMN cluster_by VARCHAR")


#: Each entry upgrades the catalog from version ``i`` to ``i + 1``; append, never edit.
MIGRATIONS: tuple[Callable[[duckdb.DuckDBPyConnection], None], ...] = (
    _v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9)


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
            for table in _STATISTICS_TABLES:
                self._con.execute(f"DELETE FROM {table} WHERE source = ?", [name])
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
    ) -> dict[tuple[str, str], tuple[str, str | None, int, str | None, tuple[str, ...]]]:
        rows = self._con.execute(
            "SELECT schema_name, table_name, strategy, cursor_column, lag, soft_delete, "
            "cluster_by FROM sync_tables WHERE source = ?", [source]
        ).fetchall()
        return {(row[0], row[1]): (*row[2:6], tuple(json.loads(row[6] or "[]")))
                for row in rows}

    def set_sync_config(
        self, source: str, schema: str, table: str, strategy: str, cursor: str | None, lag: int,
        soft_delete: str | None = None, cluster_by: Sequence[str] = (),
    ) -> None:
        with self._transaction():
            self._con.execute(
                "INSERT OR REPLACE INTO sync_tables (source, schema_name, table_name, strategy, "
                "cursor_column, lag, soft_delete, cluster_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [source, schema, table, strategy, cursor, lag, soft_delete,
                 json.dumps(list(cluster_by)) if cluster_by else None],
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

    # -- statistics -----------------------------------------------------------------------------
    def replace_statistics(
        self, source: str, stats: Iterable[TableStats], families: dict[tuple[str, str], str]
    ) -> None:
        """Swap a source's statistics in one transaction; ``families`` gives the DuckDB type
        family of each (table full name, lower-case column) whose values are kept."""
        stats = list(stats)
        with self._transaction():
            for table in ("table_statistics", "column_statistics", "table_indexes"):
                self._con.execute(f"DELETE FROM {table} WHERE source = ?", [source])
            for entry in stats:
                _, schema, name = entry.table.split(".", 2)
                self._con.execute("INSERT INTO table_statistics VALUES (?, ?, ?, ?, now())",
                                  [source, schema, name, entry.rows])
                columns = []
                for col in entry.columns.values():
                    family = families.get((entry.table, col.column.lower()))
                    columns.append((
                        source, schema, name, col.column, family, col.distinct, col.null_frac,
                        _text(col.min), _text(col.max),
                        json.dumps([value_text(v) for v in col.histogram] if family else []),
                        json.dumps([[value_text(v), f] for v, f in col.common] if family
                                   else []),
                        col.correlation))
                if columns:
                    self._con.executemany(
                        "INSERT INTO column_statistics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        columns)
                indexes = [(source, schema, name, i.name, i.unique, json.dumps(list(i.columns)))
                           for i in entry.indexes]
                if indexes:
                    self._con.executemany("INSERT INTO table_indexes VALUES (?, ?, ?, ?, ?, ?)",
                                          indexes)

    def statistics(self) -> dict[str, TableStats]:
        """Every table's statistics, by full name."""
        columns: dict[str, dict[str, ColumnStats]] = {}
        for (src, schema, table, column, family, distinct, null_frac, low, high, histogram,
             common, correlation) in self._con.execute(
                "SELECT * FROM column_statistics ORDER BY source, schema_name, table_name"
        ).fetchall():

            def value(text: str | None, family: str | None = family) -> object:
                return None if text is None or family is None else read_value(text, family)

            bounds = [value(t) for t in json.loads(histogram)]
            columns.setdefault(f"{src}.{schema}.{table}", {})[column.lower()] = ColumnStats(
                column, distinct, null_frac, value(low), value(high),
                tuple(b for b in bounds if b is not None),
                tuple((v, f) for t, f in json.loads(common) if (v := value(t)) is not None),
                correlation)
        indexes: dict[str, list[IndexInfo]] = {}
        for src, schema, table, index, unique, cols in self._con.execute(
            "SELECT * FROM table_indexes ORDER BY source, schema_name, table_name, index_name"
        ).fetchall():
            indexes.setdefault(f"{src}.{schema}.{table}", []).append(
                IndexInfo(index, tuple(json.loads(cols)), unique))
        out = {}
        for src, schema, table, rows, read_at in self._con.execute(
            "SELECT source, schema_name, table_name, rows, read_at FROM table_statistics"
        ).fetchall():
            name = f"{src}.{schema}.{table}"
            out[name] = TableStats(name, rows, columns.get(name, {}),
                                   tuple(indexes.get(name, ())), read_at.isoformat())
        return out

    def set_cost_constants(self, source: str, constants: dict[str, float]) -> None:
        with self._transaction():
            self._con.execute("INSERT OR REPLACE INTO cost_constants VALUES (?, ?, now())",
                              [source, json.dumps(constants)])

    def cost_constants(self) -> dict[str, dict[str, float]]:
        rows = self._con.execute("SELECT source, constants FROM cost_constants").fetchall()
        return {source: json.loads(constants) for source, constants in rows}


#: Tables holding a source's statistics and measured costs (dropped with the source).
_STATISTICS_TABLES = ("table_statistics", "column_statistics", "table_indexes", "cost_constants")


def _text(value: object) -> str | None:
    return None if value is None else value_text(value)
