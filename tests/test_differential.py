"""Differential tests: every query gives, through meterql, DuckDB's answer over the same data.

The billing dataset (tests/support/dataset.py) lives in PostgreSQL (``pg``), SQLite (``lite``)
and a DuckDB file (``dk``); the reference is one in-memory DuckDB holding the same rows under the
same names and types, so the same SQL text runs in both. Whatever meterql pushes down, sends
whole or keeps local, the rows must be the ones DuckDB returns.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from meterql.errors import MeterqlError

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Q:
    """One differential query: ``ordered`` when it has a total ORDER BY."""

    id: str
    sql: str
    ordered: bool = False
    params: dict[str, Any] = field(default_factory=dict)


QUERIES = [
    # -- PostgreSQL only ---------------------------------------------------------------------
    Q("pg_filter_decimal_range",
      "SELECT id, quantity FROM pg.public.events "
      "WHERE quantity > 12345.5 AND quantity <= 12345678.123456"),
    Q("pg_group_aggregates",
      "SELECT meter, count(*) AS n, count(quantity) AS nq, sum(quantity) AS q, "
      "min(unit_price) AS lo, max(unit_price) AS hi, min(ts) AS first_ts "
      "FROM pg.public.events GROUP BY meter"),
    Q("pg_having",
      "SELECT customer_id, sum(quantity) AS q, count(*) AS n FROM pg.public.events "
      "GROUP BY customer_id HAVING sum(quantity) > 300 AND count(*) >= 14"),
    Q("pg_distinct", "SELECT DISTINCT meter, note FROM pg.public.events"),
    Q("pg_order_desc_limit",
      "SELECT id, customer_id, quantity FROM pg.public.events "
      "ORDER BY quantity DESC, id LIMIT 25", ordered=True),
    Q("pg_order_nulls_default",
      "SELECT customer_id, count(*) AS n FROM pg.public.events "
      "GROUP BY customer_id ORDER BY customer_id DESC", ordered=True),
    Q("pg_order_ts_nulls_first",
      "SELECT id, ts FROM pg.public.events WHERE customer_id < 20 "
      "ORDER BY ts NULLS FIRST, id", ordered=True),
    Q("pg_order_text", "SELECT DISTINCT meter FROM pg.public.events ORDER BY meter",
      ordered=True),
    Q("pg_order_text_by_position",
      "SELECT name, code FROM pg.public.plans ORDER BY 1, 2", ordered=True),
    Q("pg_order_text_by_alias",
      "SELECT code AS c, name FROM pg.public.plans ORDER BY c", ordered=True),
    Q("pg_min_max_text", "SELECT min(note) AS lo, max(note) AS hi FROM pg.public.events"),
    Q("pg_text_range",
      "SELECT id, note FROM pg.public.events WHERE note >= 'a' AND note < 'z'"),
    Q("pg_window_row_number_nulls",
      "SELECT id, customer_id, row_number() OVER (PARTITION BY customer_id "
      "ORDER BY ts DESC, id) AS rn FROM pg.public.events WHERE customer_id <= 30"),
    Q("pg_window_running_sum",
      "SELECT id, meter, sum(quantity) OVER (PARTITION BY meter ORDER BY id) AS running "
      "FROM pg.public.events WHERE id < 400"),
    Q("pg_cte",
      "WITH per AS (SELECT customer_id, sum(quantity) AS q FROM pg.public.events "
      "GROUP BY customer_id) SELECT count(*) AS n, sum(q) AS total, max(q) AS top "
      "FROM per WHERE q > 0"),
    Q("pg_in_subquery",
      "SELECT count(*) AS n FROM pg.public.events WHERE meter IN "
      "(SELECT meter FROM pg.public.events WHERE quantity > 49.99)"),
    Q("pg_not_exists_correlated",
      "SELECT e.customer_id, count(*) AS n FROM pg.public.events e WHERE NOT EXISTS "
      "(SELECT 1 FROM pg.public.events x WHERE x.customer_id = e.customer_id "
      "AND x.quantity < 0) GROUP BY e.customer_id"),
    Q("pg_correlated_scalar_avg",
      "SELECT e.id FROM pg.public.events e WHERE e.quantity > "
      "(SELECT avg(x.quantity) FROM pg.public.events x WHERE x.meter = e.meter) * 1.9"),
    Q("pg_scalar_subquery",
      "SELECT id, quantity - (SELECT min(quantity) FROM pg.public.events) AS above_min "
      "FROM pg.public.events WHERE id <= 50"),
    Q("pg_union",
      "SELECT customer_id FROM pg.public.events WHERE quantity < 0 "
      "UNION SELECT included_units FROM pg.public.plans"),
    Q("pg_except",
      "SELECT meter FROM pg.public.events EXCEPT "
      "SELECT meter FROM pg.public.events WHERE quantity > 49.99"),
    Q("pg_coalesce_case",
      "SELECT id, COALESCE(note, '<none>') AS n, CASE WHEN quantity IS NULL THEN 'missing' "
      "WHEN quantity < 0 THEN 'negative' ELSE 'ok' END AS kind "
      "FROM pg.public.events WHERE id < 300"),
    Q("pg_count_col_vs_star",
      "SELECT count(*) AS a, count(note) AS b, count(DISTINCT note) AS c, "
      "count(customer_id) AS d, count(DISTINCT customer_id) AS e FROM pg.public.events"),
    Q("pg_decimal_product_sum",
      "SELECT meter, sum(quantity * unit_price) AS amount, sum(quantity) AS q "
      "FROM pg.public.events GROUP BY meter"),
    Q("pg_decimal_product_rows",
      "SELECT id, quantity * unit_price AS amount FROM pg.public.events WHERE id % 37 = 0"),
    Q("pg_decimal_exact_equality",
      "SELECT id, unit_price FROM pg.public.events WHERE unit_price = 0.0123456789 "
      "OR unit_price = 1.0000000001 OR quantity = 0.000001 OR quantity = -0.000001"),
    Q("pg_ts_month_end_window",
      "SELECT id, ts FROM pg.public.events WHERE ts >= '2024-02-29 23:00:00+00' "
      "AND ts < TIMESTAMPTZ '2024-03-01 05:00:00+00'"),
    Q("pg_ts_dst_window",
      "SELECT id, ts FROM pg.public.events "
      "WHERE ts BETWEEN '2024-03-10 01:00:00-05' AND '2024-03-10 04:00:00-04'"),
    Q("pg_date_trunc_month",
      "SELECT date_trunc('month', ts) AS m, count(*) AS n, sum(quantity) AS q "
      "FROM pg.public.events GROUP BY 1"),
    Q("pg_ts_arithmetic",
      "SELECT id, ts + INTERVAL 1 DAY AS next_day, CAST(ts AS DATE) AS d, "
      "ts - TIMESTAMPTZ '2024-01-01 00:00:00+00' AS since FROM pg.public.events "
      "WHERE id % 50 = 0"),
    Q("pg_cast_ts_to_date_filter",
      "SELECT id FROM pg.public.events WHERE CAST(ts AS DATE) = DATE '2024-02-29'"),
    Q("pg_date_arithmetic",
      "SELECT code, launched - DATE '2024-01-01' AS days, launched + 30 AS later "
      "FROM pg.public.plans"),
    Q("pg_naive_timestamp",
      "SELECT code, updated_at FROM pg.public.plans WHERE updated_at >= '2024-02-29 23:59:59'"),
    Q("pg_strings_quotes_unicode",
      "SELECT id, note FROM pg.public.events WHERE note IN ('it''s fine', 'he said \"no\"', "
      "'Zoë', '東京', '🎉 launch', 'back\\slash', 'line\nbreak')"),
    Q("pg_empty_vs_null",
      "SELECT count(*) FILTER (WHERE note = '') AS empty, "
      "count(*) FILTER (WHERE note IS NULL) AS nulls FROM pg.public.events"),
    Q("pg_integer_division",
      "SELECT id, customer_id // 7 AS q, customer_id % 7 AS r, customer_id / 7 AS f, "
      "-customer_id // 7 AS nq FROM pg.public.events WHERE id <= 40"),
    Q("pg_division_by_zero_float",
      "SELECT id, quantity / 0 AS d, customer_id / 0 AS i FROM pg.public.events "
      "WHERE id < 5"),
    Q("pg_division_by_zero_error", "SELECT customer_id % 0 AS r FROM pg.public.events"),
    Q("pg_integer_arithmetic",
      "SELECT id, customer_id * 3 - id AS x, -quantity AS neg FROM pg.public.events "
      "WHERE id < 60"),
    Q("pg_boolean_aggregates",
      "SELECT max(is_public) AS a, min(is_public) AS b, count(is_public) AS c "
      "FROM pg.public.plans"),
    Q("pg_cast_decimal_to_text_filter",
      "SELECT id FROM pg.public.events WHERE CAST(unit_price AS VARCHAR) = '100.0000000000'"),
    Q("pg_cast_decimal_to_int",
      "SELECT id, CAST(quantity AS INTEGER) AS qi FROM pg.public.events "
      "WHERE CAST(quantity AS INTEGER) = 3"),
    Q("pg_exponent_literals",
      "SELECT id, CAST(2.5e0 AS INTEGER) AS two, quantity * 2e0 AS d FROM pg.public.events "
      "WHERE id < 10"),
    Q("pg_casts_in_filter_and_select",
      "SELECT id, CAST(quantity AS DECIMAL) AS q3, CAST(customer_id AS BIGINT) AS c "
      "FROM pg.public.events WHERE CAST(quantity AS DECIMAL) = 3.5 OR id < 5"),
    Q("pg_varchar_length_cast",
      "SELECT id, CAST(note AS VARCHAR(3)) AS short FROM pg.public.events WHERE id < 40"),
    Q("pg_timestamp_precision_cast",
      "SELECT id, CAST(ts AS TIMESTAMP(3)) AS ms FROM pg.public.events "
      "WHERE CAST(ts AS TIMESTAMP(3)) < TIMESTAMP '2024-02-01 00:00:00'"),
    Q("pg_interval_whole",
      "SELECT id, ts - TIMESTAMPTZ '2023-01-01 00:00:00+00' AS since FROM pg.public.events "
      "WHERE id < 200"),
    Q("pg_distinct_on",
      "SELECT DISTINCT ON (customer_id) customer_id, id, quantity FROM pg.public.events "
      "ORDER BY customer_id, quantity DESC, id"),
    Q("pg_limit_offset",
      "SELECT id, quantity FROM pg.public.events ORDER BY quantity, id LIMIT 10 OFFSET 5",
      ordered=True),
    Q("pg_sum_int_and_coalesce",
      "SELECT meter, sum(customer_id) AS s, COALESCE(max(quantity), 0) AS m, "
      "sum(COALESCE(unit_price, 0) * 2) AS p FROM pg.public.events GROUP BY meter"),
    Q("pg_null_literal", "SELECT code, NULL AS nothing FROM pg.public.plans"),
    Q("pg_params",
      "SELECT count(*) AS n, sum(quantity) AS q FROM pg.public.events "
      "WHERE customer_id = :cid AND ts < :before",
      params={"cid": 42, "before": dt.datetime(2024, 3, 1, tzinfo=dt.UTC)}),
    Q("pg_param_text_with_quote",
      "SELECT id FROM pg.public.events WHERE note = :note AND quantity >= :q",
      params={"note": "it's fine", "q": Decimal("10.5")}),
    # -- SQLite only ---------------------------------------------------------------------------
    Q("lite_filter_text",
      "SELECT id, name FROM lite.main.customers WHERE country = 'DE' AND plan <> 'free'"),
    Q("lite_group_aggregates",
      "SELECT country, count(*) AS n, count(credit) AS nc, sum(credit) AS s, "
      "min(signup) AS first, max(signup) AS last FROM lite.main.customers GROUP BY country"),
    Q("lite_boolean_group",
      "SELECT active, count(*) AS n, sum(credit) AS s FROM lite.main.customers GROUP BY active"),
    Q("lite_text_range",
      "SELECT id, name FROM lite.main.customers WHERE name > 'Beta' AND name <= 'zulu'"),
    Q("lite_nocase_column_not_equal",
      "SELECT id, name FROM lite.main.customers WHERE name <> 'alpha' AND id <= 15"),
    Q("lite_nocase_column_in_list",
      "SELECT id, name FROM lite.main.customers WHERE name IN ('beta', 'ZULU', 'émile')"),
    Q("lite_order_unicode_nulls_first",
      "SELECT id, name FROM lite.main.customers WHERE id <= 30 ORDER BY name NULLS FIRST, id",
      ordered=True),
    Q("lite_date_filter",
      "SELECT id, signup FROM lite.main.customers "
      "WHERE signup BETWEEN DATE '2024-01-31' AND '2024-02-29'"),
    Q("lite_decimal_filter",
      "SELECT id, credit FROM lite.main.customers WHERE credit < 0 OR credit = 9999999999.99"),
    Q("lite_window_rank",
      "SELECT id, country, rank() OVER (PARTITION BY country ORDER BY credit DESC NULLS LAST, "
      "id) AS r FROM lite.main.customers"),
    Q("lite_empty_and_null_text",
      "SELECT id, name, country FROM lite.main.customers "
      "WHERE name IS NULL OR name = '' OR country = ''"),
    Q("lite_in_list_mixed",
      "SELECT id FROM lite.main.customers WHERE id IN (1, 2, 3) OR name = 'Zoë Ltd' "
      "OR name = 'O''Brien & Sons'"),
    Q("lite_params",
      "SELECT id, credit FROM lite.main.customers WHERE plan = :plan AND id > :min_id",
      params={"plan": "o'legacy", "min_id": 20}),
    Q("lite_boolean_filter",
      "SELECT id FROM lite.main.customers WHERE active AND credit > 1000"),
    # -- DuckDB file only ----------------------------------------------------------------------
    Q("dk_group_all",
      "SELECT plan, meter, count(*) AS n, max(price) AS hi FROM dk.main.prices GROUP BY ALL"),
    Q("dk_order_total",
      "SELECT plan, meter, valid_from, price FROM dk.main.prices "
      "ORDER BY plan NULLS FIRST, meter, valid_from DESC", ordered=True),
    Q("dk_month_sums",
      "SELECT date_trunc('month', created_at) AS m, sum(amount) AS s, count(*) AS n "
      "FROM dk.main.adjustments GROUP BY 1"),
    Q("dk_latest_price_correlated",
      "SELECT p.plan, p.meter, p.price FROM dk.main.prices p WHERE p.valid_from = "
      "(SELECT max(q.valid_from) FROM dk.main.prices q WHERE q.plan IS NOT DISTINCT FROM "
      "p.plan AND q.meter IS NOT DISTINCT FROM p.meter)"),
    Q("dk_params",
      "SELECT count(*) AS n, sum(amount) AS s FROM dk.main.adjustments "
      "WHERE amount > :amt AND reason <> :r",
      params={"amt": Decimal("-100.5"), "r": "it's a credit"}),
    # -- across sources ------------------------------------------------------------------------
    Q("x_pg_lite_join_group",
      "SELECT c.country, sum(e.quantity) AS q, count(*) AS n FROM pg.public.events e "
      "JOIN lite.main.customers c ON c.id = e.customer_id "
      "WHERE e.meter = 'api_calls' AND c.active GROUP BY c.country"),
    Q("x_left_join_is_null",
      "SELECT e.id, e.customer_id FROM pg.public.events e "
      "LEFT JOIN lite.main.customers c ON c.id = e.customer_id WHERE c.id IS NULL"),
    Q("x_left_join_on_filter_where_is_null",
      "SELECT c.id, e.id AS eid FROM lite.main.customers c LEFT JOIN pg.public.events e "
      "ON e.customer_id = c.id AND e.quantity > 40 WHERE e.id IS NULL"),
    Q("x_left_join_where_on_null_side",
      "SELECT c.id, c.name, e.note FROM lite.main.customers c LEFT JOIN pg.public.events e "
      "ON e.customer_id = c.id WHERE e.note IS NULL OR e.note = ''"),
    Q("x_left_join_on_filters_preserved_side",
      "SELECT c.id, e.id AS eid FROM lite.main.customers c LEFT JOIN pg.public.events e "
      "ON e.customer_id = c.id AND c.country = 'FR' AND e.meter = 'seats' WHERE c.id < 40"),
    Q("x_left_join_coalesce",
      "SELECT c.id, COALESCE(sum(a.amount), 0) AS adj FROM lite.main.customers c "
      "LEFT JOIN dk.main.adjustments a ON a.customer_id = c.id GROUP BY c.id"),
    Q("x_pg_dk_join",
      "SELECT e.meter, pr.plan, sum(e.quantity * pr.price) AS amount, count(*) AS n "
      "FROM pg.public.events e JOIN dk.main.prices pr ON pr.meter = e.meter "
      "WHERE pr.valid_from = DATE '2024-02-29' GROUP BY e.meter, pr.plan"),
    Q("x_three_source_invoice",
      "WITH priced AS ("
      " SELECT e.customer_id, date_trunc('month', e.ts) AS month, e.quantity, pr.price,"
      "  row_number() OVER (PARTITION BY e.id ORDER BY pr.valid_from DESC) AS pick"
      " FROM pg.public.events e"
      " JOIN lite.main.customers c ON c.id = e.customer_id"
      " JOIN dk.main.prices pr ON pr.plan = c.plan AND pr.meter = e.meter"
      "  AND pr.valid_from <= CAST(e.ts AS DATE))"
      " SELECT customer_id, month, sum(quantity * price) AS amount, count(*) AS n"
      " FROM priced WHERE pick = 1 GROUP BY customer_id, month"),
    Q("x_not_exists_cross",
      "SELECT c.id FROM lite.main.customers c WHERE NOT EXISTS "
      "(SELECT 1 FROM dk.main.adjustments a WHERE a.customer_id = c.id)"),
    Q("x_in_subquery_cross",
      "SELECT count(*) AS n, sum(e.quantity) AS q FROM pg.public.events e "
      "WHERE e.customer_id IN (SELECT id FROM lite.main.customers WHERE country = 'JP')"),
    Q("x_not_in_with_nulls",
      "SELECT count(*) AS n FROM lite.main.customers c "
      "WHERE c.id NOT IN (SELECT customer_id FROM dk.main.adjustments)"),
    Q("x_union_all",
      "SELECT customer_id, amount AS v FROM dk.main.adjustments WHERE amount < -40000 "
      "UNION ALL SELECT customer_id, quantity FROM pg.public.events WHERE quantity > 49.9"),
    Q("x_except",
      "SELECT id FROM lite.main.customers EXCEPT SELECT customer_id FROM pg.public.events"),
    Q("x_right_join",
      "SELECT c.id, e.id AS eid FROM pg.public.events e RIGHT JOIN lite.main.customers c "
      "ON c.id = e.customer_id AND e.meter = 'seats' WHERE c.id < 40"),
    Q("x_full_join",
      "SELECT a.customer_id, c.id FROM dk.main.adjustments a FULL JOIN lite.main.customers c "
      "ON a.customer_id = c.id WHERE a.id IS NULL OR c.id IS NULL"),
    Q("x_order_limit",
      "SELECT e.id, c.name, e.quantity FROM pg.public.events e "
      "JOIN lite.main.customers c ON c.id = e.customer_id "
      "ORDER BY e.quantity DESC NULLS LAST, e.id LIMIT 20", ordered=True),
    Q("x_window",
      "SELECT c.country, e.id, row_number() OVER (PARTITION BY c.country ORDER BY e.ts, e.id) "
      "AS rn FROM pg.public.events e JOIN lite.main.customers c ON c.id = e.customer_id "
      "WHERE c.id <= 25"),
    Q("x_correlated_scalar",
      "SELECT c.id, (SELECT sum(a.amount) FROM dk.main.adjustments a "
      "WHERE a.customer_id = c.id) AS adj FROM lite.main.customers c"),
    Q("x_date_vs_timestamp",
      "SELECT c.id, count(*) AS n FROM lite.main.customers c JOIN pg.public.events e "
      "ON e.customer_id = c.id WHERE CAST(e.ts AS DATE) >= c.signup GROUP BY c.id"),
    Q("x_text_join_quotes",
      "SELECT pl.code, pl.name, count(c.id) AS n FROM pg.public.plans pl "
      "LEFT JOIN lite.main.customers c ON c.plan = pl.code GROUP BY pl.code, pl.name"),
    Q("x_naive_timestamp",
      "SELECT pl.code, pl.updated_at, pl.launched, count(c.id) AS n FROM pg.public.plans pl "
      "LEFT JOIN lite.main.customers c ON c.plan = pl.code "
      "WHERE pl.updated_at < TIMESTAMP '2024-03-01 00:00:00' GROUP BY ALL"),
    Q("x_parenthesised_join_null_side",
      "SELECT c.id, e.id AS eid, p.plan FROM lite.main.customers c LEFT JOIN "
      "(pg.public.events e JOIN dk.main.prices p ON p.meter = e.meter "
      "AND p.valid_from = DATE '2024-01-01') ON e.customer_id = c.id AND e.quantity > 49.5 "
      "WHERE p.plan IS NULL"),
    Q("x_parenthesised_join_inner",
      "SELECT c.id, e.id AS eid, p.plan FROM lite.main.customers c JOIN "
      "(pg.public.events e JOIN dk.main.prices p ON p.meter = e.meter) "
      "ON e.customer_id = c.id WHERE p.valid_from = DATE '2024-01-01' AND e.quantity > 49"),
    Q("x_table_column_aliases",
      "SELECT x.k, x.who, count(*) AS n FROM lite.main.customers AS x(k, who) "
      "JOIN pg.public.events e ON e.customer_id = x.k WHERE x.k < 50 GROUP BY ALL"),
    Q("x_same_alias_nested",
      "SELECT e.id FROM pg.public.events e WHERE e.customer_id IN (SELECT e.id FROM "
      "lite.main.customers e WHERE e.country = 'US') AND e.quantity > 45"),
    Q("x_asof_join_where_on_right",
      "SELECT e.id, p.plan, p.price FROM pg.public.events e ASOF JOIN dk.main.prices p "
      "ON p.meter = e.meter AND CAST(e.ts AS DATE) >= p.valid_from WHERE p.plan = 'pro'"),
    Q("x_asof_left_join",
      "SELECT e.id, p.price FROM pg.public.events e ASOF LEFT JOIN dk.main.prices p "
      "ON p.meter = e.meter AND CAST(e.ts AS DATE) >= p.valid_from "
      "WHERE e.customer_id < 50 AND e.quantity > 10"),
    Q("x_params",
      "SELECT c.name, count(e.id) AS n FROM lite.main.customers c LEFT JOIN pg.public.events e "
      "ON e.customer_id = c.id AND e.ts >= :since WHERE c.country = :country GROUP BY c.name",
      params={"since": dt.datetime(2024, 3, 31, 1, 0, tzinfo=dt.UTC), "country": "JP"}),
    Q("x_params_decimal_date",
      "SELECT a.id, a.amount FROM dk.main.adjustments a JOIN pg.public.events e ON e.id = a.id "
      "WHERE a.amount >= :lo AND e.quantity < :hi AND a.period = :period",
      params={"lo": Decimal("-20000.5"), "hi": Decimal("30"), "period": dt.date(2024, 3, 1)}),
]


# -- comparing results ---------------------------------------------------------------------------


def _norm(value: Any) -> tuple:
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


def _same(a: tuple, b: tuple) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == 3:
        if a[2] or b[2]:
            return a[2] and b[2]
        return math.isclose(a[1], b[1], rel_tol=1e-12, abs_tol=1e-12) or a[1] == b[1]
    return a == b


def _rows(table) -> list[tuple]:
    columns = [col.to_pylist() for col in table.columns]
    return [tuple(_norm(v) for v in row) for row in zip(*columns, strict=True)]


def _sort_key(row: tuple) -> tuple:
    # Floats sort by a rounded value so tiny differences cannot reorder them.
    return tuple((v[0], round(v[1], 6)) if v[0] == 3 else v for v in row)


def assert_same_rows(got, want, ordered: bool) -> None:
    got_rows, want_rows = _rows(got), _rows(want)
    assert got.num_columns == want.num_columns, (got.column_names, want.column_names)
    assert len(got_rows) == len(want_rows), f"{len(got_rows)} rows, DuckDB has {len(want_rows)}"
    if not ordered:
        got_rows, want_rows = sorted(got_rows, key=_sort_key), sorted(want_rows, key=_sort_key)
    for i, (g, w) in enumerate(zip(got_rows, want_rows, strict=True)):
        if not all(_same(a, b) for a, b in zip(g, w, strict=True)):
            pytest.fail(f"row {i} differs:\n  meterql: {g}\n  DuckDB:  {w}")


def reference(ref: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]):
    # DuckDB itself spells named parameters $name.
    text = re.sub(r"(?<![:\w]):(\w+)", r"$\1", sql) if params else sql
    cur = ref.cursor()
    try:
        return cur.sql(text, params=params or None).to_arrow_table()
    finally:
        cur.close()


@pytest.mark.parametrize("q", QUERIES, ids=[q.id for q in QUERIES])
def test_same_answer_as_duckdb(billing, q: Q):
    try:
        want = reference(billing.ref, q.sql, q.params)
    except duckdb.Error as exc:
        with pytest.raises(MeterqlError):
            billing.ws.query(q.sql, q.params)
        assert "zero" in str(exc).lower() or "overflow" in str(exc).lower(), exc
        return
    got = billing.ws.query(q.sql, q.params)
    assert not got.truncated
    assert_same_rows(got.table, want, q.ordered)
    # Parity goes down to the Arrow types, whichever path ran the query.
    assert got.table.schema.types == want.schema.types


def test_query_ids_are_unique_and_enough():
    ids = [q.id for q in QUERIES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 45


def test_output_names_are_the_same_whole_or_split(billing):
    # Longer than PostgreSQL's 63-byte identifiers, which it would cut.
    expr = "sum(quantity * unit_price) + sum(quantity) - sum(unit_price) * 2 + count(*)"
    whole = billing.ws.query(f"SELECT {expr} FROM pg.public.events")
    split = billing.ws.query(
        f"SELECT {expr} FROM pg.public.events "
        "WHERE customer_id IN (SELECT id FROM lite.main.customers)"
    )
    assert whole.plan.residual is None and split.plan.residual is not None
    assert len(whole.columns[0]) > 63
    assert whole.columns == split.columns


def test_whole_postgres_query_answers_with_duckdb_types(billing):
    sql = "SELECT sum(quantity * unit_price) AS amount FROM pg.public.events"
    result = billing.ws.query(sql)
    assert result.plan.residual is None
    want = reference(billing.ref, sql, {}).schema.field("amount").type
    assert result.table.schema.field("amount").type == want == pa.decimal128(38, 16)


# -- plan shapes ---------------------------------------------------------------------------------


def test_plan_single_postgres_query_is_sent_whole(billing):
    plan = billing.ws.explain(
        "SELECT meter, sum(quantity) FROM pg.public.events WHERE customer_id = 7 GROUP BY meter"
    )
    assert plan.residual is None
    (frag,) = plan.fragments
    assert frag.source == "pg"
    assert "WHERE" in frag.sql and "GROUP BY" in frag.sql


def test_plan_single_duckdb_query_is_sent_whole(billing):
    plan = billing.ws.explain(
        "SELECT plan, max(price) FROM dk.main.prices WHERE meter = 'seats' "
        "GROUP BY plan ORDER BY plan"
    )
    assert plan.residual is None
    assert [f.source for f in plan.fragments] == ["dk"]


def test_plan_sqlite_is_scanned_with_safe_filters_only(billing):
    plan = billing.ws.explain(
        "SELECT id FROM lite.main.customers WHERE country = 'DE' AND credit > 10 AND active"
    )
    assert plan.residual is not None
    (frag,) = plan.fragments
    filters = [p for p in frag.pushed if p.startswith("filter")]
    assert len(filters) == 1 and "country = 'DE'" in filters[0]
    # Bytewise, as in DuckDB, even where the column is declared COLLATE NOCASE.
    assert "\"country\" COLLATE BINARY = 'DE'" in frag.sql
    kept = " ".join(frag.kept)
    assert "credit > 10" in kept and "active" in kept


def test_plan_text_order_is_not_sent_to_postgres(billing):
    plan = billing.ws.explain("SELECT DISTINCT meter FROM pg.public.events ORDER BY meter")
    assert plan.residual is not None
    assert any("collation" in note for note in plan.notes)


def test_plan_left_join_keeps_is_null_on_the_null_supplying_side(billing):
    plan = billing.ws.explain(
        "SELECT c.id FROM lite.main.customers c LEFT JOIN pg.public.events e "
        "ON e.customer_id = c.id AND e.quantity > 40 WHERE e.id IS NULL AND c.country = 'DE'"
    )
    frags = {f.source: f for f in plan.fragments}
    events, customers = frags["pg"], frags["lite"]
    assert "quantity > 40" in " ".join(events.pushed)
    assert "IS NULL" not in events.sql
    assert "country = 'DE'" in " ".join(customers.pushed)


def test_plan_cross_source_pushes_each_tables_filters(billing):
    plan = billing.ws.explain(
        "SELECT c.country, sum(e.quantity) FROM pg.public.events e "
        "JOIN lite.main.customers c ON c.id = e.customer_id "
        "WHERE e.meter = 'api_calls' AND e.ts >= '2024-03-01' AND c.active GROUP BY 1"
    )
    assert plan.residual is not None
    frags = {f.source: f for f in plan.fragments}
    assert "meter" in frags["pg"].sql and "ts" in frags["pg"].sql
    assert '"note"' not in frags["pg"].sql  # only the needed columns are read
    assert "active" in " ".join(frags["lite"].kept)
