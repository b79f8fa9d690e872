"""A DuckDB database file, opened read-only in its own connection, Arrow out."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from meterql.catalog.model import IndexInfo, Source, Table
from meterql.catalog.uri import file_path
from meterql.connectors.base import CancelHandle, Connector, bound_cursor, require_file
from meterql.connectors.duckdb_arrow import carried_reader
from meterql.connectors.duckdb_errors import USER_FAULTS, query_fault
from meterql.connectors.introspection import ColumnRow
from meterql.connectors.lockdown import file_cursor, open_file_read_only
from meterql.errors import (
    MeterqlError,
    SourceQueryError,
    SourceUnavailableError,
)

_INTROSPECT = """
SELECT c.schema_name, c.table_name, t.table_type, c.column_name, c.data_type, c.is_nullable,
       d.estimated_size, list_position(k.constraint_column_names, c.column_name) AS key_position
FROM duckdb_columns() AS c
JOIN information_schema.tables AS t
  ON t.table_catalog = c.database_name AND t.table_schema = c.schema_name
 AND t.table_name = c.table_name
LEFT JOIN duckdb_tables() AS d
  ON d.database_name = c.database_name AND d.schema_name = c.schema_name
 AND d.table_name = c.table_name
LEFT JOIN duckdb_constraints() AS k
  ON k.database_name = c.database_name AND k.schema_name = c.schema_name
 AND k.table_name = c.table_name AND k.constraint_type = 'PRIMARY KEY'
WHERE c.database_name = current_database() AND NOT c.internal
ORDER BY c.schema_name, c.table_name, c.column_index
"""

_INDEXES = """
SELECT schema_name, table_name, index_name, is_unique, expressions FROM duckdb_indexes()
WHERE database_name = current_database() ORDER BY schema_name, table_name, index_name
"""


class DuckDBFileConnector(Connector):
    """A DuckDB file. One read-only database handle; a cursor per statement."""

    version_sql = "SELECT 'DuckDB ' || version()"

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.path = file_path(source.uri)
        self._db: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def _database(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._db is None:
                require_file(self.source, self.path, "DuckDB")
                try:
                    self._db = open_file_read_only(self.path)
                except duckdb.Error as exc:
                    raise self.translate_error(exc) from exc
            return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @contextlib.contextmanager
    def _stream(
        self, sql: str, params: Sequence[Any], cancel: CancelHandle, schema: pa.Schema | None
    ) -> Iterator[pa.RecordBatchReader]:
        cur = file_cursor(self._database())
        with bound_cursor(cur, cancel, cur.interrupt):
            yield carried_reader(cur, cur.sql(sql, params=list(params) or None), 122_880)

    def _column_rows(self) -> Iterator[ColumnRow]:
        with self.stream(_INTROSPECT) as reader:
            rows = reader.read_all().to_pylist()
        for row in rows:
            kind = "view" if row["table_type"] == "VIEW" else "table"
            yield ColumnRow(row["schema_name"], row["table_name"], kind, row["column_name"],
                            row["data_type"], row["is_nullable"], row["key_position"] or None,
                            row["estimated_size"])

    def _indexes(self, tables: Sequence[Table]) -> dict[str, list[IndexInfo]]:
        from meterql.connectors.statistics import duckdb_index_columns, key_prefix

        by_name = {t.full_name: t for t in tables}
        out: dict[str, list[IndexInfo]] = {}
        with self.stream(_INDEXES) as reader:
            for row in reader.read_all().to_pylist():
                name = f"{self.source.name}.{row['schema_name']}.{row['table_name']}"
                key = key_prefix(duckdb_index_columns(row["expressions"] or ""),
                                 by_name.get(name))
                if key:
                    out.setdefault(name, []).append(
                        IndexInfo(row["index_name"], key, bool(row["is_unique"])))
        return out

    def translate_error(self, exc: Exception) -> MeterqlError:
        name = self.source.name
        text = str(exc)
        if isinstance(exc, duckdb.IOException) or "Could not set lock" in text:
            return SourceUnavailableError(
                f"source '{name}': cannot open DuckDB file {self.path}: {text}",
                source=name,
                hint="another process may hold the file open for writing",
            )
        if isinstance(exc, USER_FAULTS):
            return query_fault(exc, source=name)
        return SourceQueryError(f"source '{name}' failed the query: {text}", source=name)
