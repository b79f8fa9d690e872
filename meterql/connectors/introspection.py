"""A source's tables, built from one plain row per column.

Each connector reads its own system catalog into :class:`ColumnRow` values
(``Connector._column_rows``); the catalog's :class:`~meterql.catalog.model.Table` objects are
built here, the same way for every kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from meterql.catalog.model import Column, Table


class ColumnRow(NamedTuple):
    """One column of a table or view, as a connector reads it from its source.

    Attributes:
        schema: the table's schema (``main`` where the source has none).
        table: the table's name.
        kind: ``table`` or ``view``.
        column: the column's name.
        source_type: its type as the source declares it.
        nullable: whether it may hold NULL.
        key_position: its place in the primary key, from 1 (``None`` when not part of it).
        rows: the rows the source estimates the table holds (``None`` when unknown).
    """

    schema: str
    table: str
    kind: str
    column: str
    source_type: str
    nullable: bool
    key_position: int | None
    rows: int | None


def build_tables(
    source: str, rows: Iterable[ColumnRow], column_type: Callable[[str], str]
) -> list[Table]:
    """The tables of ``source``, from rows in column order; ``column_type`` maps a source type to
    the DuckDB type that carries it. Tables come in the order of their first row.

    >>> rows = [ColumnRow("main", "t", "table", "b", "TEXT", True, 2, 5),
    ...         ColumnRow("main", "t", "table", "a", "INTEGER", False, 1, 5)]
    >>> (t,) = build_tables("lite", rows, str.lower)
    >>> [c.type for c in t.columns], t.primary_key, t.rows
    (['text', 'integer'], ('a', 'b'), 5)
    """
    first: dict[tuple[str, str], ColumnRow] = {}
    columns: dict[tuple[str, str], list[Column]] = {}
    keys: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for row in rows:
        at = (row.schema, row.table)
        first.setdefault(at, row)
        columns.setdefault(at, []).append(
            Column(row.column, column_type(row.source_type), row.source_type, row.nullable))
        if row.key_position:
            keys.setdefault(at, []).append((row.key_position, row.column))
    return [
        Table(source, row.schema, row.table, tuple(columns[at]), row.kind, row.rows,
              tuple(column for _, column in sorted(keys.get(at, []))))
        for at, row in first.items()
    ]
