"""A sync reads numeric(p,s) with p <= 18 from PostgreSQL as its value times 10^s in a bigint
and rebuilds it from the integer's bits (``connectors/arrow.py``): every precision 1..18 with the
smallest, middle and largest scales, the extremes of each type (``10^(p-s) - 10^-s`` and its
negative), the smallest step, zero and NULL come back exactly as PostgreSQL prints them, in a
replica (full copy and append), and the replica keeps each column's DECIMAL(p,s). Wider numerics
(p 19..38) still read as text, exactly too, and so does a query's scan (it reads text).
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import duckdb
import pyarrow as pa
import pytest

import meterql
from meterql.catalog import Column, Table
from meterql.connectors.arrow import from_scaled_integer
from meterql.dialects import dialect_for
from meterql.engine.planner.plan import ScanFragment
from meterql.engine.planner.scan_sql import scan_select
from meterql.errors import SourceQueryError

pytestmark = pytest.mark.postgres


def _types() -> list[tuple[int, int]]:
    """(precision, scale): every precision 1..38, each with scale 0, its middle and p."""
    return sorted({(p, s) for p in range(1, 39) for s in (0, p // 2, p)})


TYPES = _types()


def _column(p: int, s: int) -> str:
    return f"n_{p}_{s}"


def _values(p: int, s: int) -> list[str]:
    """Literals for a numeric(p,s): the extremes, the smallest step either side, zero, a value
    with every digit (different per digit position), and a value with fewer decimals."""
    with localcontext(prec=80):  # (the default 28 digits would round the wide ones)
        top = Decimal(10) ** (p - s) - Decimal(10) ** -s
        step = Decimal(10) ** -s
        mixed = Decimal(("1234567890" * 4)[:p]).scaleb(-s)
        values = [top, -top, step, -step, Decimal(0), mixed, -mixed,
                  Decimal(1) if p > s else step]
    return [f"{v:f}" for v in values]


ROWS = len(_values(1, 0))


@pytest.fixture(scope="module")
def env(pg_cluster, pg_database, tmp_path_factory):
    columns = ", ".join(f"{_column(p, s)} numeric({p},{s})" for p, s in TYPES)
    rows = []
    for i in range(ROWS):
        values = ", ".join(_values(p, s)[i] for p, s in TYPES)
        rows.append(f"({i + 1}, {values})")
    rows.append(f"({ROWS + 1}, {', '.join('NULL' for _ in TYPES)})")
    db = pg_database("scaled", f"CREATE TABLE wide (id integer PRIMARY KEY, {columns});\n"
                     f"INSERT INTO wide VALUES {', '.join(rows)};")
    folder = tmp_path_factory.mktemp("scaled")
    ids = folder / "ids.duckdb"
    con = duckdb.connect(str(ids))
    con.execute(f"CREATE TABLE ids AS SELECT range::INTEGER AS id FROM range(1, {ROWS + 2})")
    con.close()
    ws = meterql.connect(folder / "home")
    ws.sources.add("pg", pg_cluster.uri(db))
    ws.sources.add("rep", pg_cluster.uri(db), mode="sync")
    ws.sources.add("dk", f"duckdb://{ids}")
    [report] = ws.sync("rep")
    assert report.error is None
    yield ws, pg_cluster, db
    ws.close()


def _postgres_rows(pg_cluster, db: str) -> list[dict]:
    """Every row as PostgreSQL's numeric output prints it, as Decimals."""
    names = ["id"] + [_column(p, s) for p, s in TYPES]
    out = pg_cluster.run_sql(f"COPY (SELECT {', '.join(names)} FROM wide ORDER BY id) TO STDOUT",
                             dbname=db)
    rows = []
    for line in out.splitlines():
        fields = line.split("\t")
        rows.append({name: None if f == "\\N" else (int(f) if name == "id" else Decimal(f))
                     for name, f in zip(names, fields, strict=True)})
    return rows


def _assert_exact(table: pa.Table, expected: list[dict]) -> None:
    for p, s in TYPES:
        name = _column(p, s)
        assert table.schema.field(name).type == pa.decimal128(p, s), name
        got = table.column(name).to_pylist()
        want = [row[name] for row in expected]
        # equal as numbers and with the column's scale (Decimal('1.50') is not '1.5' here)
        with localcontext(prec=80):
            assert [None if v is None else f"{v:f}" for v in got] == [
                None if v is None else f"{v.quantize(Decimal(10) ** -s):f}" for v in want], name


