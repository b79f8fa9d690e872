"""Parameters given as text (the CLI, later HTTP) compare by the column's type at every source."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest

import meterql

SETUP = """
CREATE TABLE usage (id int PRIMARY KEY, customer_id bigint, day date, qty numeric(12,3));
INSERT INTO usage VALUES (1, 42, '2026-10-01', 1.5), (2, 42, '2026-10-02', 2.25),
                         (3, 7, '2026-10-01', 4);
CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes VALUES (1, '1.5'), (2, 'abc');
"""


@pytest.fixture()
def ws(pg_cluster, pg_database, tmp_path):
    db = pg_database("params", SETUP)
    lite = tmp_path / "crm.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", [(42, "Ann"), (7, "Bo")])
    con.commit()
    con.close()
    with meterql.connect(tmp_path / "home") as workspace:
        workspace.sources.add("pg", pg_cluster.uri(db))
        workspace.sources.add("lite", f"sqlite://{lite}")
        yield workspace


@pytest.mark.parametrize("value", ["42", 42])
def test_text_or_typed_values_compare_with_an_integer_column(ws, value):
    sql = "SELECT count(*) AS n, sum(qty) AS q FROM pg.public.usage WHERE customer_id = :c"
    plan = ws.explain(sql)
    assert plan.residual is None and plan.fragments[0].param_types == ["BIGINT"]
    assert ws.query(sql, {"c": value}).rows()[0][0] == 2


def test_a_wider_value_is_not_narrowed_to_the_column_type(ws):
    # DuckDB compares an integer column with 7.5 as a decimal (7 < 7.5), not as 7 or 8.
    from decimal import Decimal

    sql = "SELECT count(*) AS n FROM pg.public.usage WHERE customer_id < :c"
    assert ws.query(sql, {"c": Decimal("7.5")}).rows() == [(1,)]
    assert ws.query(sql, {"c": Decimal("7.0")}).rows() == [(0,)]
    assert ws.query(sql, {"c": "8"}).rows() == [(1,)]


def test_text_that_is_not_the_column_type_is_a_parameter_error(ws):
    from meterql.errors import ParameterError

    with pytest.raises(ParameterError, match="not a valid BIGINT"):
        ws.query("SELECT id FROM pg.public.usage WHERE customer_id = :c", {"c": "forty-two"})


def test_text_dates_and_in_lists(ws):
    sql = "SELECT id FROM pg.public.usage WHERE day = :d AND customer_id IN (:a, :b) ORDER BY id"
    rows = ws.query(sql, {"d": "2026-10-01", "a": "42", "b": "7"}).rows()
    assert rows == [(1,), (3,)]
    assert ws.query(sql, {"d": date(2026, 10, 2), "a": 42, "b": 0}).rows() == [(2,)]


def test_text_values_in_a_cross_source_query(ws):
    sql = (
        "SELECT c.name, sum(u.qty) AS q FROM pg.public.usage u "
        "JOIN lite.main.customers c ON c.id = u.customer_id "
        "WHERE u.customer_id = :c AND c.id = :c GROUP BY c.name"
    )
    plan = ws.explain(sql)
    assert plan.residual is not None
    pg = next(f for f in plan.fragments if f.source == "pg")
    assert pg.param_types == ["BIGINT"] and "$1" in pg.sql
    result = ws.query(sql, {"c": "42"})
    assert [(r[0], str(r[1])) for r in result.rows()] == [("Ann", "3.750")]


def test_values_no_column_type_takes_are_parameter_errors_not_source_errors(ws):
    """An integer past 128 bits and a number compared with a text column are the caller's
    errors (HTTP 400), not the source's (502)."""
    from meterql.errors import ParameterError, QueryError

    sql = "SELECT count(*) AS n FROM pg.public.usage WHERE customer_id = :c"
    with pytest.raises(ParameterError, match="past the largest integer type"):
        ws.query(sql, {"c": 10**40})
    # past 64 bits but within 128: compared exactly, as DuckDB compares BIGINT with HUGEINT
    assert ws.query(sql, {"c": 10**20}).rows() == [(0,)]
    with pytest.raises(ParameterError, match="is a number .* compared with a VARCHAR column"):
        ws.query("SELECT count(*) AS n FROM pg.public.notes WHERE body = :c", {"c": 1.5})
    # where DuckDB runs the comparison, its own cast fails: the query's error, not the engine's
    with pytest.raises(QueryError, match="Could not convert string 'Ann' to DOUBLE"):
        ws.query("SELECT count(*) AS n FROM pg.public.usage u, lite.main.customers c "
                 "WHERE u.customer_id = c.id AND c.name = :c", {"c": 1.5})
    # a wide integer against a NUMERIC column is compared exactly, as DuckDB does
    assert ws.query("SELECT count(*) AS n FROM pg.public.usage WHERE qty < :q",
                    {"q": 10**20}).rows() == [(3,)]


def test_a_query_a_duckdb_file_source_cannot_cast_is_the_callers_error(tmp_path):
    import duckdb

    from meterql.errors import QueryError, SourceQueryError

    con = duckdb.connect(str(tmp_path / "d.duckdb"))
    con.execute("CREATE TABLE notes AS SELECT 'abc' AS body")
    con.close()
    with meterql.connect(tmp_path / "dhome") as ws:
        ws.sources.add("dk", f"duckdb://{tmp_path / 'd.duckdb'}")
        with pytest.raises(QueryError, match="Could not convert string 'abc'") as caught:
            ws.query("SELECT count(*) AS n FROM dk.main.notes WHERE body = :c", {"c": 1.5})
        assert not isinstance(caught.value, SourceQueryError)


@pytest.mark.parametrize("value", [None, 42, "42"])
def test_the_all_customers_idiom_works_with_a_null_parameter(ws, value):
    """``(:c IS NULL OR customer_id = :c)``: a NULL reaches PostgreSQL typed (as the column it
    is compared with), so all customers are counted; a value counts one."""
    sql = ("SELECT count(*) AS n FROM pg.public.usage "
           "WHERE (:c IS NULL OR customer_id = :c)")
    assert ws.explain(sql).residual is None  # sent whole
    assert ws.query(sql, {"c": value}).rows() == [(3,) if value is None else (2,)]


def test_a_text_parameter_compared_with_an_expression_takes_its_type(ws):
    sql = ("SELECT customer_id, max(day) AS last FROM pg.public.usage GROUP BY customer_id "
           "HAVING max(day) <= :p ORDER BY customer_id")
    assert ws.explain(sql).residual is None
    assert ws.query(sql, {"p": "2026-10-01"}).rows() == [(7, date(2026, 10, 1))]
    assert ws.query(sql, {"p": None}).rows() == []
