"""Type mapping: each source kind's columns reach the catalog and the result with their meaning.

The same rows sit in a PostgreSQL table, a SQLite table and a DuckDB table (``typed`` in each).
For every kind the catalog must name the right DuckDB type, and a query must hand back the right
Arrow type and the exact value, both when the query runs whole at the source and when it is
split (a cross-source query: scans into DuckDB, the rest local).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

import meterql
from meterql.errors import SourceQueryError

pytestmark = pytest.mark.postgres

UTC = dt.UTC
TEXT = "it's \"quoted\" \\ Zoë 東京 🚀"
#: (id, amount, tiny, ts_tz, ts, d, txt, flag); ts_tz is written in New York's offset.
ROWS = [
    (1, Decimal("12345678.1234"), Decimal("0.000001"),
     dt.datetime(2024, 3, 10, 3, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=-4))),
     dt.datetime(2024, 2, 29, 23, 59, 59, 999999), dt.date(2024, 2, 29), TEXT, True),
    (2, Decimal("-0.0001"), Decimal("-123456.000001"),
     dt.datetime(2024, 3, 31, 0, 59, 59, 500000, tzinfo=UTC),
     dt.datetime(2024, 3, 31, 2, 30, 0), dt.date(1999, 12, 31), "", False),
    (3, None, None, None, None, None, None, None),
]
COLUMNS = ["id", "amount", "tiny", "ts_tz", "ts", "d", "txt", "flag"]

#: The catalog type of each column, per source (SQLite has no time zone type).
CATALOG = {
    "pg": {"id": "INTEGER", "amount": "DECIMAL(12, 4)", "tiny": "DECIMAL(12, 6)",
           "ts_tz": "TIMESTAMP WITH TIME ZONE", "ts": "TIMESTAMP", "d": "DATE",
           "txt": "VARCHAR", "flag": "BOOLEAN"},
    "lite": {"id": "BIGINT", "amount": "DECIMAL(12, 4)", "tiny": "DECIMAL(12, 6)",
             "ts": "TIMESTAMP", "d": "DATE", "txt": "VARCHAR", "flag": "BOOLEAN"},
    "dk": {"id": "INTEGER", "amount": "DECIMAL(12, 4)", "tiny": "DECIMAL(12, 6)",
           "ts_tz": "TIMESTAMP WITH TIME ZONE", "ts": "TIMESTAMP", "d": "DATE",
           "txt": "VARCHAR", "flag": "BOOLEAN"},
}
ARROW = {
    "id": None,  # int32 or int64, per source
    "amount": pa.decimal128(12, 4),
    "tiny": pa.decimal128(12, 6),
    "ts_tz": pa.timestamp("us", tz="UTC"),
    "ts": pa.timestamp("us"),
    "d": pa.date32(),
    "txt": pa.string(),
    "flag": pa.bool_(),
}
TABLES = {"pg": "pg.public.typed", "lite": "lite.main.typed", "dk": "dk.main.typed"}
#: Another source's table, to make a query cross-source (split).
OTHER = {"pg": "dk.main.typed", "lite": "pg.public.typed", "dk": "lite.main.typed"}


def _columns(source: str) -> list[str]:
    return [c for c in COLUMNS if c in CATALOG[source]]


def _sql_literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime | dt.date):
        return f"'{value.isoformat(sep=' ') if isinstance(value, dt.datetime) else value}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _create(pg_cluster, folder):
    pg_cluster.create_database("typed")
    values = ",\n".join(
        "(" + ", ".join(_sql_literal(v) for v in row) + ")" for row in ROWS
    )
    pg_cluster.run_sql(
        "CREATE TABLE typed (id integer, amount numeric(12,4), tiny numeric(12,6), "
        "ts_tz timestamptz, ts timestamp, d date, txt text, flag boolean);\n"
        f"INSERT INTO typed VALUES {values};\n"
        "CREATE TABLE wide (id integer, n numeric);\n"
        "INSERT INTO wide VALUES (1, 0.1234567891), (2, 0.12345678901), "
        "(3, -1234567890123456789012345678.5), (4, NULL);",
        dbname="typed",
    )
    lite = folder / "typed.sqlite"
    con = sqlite3.connect(lite)
    con.execute(
        "CREATE TABLE typed (id INTEGER, amount DECIMAL(12,4), tiny DECIMAL(12,6), "
        "ts TIMESTAMP, d DATE, txt TEXT, flag BOOLEAN)"
    )
    con.executemany(
        "INSERT INTO typed VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (i, a and str(a), t and str(t), ts and ts.isoformat(sep=" "), d and d.isoformat(),
             txt, None if flag is None else int(flag))
            for i, a, t, _, ts, d, txt, flag in ROWS
        ],
    )
    con.commit()
    con.close()
    dk = folder / "typed.duckdb"
    con = duckdb.connect(str(dk))
    con.execute(
        "CREATE TABLE typed (id INTEGER, amount DECIMAL(12,4), tiny DECIMAL(12,6), "
        "ts_tz TIMESTAMPTZ, ts TIMESTAMP, d DATE, txt VARCHAR, flag BOOLEAN)"
    )
    con.executemany("INSERT INTO typed VALUES (?, ?, ?, ?, ?, ?, ?, ?)", ROWS)
    con.close()
    return pg_cluster.uri("typed"), lite, dk


@pytest.fixture(scope="module")
def ws(pg_cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("types")
    pg_uri, lite, dk = _create(pg_cluster, folder)
    with meterql.connect(folder / "home") as workspace:
        workspace.sources.add("pg", pg_uri)
        workspace.sources.add("lite", f"sqlite://{lite}")
        workspace.sources.add("dk", f"duckdb://{dk}")
        yield workspace


def _normalise(duckdb_type: str) -> str:
    return exp.DataType.build(duckdb_type, dialect="duckdb").sql("duckdb")


@pytest.mark.parametrize("source", ["pg", "lite", "dk"])
def test_catalog_types(ws, source):
    table = ws.tables.get(TABLES[source])
    got = {c.name: _normalise(c.type) for c in table.columns}
    assert got == {name: _normalise(t) for name, t in CATALOG[source].items()}


def test_postgres_numeric_without_precision_is_decimal_38_10(ws):
    (column,) = [c for c in ws.tables.get("pg.public.wide").columns if c.name == "n"]
    assert _normalise(column.type) == "DECIMAL(38, 10)"
    assert column.source_type == "numeric"


def _query(ws, source: str, path: str, where: str = "") -> tuple[str, pa.Table]:
    columns = ", ".join(f"t.{c}" for c in _columns(source))
    sql = f"SELECT {columns} FROM {TABLES[source]} t"
    conditions = [where] if where else []
    if path == "split":
        conditions.append(f"t.id IN (SELECT id FROM {OTHER[source]})")
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    plan = ws.explain(sql)
    whole = plan.residual is None
    assert whole == (path == "whole" and source != "lite"), plan  # SQLite is always scanned
    return sql, ws.query(sql + " ORDER BY t.id").table


def _expected(source: str) -> list[dict]:
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]
    return [{c: row[c] for c in _columns(source)} for row in rows]


@pytest.mark.parametrize("path", ["whole", "split"])
@pytest.mark.parametrize("source", ["pg", "lite", "dk"])
def test_result_types_and_values(ws, source, path):
    _, table = _query(ws, source, path)
    for name in _columns(source):
        want = ARROW[name]
        if want is not None:
            assert table.schema.field(name).type == want, name
    assert pa.types.is_integer(table.schema.field("id").type)
    got = table.to_pylist()
    assert got == _expected(source)  # Decimals and instants compare exactly by value
    if "ts_tz" in table.column_names:
        assert got[0]["ts_tz"].tzinfo is not None  # tz-aware stays tz-aware
        assert got[0]["ts_tz"] == dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC)
    assert got[0]["ts"].tzinfo is None  # naive stays naive
    assert got[0]["ts"].microsecond == 999999
    assert got[2] == {c: (3 if c == "id" else None) for c in _columns(source)}  # NULLs stay NULL


@pytest.mark.parametrize("path", ["whole", "split"])
@pytest.mark.parametrize("source", ["pg", "lite", "dk"])
@pytest.mark.parametrize(
    "where, ids",
    [
        ("t.txt = " + _sql_literal(TEXT), [1]),
        ("t.txt = ''", [2]),
        ("t.txt IS NULL", [3]),
        ("t.flag", [1]),
        ("NOT t.flag", [2]),
        ("t.amount = -0.0001", [2]),
        ("t.tiny = 0.000001", [1]),
        ("t.amount > 12345678.1233", [1]),
        ("t.d = DATE '2024-02-29'", [1]),
        ("t.ts >= TIMESTAMP '2024-02-29 23:59:59.999999'", [1, 2]),
        ("t.ts_tz = TIMESTAMPTZ '2024-03-10 07:00:00+00'", [1]),
        ("t.ts_tz < '2024-03-31 01:00:00+00'", [1, 2]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_filters_keep_their_meaning(ws, source, path, where, ids):
    if "ts_tz" in where and source == "lite":
        pytest.skip("SQLite has no time zone type")
    _, table = _query(ws, source, path, where)
    assert table.column("id").to_pylist() == ids


@pytest.mark.parametrize("path", ["whole", "split"])
def test_postgres_numeric_fits_exactly_or_fails_clearly(ws, path):
    extra = " AND EXISTS (SELECT 1 FROM dk.main.typed x WHERE x.id = 1)" if path == "split" else ""
    sql = "SELECT w.id, w.n FROM pg.public.wide w WHERE w.id <> 2" + extra
    assert (ws.explain(sql).residual is None) == (path == "whole")
    table = ws.query(sql + " ORDER BY w.id").table
    assert table.schema.field("n").type == pa.decimal128(38, 10)
    assert table.column("n").to_pylist() == [
        Decimal("0.1234567891"),
        Decimal("-1234567890123456789012345678.5"),
        None,
    ]
    # 11 fractional digits do not fit DECIMAL(38, 10): an error, never a rounded value.
    with pytest.raises(SourceQueryError) as info:
        ws.query("SELECT w.id, w.n FROM pg.public.wide w WHERE w.id = 2" + extra)
    err = info.value
    assert err.source == "pg"
    assert "'n'" in err.message and "does not fit DECIMAL(38,10)" in err.message
    assert "numeric_scale" in (err.hint or "")
