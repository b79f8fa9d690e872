"""Comparing a meterql answer with DuckDB's: the normalisation every differential test shares.

Values are compared by meaning, not by Arrow type: exact numbers by value (an integer equals the
same decimal), instants in UTC, floats within a relative 1e-12 (sums in another order differ in
the last bits), NaN equal to NaN. Rows are compared as multisets unless the query has a total
ORDER BY.

Example:
    >>> rows_difference(pa.table({"a": [1, 2]}), pa.table({"a": [2, 1]}), ordered=False)
    >>> print(rows_difference(pa.table({"a": [1, 2]}), pa.table({"a": [1, 3]}), ordered=False))
    row 1 differs:
      meterql: ((2, Decimal('2')),)
      DuckDB:  ((2, Decimal('3')),)
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest


def norm(value: Any) -> tuple:
    """A sortable, comparable form: exact numbers by value, instants in UTC, floats apart."""
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | Decimal):
        return (2, Decimal(value))
    if isinstance(value, float):
        return (3, 0.0 if math.isnan(value) else value, math.isnan(value))
    if isinstance(value, str):
        return (4, value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return (5, value)
        return (6, value.astimezone(dt.UTC))
    if isinstance(value, dt.date):
        return (7, value)
    if isinstance(value, dt.timedelta):
        return (8, value)
    return (9, repr(value))


def same(a: tuple, b: tuple) -> bool:
    """Two normalised values are the same (floats within a relative 1e-12)."""
    if a[0] != b[0]:
        return False
    if a[0] == 3:
        if a[2] or b[2]:
            return a[2] and b[2]
        return math.isclose(a[1], b[1], rel_tol=1e-12, abs_tol=1e-12) or a[1] == b[1]
    return a == b


@dataclass(frozen=True)
class Rows:
    """An answer read as Python values (DuckDB's ``fetchall``), not through Arrow.

    DuckDB hands UHUGEINT to Arrow as DECIMAL(38, 0), so values past 2^127 come out negative;
    its Python values are exact.
    """

    column_names: list[str]
    rows: list[tuple]

    @property
    def num_columns(self) -> int:
        return len(self.column_names)


def table_rows(table: pa.Table | Rows) -> list[tuple]:
    """The table's rows, each value normalised."""
    if isinstance(table, Rows):
        return [tuple(norm(v) for v in row) for row in table.rows]
    columns = [col.to_pylist() for col in table.columns]
    return [tuple(norm(v) for v in row) for row in zip(*columns, strict=True)]


def sort_key(row: tuple) -> tuple:
    """Floats sort by their value rounded to 9 significant digits, so differences in the last
    bits cannot reorder them, then by their exact value, so the same values always pair up
    (1e-7 and 1e-38, or two sums that agree to 9 digits only)."""
    return tuple((v[0], float(f"{v[1]:.9g}"), v[1]) if v[0] == 3 else v for v in row)


def rows_difference(got: pa.Table | Rows, want: pa.Table | Rows, ordered: bool) -> str | None:
    """``None`` when meterql's rows are DuckDB's, else what differs first."""
    if got.num_columns != want.num_columns:
        return f"columns {got.column_names}, DuckDB has {want.column_names}"
    got_rows, want_rows = table_rows(got), table_rows(want)
    if len(got_rows) != len(want_rows):
        return f"{len(got_rows)} rows, DuckDB has {len(want_rows)}"
    if not ordered:
        got_rows, want_rows = sorted(got_rows, key=sort_key), sorted(want_rows, key=sort_key)
    for i, (g, w) in enumerate(zip(got_rows, want_rows, strict=True)):
        if not all(same(a, b) for a, b in zip(g, w, strict=True)):
            return f"row {i} differs:\n  meterql: {g}\n  DuckDB:  {w}"
    return None


def assert_same_rows(got: pa.Table, want: pa.Table, ordered: bool) -> None:
    difference = rows_difference(got, want, ordered)
    if difference is not None:
        pytest.fail(difference)


def reference(ref: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> pa.Table:
    """DuckDB's own answer, on a cursor of the reference database."""
    cur = ref.cursor()
    try:
        return cur.sql(duckdb_params(sql, params), params=params or None).to_arrow_table()
    finally:
        cur.close()


def reference_rows(ref: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> Rows:
    """DuckDB's own answer as exact Python values (see :class:`Rows`)."""
    cur = ref.cursor()
    try:
        cur.execute(duckdb_params(sql, params), params or None)
        names = [d[0] for d in cur.description]
        return Rows(names, cur.fetchall())
    finally:
        cur.close()


def duckdb_params(sql: str, params: dict[str, Any]) -> str:
    """The query with ``:name`` parameters spelled ``$name``, as DuckDB itself writes them."""
    return re.sub(r"(?<![:\w]):(\w+)", r"$\1", sql) if params else sql
