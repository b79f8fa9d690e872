"""SQLite over ADBC: the file opened read-only (``mode=ro``), Arrow out.

The driver infers each column's Arrow type from the values of its first batch, so a column
whose first values are NULL would read as integers and a later text value would then fail. When
the caller says which types it wants (``stream(..., schema=...)``), the statement is sent after
one row of literals of those types, and that row is dropped here: nothing above the connector
sees it.

The row is dropped by its position: SQLite runs the arms of a top-level UNION ALL in order.
Its values are checked, so a source that ever returned another row first fails the read rather
than losing that row. (A last column marking the row would not rely on the order, but SQLite and
the driver then handle one more value per row: 20 to 30 % slower on a 2-million-row scan of two
text columns.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from meterql.catalog.model import ColumnStats, IndexInfo, Source, Table
from meterql.catalog.uri import file_path
from meterql.connectors.adbc import AdbcConnector, driver_message
from meterql.connectors.base import CancelHandle, require_file
from meterql.connectors.introspection import ColumnRow
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
_INTROSPECTED = pa.schema([
    ("table_name", pa.string()), ("table_kind", pa.string()), ("column_name", pa.string()),
    ("declared", pa.string()), ("not_null", pa.int64()), ("pk", pa.int64()),
])

_INDEXES = """
SELECT m.name AS table_name, il.name AS index_name, il."unique" AS is_unique,
       il.partial AS partial, ii.name AS column_name
