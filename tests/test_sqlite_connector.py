"""The SQLite connector reads every column as the type it is asked for, even where the values
the driver sees first cannot tell it (ADBC's SQLite driver types a column from its first batch).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal

import pyarrow as pa
import pytest

import meterql
from meterql.catalog import Source
from meterql.connectors.sqlite import SQLiteConnector

#: More rows than the driver's first batch (1,024), all NULL before the last one.
LEADING_NULLS = 3_000


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    path = tmp_path_factory.mktemp("lite") / "nulls.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (id INTEGER, note TEXT, amount DECIMAL(10, 2), f REAL, "
                "b BLOB, flag BOOLEAN, d DATE)")
    con.executemany("INSERT INTO t (id) VALUES (?)", [(i,) for i in range(LEADING_NULLS)])
    con.execute("INSERT INTO t VALUES (?, 'x', '1.25', 2.5, X'00', 1, '2026-01-31')",
                [LEADING_NULLS])
    con.commit()
    con.close()
    return path


def test_a_column_whose_first_values_are_null_reads_as_its_declared_type(lite, tmp_path):
    with meterql.connect(tmp_path / "ws") as ws:
        ws.sources.add("lite", f"sqlite://{lite}")
        result = ws.query("SELECT * FROM lite.main.t WHERE id >= :low", {"low": LEADING_NULLS})
        assert result.table.to_pylist() == [{
            "id": LEADING_NULLS, "note": "x", "amount": Decimal("1.25"), "f": 2.5,
            "b": b"\x00", "flag": True, "d": dt.date(2026, 1, 31)}]
        every = ws.query("SELECT count(*) AS n, max(note) AS note FROM lite.main.t")
        assert every.table.to_pylist() == [{"n": LEADING_NULLS + 1, "note": "x"}]


def test_the_typed_first_row_never_reaches_the_caller(lite):
    connector = SQLiteConnector(Source("lite", "sqlite", f"sqlite://{lite}"))
    try:
        wanted = pa.schema([("note", pa.string()), ("id", pa.int64())])
        sql = 'SELECT "note", "id" FROM "main"."t" WHERE "id" > ?1'
        with connector.stream(sql, [LEADING_NULLS], schema=wanted) as reader:
            empty = reader.read_all()
        assert empty.schema == wanted and empty.num_rows == 0
        with connector.stream(sql, [-1], schema=wanted) as reader:
            rows = reader.read_all()
        assert rows.schema == wanted and rows.num_rows == LEADING_NULLS + 1
        assert rows.column("note").null_count == LEADING_NULLS
        (table,) = connector.introspect()
        assert [c.name for c in table.columns] == ["id", "note", "amount", "f", "b", "flag", "d"]
    finally:
        connector.close()
