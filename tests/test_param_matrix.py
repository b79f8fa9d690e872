"""Every kind of parameter reaches every kind of source with a type, whole and in fragments.

A bound parameter gets its type from the column or expression it is compared with, else from
its value; a NULL included (PostgreSQL cannot type an untyped NULL: the documented
all-customer idiom ``(:c IS NULL OR customer_id = :c)`` failed there). Each query runs through
meterql with the table sent whole to its source, and as a fragment of a query across sources,
and the answer is DuckDB's over the same rows.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pytest

import meterql

pytestmark = pytest.mark.postgres

ROWS = [
    (1, "acme", Decimal("1.50"), date(2026, 10, 1), datetime(2026, 10, 1, 12, tzinfo=UTC), True),
    (2, "acme", Decimal("2.25"), date(2026, 10, 2), datetime(2026, 10, 2, 12, tzinfo=UTC), False),
    (3, "bolt", Decimal("-4.00"), date(2026, 10, 3), datetime(2026, 10, 3, 12, tzinfo=UTC), None),
    (4, None, None, None, None, True),
]
COLUMNS = "id INTEGER, customer TEXT, amount DECIMAL(12,2), day DATE, seen TIMESTAMPTZ, ok BOOLEAN"

#: (column, a value of each kind it is compared with)
KINDS = [
    ("customer", "acme"),           # text
    ("id", 2),                      # int
    ("amount", Decimal("2.25")),    # decimal
    ("amount", "1.50"),             # a decimal as text (CLI, HTTP)
    ("day", date(2026, 10, 3)),     # date
    ("day", "2026-10-01"),          # a date as text
    ("seen", datetime(2026, 10, 2, 12, tzinfo=UTC)),  # timestamp with zone
    ("seen", "2026-10-01 14:00:00+02"),               # ... as text with an offset
    ("ok", True),                   # bool
]
SOURCES = ("pg", "lite", "dk")


@pytest.fixture(scope="module")
def env(pg_cluster, pg_database, tmp_path_factory):
    root = tmp_path_factory.mktemp("parammatrix")
    db = pg_database("params_matrix", f"CREATE TABLE t ({COLUMNS});")
    pg_cluster.run_sql("INSERT INTO t VALUES " + ", ".join(
        "(" + ", ".join(_pg(v) for v in row) + ")" for row in ROWS), dbname=db)
    lite = sqlite3.connect(root / "t.db")
    lite.execute("CREATE TABLE t (id INTEGER, customer TEXT, amount DECIMAL(12,2), day DATE, "
                 "seen TEXT, ok BOOLEAN)")  # (SQLite has no time zone type: text there)
    lite.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", [
        (i, c, None if a is None else str(a), None if d is None else d.isoformat(),
         None if t is None else t.isoformat(), o) for i, c, a, d, t, o in ROWS])
    lite.commit()
    lite.close()
    ref = duckdb.connect()
    ref.execute("SET TimeZone = 'UTC'")
    for name in SOURCES:
        ref.execute(f"CREATE TABLE {name}_t ({COLUMNS})")
        ref.executemany(f"INSERT INTO {name}_t VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    ref.execute("ALTER TABLE lite_t ALTER seen TYPE VARCHAR "
                "USING strftime(seen, '%Y-%m-%dT%H:%M:%S+00:00')")
    dk = duckdb.connect(str(root / "t.duckdb"))
    dk.execute(f"CREATE TABLE t ({COLUMNS})")
    dk.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    dk.close()
    with meterql.connect(root / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db))
        ws.sources.add("lite", f"sqlite://{root / 't.db'}")
        ws.sources.add("dk", f"duckdb://{root / 't.duckdb'}")
        yield ws, ref


def _table(source: str) -> str:
    return "pg.public.t" if source == "pg" else f"{source}.main.t"


def _pg(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    return "'" + str(value) + "'"


def _cases():
    for source in SOURCES:
        for column, value in KINDS:
            if source == "lite" and column == "seen":
                continue  # (text there: compared as text, covered by the text kind)
            for shape in ("whole", "fragment"):
                for given in (value, None):
                    yield pytest.param(source, column, given, shape,
                                       id=f"{source}-{column}-{type(given).__name__}-{shape}")


@pytest.mark.parametrize(("source", "column", "value", "shape"), list(_cases()))
def test_a_parameter_of_every_kind_at_every_source(env, source, column, value, shape):
    ws, ref = env
    where = f"(:p IS NULL OR a.{column} = :p)"
    other = "dk" if source != "dk" else "pg"
    sql = {"whole": f"SELECT count(*) AS n FROM {_table(source)} a WHERE {where}",
           "fragment": f"SELECT count(*) AS n FROM {_table(source)} a JOIN {_table(other)} b "
                       f"ON a.id = b.id WHERE {where}"}[shape]
    plan = ws.explain(sql)
    assert (plan.residual is None) == (shape == "whole" and source != "lite"), str(plan)
    ref_sql = sql.replace(_table(source), f"{source}_t").replace(_table(other), f"{other}_t")
    want = ref.execute(ref_sql.replace(":p", "$p"), {"p": value}).fetchall()
    assert ws.query(sql, {"p": value}).rows() == want


@pytest.mark.parametrize("source", SOURCES)
def test_a_list_for_in_with_a_null_among_them(env, source):
    ws, ref = env
    sql = f"SELECT id FROM {_table(source)} WHERE customer IN (:a, :b, :c) ORDER BY id"
    params = {"a": "bolt", "b": None, "c": "acme"}
    assert ws.query(sql, params).rows() == ref.execute(
        f"SELECT id FROM {source}_t WHERE customer IN ($a, $b, $c) ORDER BY id", params).fetchall()


def test_a_list_value_is_refused_with_the_way_to_write_it(env):
    ws, _ = env
    with pytest.raises(meterql.errors.ParameterError, match="cannot be bound"):
        ws.query("SELECT count(*) AS n FROM dk.main.t WHERE customer = :c", {"c": ["a", "b"]})