FROM sqlite_master AS m JOIN pragma_index_list(m.name) AS il JOIN pragma_index_info(il.name) AS ii
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
ORDER BY m.name, il.name, ii.seqno
"""
_INDEXED = pa.schema([
    ("table_name", pa.string()), ("index_name", pa.string()), ("is_unique", pa.int64()),
    ("partial", pa.int64()), ("column_name", pa.string()),
])
_STAT1 = pa.schema([("tbl", pa.string()), ("idx", pa.string()), ("stat", pa.string())])


class SQLiteConnector(AdbcConnector):
    """A SQLite database file. Its path is absolute in the catalog."""

    version_sql = "SELECT 'SQLite ' || sqlite_version()"

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.path = file_path(source.uri)

    def _connect(self) -> Any:
        import adbc_driver_sqlite.dbapi as sq

        require_file(self.source, self.path, "SQLite")
        try:
            return sq.connect(f"file:{quote(self.path)}?mode=ro", autocommit=True)
        except Exception as exc:
            raise self.translate_error(exc) from exc

    @contextlib.contextmanager
    def _stream(
        self, sql: str, params: Sequence[Any], cancel: CancelHandle, schema: pa.Schema | None
    ) -> Iterator[pa.RecordBatchReader]:
        if schema is not None:
            sql = pinned(sql, schema)
            first = [_pin(field.type)[1] for field in schema]
        with super()._stream(sql, params, cancel, schema) as raw:
            yield raw if schema is None else _unpinned(raw, first, self.source.name)

    def _column_rows(self) -> Iterator[ColumnRow]:
        # Declared types, not the values' types: the catalog states what the schema promises.
        with self.stream(_INTROSPECT, schema=_INTROSPECTED) as reader:
            rows = reader.read_all().to_pylist()
        counts: dict[str, int | None] = {}
        for row in rows:
            name, kind = row["table_name"], row["table_kind"]
            if name not in counts:
                counts[name] = self._count(name, kind)
            yield ColumnRow("main", name, kind, row["column_name"], row["declared"] or "",
                            not row["not_null"], row["pk"] or None, counts[name])

    def _indexes(self, tables: Sequence[Table]) -> dict[str, list[IndexInfo]]:
        from meterql.connectors.statistics import key_prefix

        by_name = {t.full_name: t for t in tables}
        names: dict[tuple[str, str, bool], list[str | None]] = {}
        with self.stream(_INDEXES, schema=_INDEXED) as reader:
            for row in reader.read_all().to_pylist():
                if not row["partial"]:  # (a partial index finds only the rows it covers)
                    names.setdefault((row["table_name"], row["index_name"],
                                      bool(row["is_unique"])), []).append(row["column_name"])
        out: dict[str, list[IndexInfo]] = {}
        for (table, index, unique), columns in names.items():
            name = f"{self.source.name}.main.{table}"
            key = key_prefix(columns, by_name.get(name))
            if key:
                out.setdefault(name, []).append(IndexInfo(index, key, unique))
        return out

    def _column_statistics(self, tables: Sequence[Table]) -> dict[str, dict[str, ColumnStats]]:
        """The distinct values of each index's first column, from ``sqlite_stat1`` when an
        ``ANALYZE`` at the source made it (meterql never writes to a source)."""
        from meterql.connectors.statistics import sqlite_distinct

        with self.stream("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'") as r:
            if not r.read_all().column(0)[0].as_py():
                return {}
        with self.stream("SELECT tbl, idx, stat FROM sqlite_stat1", schema=_STAT1) as reader:
            rows = reader.read_all().to_pylist()
        firsts = {(i.name, name): i.columns[0]
                  for name, found in self._indexes(tables).items() for i in found}
        out: dict[str, dict[str, ColumnStats]] = {}
        for row in rows:
            name = f"{self.source.name}.main.{row['tbl']}"
            column = firsts.get((row["idx"], name))
            counted = sqlite_distinct(row["stat"] or "")
            if column is not None and counted is not None:
                out.setdefault(name, {})[column.lower()] = ColumnStats(column, counted[1])
        return out

    def _count(self, table: str, kind: str) -> int | None:
        """SQLite keeps no statistics by default; counting a table is a fast B-tree walk."""
        if kind != "table":
            return None
        with self.stream(f"SELECT count(*) FROM main.{quote_ident(table)}") as reader:
            return int(reader.read_all().column(0)[0].as_py())

    def translate_error(self, exc: Exception) -> MeterqlError:
        text = driver_message(exc)
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


def pinned(sql: str, schema: pa.Schema) -> str:
    """``sql`` after one row of literals of the types its rows are read as (see the module
    docstring). Decimals, dates and timestamps arrive as text (``dialects/sqlite.py`` fetches
    them so) and are converted later, so they pin as text.

    >>> print(pinned("SELECT a, b FROM t", pa.schema([("a", pa.int64()), ("b", pa.string())])))
    SELECT 0 AS "a", '' AS "b" UNION ALL SELECT * FROM (SELECT a, b FROM t)
    """
    first = ", ".join(f"{_pin(field.type)[0]} AS {quote_ident(field.name)}" for field in schema)
    return f"SELECT {first} UNION ALL SELECT * FROM ({sql})"


def _pin(wanted: pa.DataType) -> tuple[str, Any]:
    """The literal SQLite returns as the type the driver must read for ``wanted``, and the
    value it arrives as.

    >>> [_pin(t)[0] for t in (pa.int64(), pa.bool_(), pa.float64(), pa.binary(), pa.date32())]
    ['0', '0', '0.0', "X''", "''"]
    """
    if pa.types.is_integer(wanted) or pa.types.is_boolean(wanted):
        return "0", 0  # (booleans are read as SQLite's 0/1 integers)
    if pa.types.is_floating(wanted):
        return "0.0", 0.0
    if pa.types.is_binary(wanted) or pa.types.is_large_binary(wanted):
        return "X''", b""
    return "''", ""


def _unpinned(raw: pa.RecordBatchReader, first: list[Any], source: str) -> pa.RecordBatchReader:
    """The statement's rows: the first row, checked to be the pinned one, dropped.

    >>> def reader(*rows):
    ...     return pa.RecordBatchReader.from_batches(
    ...         pa.schema([("n", pa.int64())]), [pa.record_batch([pa.array(rows)], ["n"])])
    >>> _unpinned(reader(0, 7, None), [0], "lite").read_all()["n"].to_pylist()
    [7, None]
    >>> _unpinned(reader(7, 0), [0], "lite").read_all()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    meterql.errors.SourceQueryError: source 'lite' did not return the typed first row first ...
    """

    def batches() -> Iterator[pa.RecordBatch]:
        pending = True
        for batch in raw:
            if pending and batch.num_rows:
                if [column[0].as_py() for column in batch.columns] != first:
                    raise SourceQueryError(
                        f"source '{source}' did not return the typed first row first",
                        source=source, hint="report this: the SQLite connector relies on it")
                batch, pending = batch.slice(1), False
            yield batch

    return pa.RecordBatchReader.from_batches(raw.schema, batches())
