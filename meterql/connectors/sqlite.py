"""SQLite over ADBC: the file opened read-only (``mode=ro``), Arrow out."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from meterql.catalog.model import Column, Source, Table
from meterql.catalog.uri import file_path
from meterql.connectors.base import CancelHandle, ConnectionPool, Connector
from meterql.dialects.sqlite import map_type
from meterql.errors import (
    MeterqlError,
    SourceQueryError,
    SourceUnavailableError,
)
from meterql.sql_text import quote_ident

_INTROSPECT = """
SELECT m.name AS table_name, m.type AS table_kind, p.name AS column_name, p.type AS declared,
       p."notnull" AS not_null, p.pk AS pk
FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p
WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
ORDER BY m.name, p.cid
"""


class SQLiteConnector(Connector):
    """A SQLite database file. Its path is absolute in the catalog."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.path = file_path(source.uri)
        self._pool: ConnectionPool[Any] = ConnectionPool(self._connect, lambda c: c.close())

    def _connect(self) -> Any:
        import adbc_driver_sqlite.dbapi as sq

        if not os.path.isfile(self.path):
            raise SourceUnavailableError(
                f"source '{self.source.name}': SQLite file {self.path} does not exist",
                source=self.source.name,
                hint="check the path in the source URI",
            )
        try:
            return sq.connect(f"file:{quote(self.path)}?mode=ro", autocommit=True)
        except Exception as exc:
            raise self.translate_error(exc) from exc

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def _stream(
        self, sql: str, params: Sequence[Any], cancel: CancelHandle
    ) -> Iterator[pa.RecordBatchReader]:
        with self._pool.connection() as conn:
            cur = conn.cursor()
            try:
                cancel.bind(cur.adbc_cancel)
                cur.execute(sql, parameters=tuple(params) if params else None)
                yield cur.fetch_record_batch()
            finally:
                cancel.bind(None)
                with contextlib.suppress(Exception):
                    cur.close()

    def server_version(self) -> str:
        with self.stream("SELECT 'SQLite ' || sqlite_version()") as reader:
            return str(reader.read_all().column(0)[0])

    def introspect(self) -> list[Table]:
        # Declared types, not the values' types: the catalog states what the schema promises.
        with self.stream(
            "SELECT '' AS table_name, '' AS table_kind, '' AS column_name, '' AS declared, "
            "0 AS not_null, 0 AS pk UNION ALL SELECT * FROM ("
            + _INTROSPECT.strip()
            + ")"
        ) as reader:
            rows = reader.read_all().to_pylist()[1:]
        tables: dict[str, tuple[str, list[Column]]] = {}
        keys: dict[str, list[tuple[int, str]]] = {}
        for row in rows:
            declared = row["declared"] or ""
            if row["pk"]:
                keys.setdefault(row["table_name"], []).append((row["pk"], row["column_name"]))
            entry = tables.setdefault(row["table_name"], (row["table_kind"], []))
            entry[1].append(
                Column(row["column_name"], map_type(declared), declared, not row["not_null"])
            )
        return [
            Table(self.source.name, "main", name, tuple(cols), kind, self._count(name, kind),
                  tuple(column for _, column in sorted(keys.get(name, []))))
            for name, (kind, cols) in tables.items()
        ]

    def _count(self, table: str, kind: str) -> int | None:
        """SQLite keeps no statistics by default; counting a table is a fast B-tree walk."""
        if kind != "table":
            return None
        with self.stream(f"SELECT count(*) FROM main.{quote_ident(table)}") as reader:
            return int(reader.read_all().column(0)[0].as_py())

    def translate_error(self, exc: Exception) -> MeterqlError:
        text = str(exc)
        for prefix in ("IO: ", "INVALID_ARGUMENT: ", "INVALID_STATE: "):
            text = text.removeprefix(prefix)
        name = self.source.name
        if "unable to open" in text or "failed to open" in text:
            return SourceUnavailableError(
                f"source '{name}': cannot open SQLite file {self.path}: {text}",
                source=name,
                hint="check that the file exists and is readable",
            )
        if "Type mismatch" in text:
            return SourceQueryError(
                f"source '{name}' holds values that do not match their column's declared type: "
                f"{text}",
                source=name,
                hint="SQLite lets a column hold any type; fix the values or the declared type",
            )
        return SourceQueryError(f"source '{name}' failed the query: {text}", source=name)