def test_the_scan_sends_narrow_numerics_as_scaled_bigints():
    table = Table("pg", "public", "t", (
        Column("a", "DECIMAL(18, 6)", "numeric(18,6)"),
        Column("b", "DECIMAL(5, 0)", "numeric(5,0)"),
        Column("c", "DECIMAL(19, 2)", "numeric(19,2)"),
        Column("d", "DECIMAL(38, 10)", "numeric"),
        Column("e", "DECIMAL(18, 4)", "numeric"),  # (numeric_scale: any number of decimals)
    ))
    scan = scan_select(table, list(table.columns), dialect_for("postgres"), scaled_integers=True)
    assert scan.sql == (
        'SELECT CAST("a" * 1000000 AS BIGINT) AS "a", CAST("b" AS BIGINT) AS "b", '
        'CAST("c" AS TEXT) AS "c", CAST("d" AS TEXT) AS "d", CAST("e" AS TEXT) AS "e" '
        'FROM "public"."t"')
    assert scan.schema.types == [pa.decimal128(18, 6), pa.decimal128(5, 0),
                                 pa.decimal128(19, 2), pa.decimal128(38, 10),
                                 pa.decimal128(18, 4)]
    query_scan = scan_select(table, list(table.columns), dialect_for("postgres"))
    assert "BIGINT" not in query_scan.sql and query_scan.schema.types == scan.schema.types


def test_a_scaled_integer_becomes_its_decimal_bit_for_bit():
    ints = pa.array([None, 0, 1, -1, 10**18 - 1, -(10**18 - 1)], pa.int64()).slice(1)
    out = from_scaled_integer(ints, 18, pa.decimal128(18, 18))
    assert out.to_pylist() == [Decimal(0), Decimal("1e-18"), Decimal("-1e-18"),
                                   Decimal("0.999999999999999999"),
                                   Decimal("-0.999999999999999999")]
    narrow = from_scaled_integer(pa.array([0, 1, -1, None, 9999]), 2, pa.decimal128(4, 2))
    assert [str(v) for v in narrow.to_pylist()] == ["0.00", "0.01", "-0.01", "None", "99.99"]
    # a value the declared precision cannot hold raises, it is never cut
    with pytest.raises(pa.ArrowInvalid):
        from_scaled_integer(pa.array([10**5]), 0, pa.decimal128(5, 0))
    with pytest.raises(pa.ArrowInvalid):
        from_scaled_integer(pa.array([2**62]), 18, pa.decimal128(18, 18))


def test_the_replica_holds_every_value_exactly_with_its_declared_type(env):
    ws, pg_cluster, db = env
    expected = _postgres_rows(pg_cluster, db)
    table = ws.query("SELECT * FROM rep.public.wide ORDER BY id", max_rows=None).table
    assert table.column("id").to_pylist() == list(range(1, ROWS + 2))
    _assert_exact(table, expected)
    types = dict(ws._engine.duck.cursor().execute(  # the replica table's own column types
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = 'rep' AND table_name = 'wide'").fetchall())
    for p, s in TYPES:
        assert types[_column(p, s)] == f"DECIMAL({p},{s})"


def test_a_querys_scan_reads_text_and_every_value_exactly(env):
    ws, pg_cluster, db = env
    sql = ("SELECT w.* FROM pg.public.wide AS w JOIN dk.main.ids AS i ON i.id = w.id "
           "ORDER BY w.id")
    plan = ws.explain(sql)
    [scan] = [f for f in plan.fragments if f.source == "pg"]
    assert isinstance(scan, ScanFragment)
    assert 'CAST("n_18_9" AS TEXT)' in scan.sql and "BIGINT" not in scan.sql
    table = ws.query(sql, max_rows=None).table
    _assert_exact(table, _postgres_rows(pg_cluster, db))


def test_an_append_sync_reads_new_rows_exactly(env):
    ws, pg_cluster, db = env
    ws.sync.set_strategy("rep.public.wide", "append", cursor="id")
    pg_cluster.run_sql("INSERT INTO wide (id, n_18_18, n_18_0, n_7_3) VALUES "
                       "(100, -0.000000000000000001, -999999999999999999, 1234.5)", dbname=db)
    [report] = ws.sync("rep")
    assert report.error is None
    [row] = ws.query("SELECT n_18_18, n_18_0, n_7_3 FROM rep.public.wide WHERE id = 100"
                     ).table.to_pylist()
    assert row == {"n_18_18": Decimal("-1E-18"), "n_18_0": Decimal(-999999999999999999),
                   "n_7_3": Decimal("1234.500")}
    assert str(row["n_7_3"]) == "1234.500"
    pg_cluster.run_sql("DELETE FROM wide WHERE id = 100", dbname=db)


def test_a_nan_fails_the_table_instead_of_becoming_a_number(pg_cluster, pg_database, tmp_path):
    db = pg_database("scaled_nan", "CREATE TABLE t (id integer, v numeric(10,2));\n"
                     "INSERT INTO t VALUES (1, 1.5), (2, 'NaN');")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db), mode="sync")
        ws.sources.add("direct", pg_cluster.uri(db))
        [report] = ws.sync("pg")
        assert isinstance(report.error, SourceQueryError)
        assert "NaN" in report.error.message and "pg.public.t" in report.error.message
        with pytest.raises(SourceQueryError, match="NaN"):
            ws.query("SELECT v FROM direct.public.t")
