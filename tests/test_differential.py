"""Differential tests: every query gives, through meterql, DuckDB's answer over the same data.

The billing dataset (tests/support/dataset.py) lives in PostgreSQL (``pg``), SQLite (``lite``)
and a DuckDB file (``dk``); the reference is one in-memory DuckDB holding the same rows under the
same names and types, so the same SQL text runs in both. Whatever meterql pushes down, sends
whole or keeps local, the rows must be the ones DuckDB returns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from meterql.errors import MeterqlError
from tests.support.compare import assert_same_rows, reference

__all__ = ["QUERIES", "Q", "assert_same_rows", "reference"]

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class Q:
    """One differential query: ``ordered`` when it has a total ORDER BY."""

    id: str
    sql: str
    ordered: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    marks: tuple = ()


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


# -- the pitfall matrix over the edge-case tables ------------------------------------------------
#
# Each pitfall below runs on the edge-case table of every source, twice: alone (sent whole to
# PostgreSQL and DuckDB, scanned with filters from SQLite) and across sources (the same rows,
# joined on ``id`` to another source's copy of the table, or with the other set-operation arm or
# subquery there), so both the whole-query transpilation and the split path meet it.
# In a template, ``{T}`` is the table as ``t`` (plus the join to the other copy when split) and
# ``{O}`` another copy: the same source's alone, the other source's when split.

#: source -> (its edge-case table, the source its split form joins)
EDGE = {
    "pg": ("pg.public.edge_cases", "lite"),
    "lite": ("lite.main.edge_cases", "dk"),
    "dk": ("dk.main.edge_cases", "pg"),
}


@dataclass(frozen=True)
class Pitfall:
    """A query template run over every source's edge-case table, alone and split."""

    name: str
    sql: str
    ordered: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    #: form id (``pg``, ``pg+lite``, ...) -> pytest marks (known failures, with their cause)
    marks: dict[str, tuple] = field(default_factory=dict)


# Known wrong answers whose fix belongs to the planner or the executor.

PITFALLS = [
    # -- integer division, modulo, division by zero ------------------------------------------------
    Pitfall("int_division",
            "SELECT t.id, t.a / t.b AS q, t.a // t.b AS iq, t.a % t.b AS r, "
            "t.a // (t.b * -1) AS nq, t.a % (-3) AS rn, 7 / 2 AS lit, -7 // 2 AS nlit "
            "FROM {T} WHERE t.b <> 0"),
    Pitfall("int_division_filter",
            "SELECT t.id, t.a FROM {T} WHERE t.a / t.b > 1.5 OR t.a // 4 = -2 OR t.a % 4 = -3"),
    Pitfall("division_by_zero",
            "SELECT t.id, t.a / t.b AS q, t.d / 0 AS dz, t.r / 0 AS rz, t.n / t.b AS nb "
            "FROM {T}"),
    Pitfall("int_division_by_zero_raises", "SELECT t.id, t.a // t.b AS q FROM {T}"),
    Pitfall("modulo_by_zero_raises", "SELECT t.id FROM {T} WHERE t.a % t.b = 1"),
    Pitfall("int_overflow_raises", "SELECT t.id, t.a * 2 AS x, -t.a AS neg FROM {T}"),
    # -- NULL ordering, with LIMIT so that where NULLs go changes the rows ----------------------
    Pitfall("nulls_desc_implicit",
            "SELECT t.id, t.a FROM {T} ORDER BY t.a DESC, t.id LIMIT 6", ordered=True),
    Pitfall("nulls_asc_implicit_tail",
            "SELECT t.id, t.n FROM {T} ORDER BY t.n, t.id DESC LIMIT 6 OFFSET 30", ordered=True),
    Pitfall("nulls_explicit",
            "SELECT t.id, t.flag, t.d FROM {T} "
            "ORDER BY t.flag DESC NULLS FIRST, t.d ASC NULLS FIRST, t.id LIMIT 8", ordered=True),
    Pitfall("nulls_last_desc_timestamps",
            "SELECT t.id, t.day, t.ts FROM {T} ORDER BY t.day DESC NULLS LAST, t.ts NULLS LAST, "
            "t.id LIMIT 10", ordered=True),
    Pitfall("nulls_in_window_order",
            "SELECT t.id, row_number() OVER (ORDER BY t.a DESC, t.id) AS rn, "
            "row_number() OVER (PARTITION BY t.flag ORDER BY t.ts NULLS FIRST, t.id) AS rt "
            "FROM {T}"),
    Pitfall("nulls_set_operation_order_by_position",
            "SELECT t.a FROM {T} UNION ALL SELECT b FROM {O} ORDER BY 1 DESC LIMIT 5",
            ordered=True),
    # -- decimal scale ----------------------------------------------------------------------------
    Pitfall("decimal_aggregates",
            "SELECT count(t.d) AS c, sum(t.d) AS s, avg(t.d) AS a, sum(t.n) AS sn, "
            "avg(t.n) AS an, sum(t.d * t.n) AS p, min(t.n * 3) AS m3 FROM {T}"),
    Pitfall("decimal_rows",
            "SELECT t.id, t.d * t.n AS p, t.d * 2 AS d2, t.d + t.n AS s, t.d - 0.5 AS m, "
            "round(t.d, 2) AS r2, round(t.n) AS r0, round(t.d, -1) AS rm, round(t.r, 1) AS rr, "
            "CAST(t.d AS DECIMAL(10,2)) AS c2, CAST(t.n AS DECIMAL(10,2)) AS cn, "
            "CAST(t.a AS DECIMAL(12,2)) AS ca FROM {T}"),
    Pitfall("decimal_multiply_overflow_raises", "SELECT t.id, t.d * t.d AS sq FROM {T}"),
    Pitfall("decimal_sums_and_casts_pushed",
            "SELECT t.g, sum(t.d) AS s, sum(t.n) AS sn, sum(t.d * t.n) AS p, sum(t.d * 2) AS d2, "
            "min(t.d + t.n) AS lo, max(t.n - t.d) AS hi, CAST(sum(t.d) AS DECIMAL(10,2)) AS c2, "
            "sum(CAST(t.n AS DECIMAL(10,2))) AS sc FROM {T} GROUP BY t.g"),
    Pitfall("decimal_literal_beyond_double",
            "SELECT t.id, t.a FROM {T} WHERE t.a > 2.99999999999999999 "
            "AND t.a < 7.00000000000000001 OR t.a IN (1.00000000000000001, 9)"),
    Pitfall("decimal_group",
            "SELECT t.g, sum(t.d) AS s, avg(t.n) AS a, sum(t.d) / count(*) AS m, "
            "count(*) AS n FROM {T} GROUP BY t.g"),
    Pitfall("decimal_vs_float_literals",
            "SELECT t.id, t.d, t.n FROM {T} WHERE t.d > 0.1 AND t.d < 1.5e0 "
            "OR t.n = 0.0123456789 OR t.d = 1.005 OR t.n >= 2.5 AND t.n < 100 OR t.r = 0.1 "
            "OR t.d = t.r"),
    Pitfall("decimal_cast_compare",
            "SELECT t.id FROM {T} WHERE CAST(t.d AS DECIMAL(10,2)) IN (1.01, 2.68, -2.68) "
            "OR CAST(t.n AS DECIMAL(10,2)) = 0.01 OR round(t.r, 2) = 0.13"),
    # -- timestamps with time zones ---------------------------------------------------------------
    Pitfall("ts_trunc_cast_extract",
            "SELECT t.id, date_trunc('month', t.ts) AS m, date_trunc('day', t.ts) AS d, "
            "CAST(t.ts AS DATE) AS cd, extract(hour FROM t.ts) AS h, "
            "date_trunc('month', t.day) AS dm FROM {T}"),
    Pitfall("ts_group_month",
            "SELECT date_trunc('month', t.ts) AS m, count(*) AS n, sum(t.d) AS s "
            "FROM {T} GROUP BY 1"),
    Pitfall("ts_literals_with_offsets",
            "SELECT t.id, t.ts FROM {T} WHERE t.ts >= TIMESTAMPTZ '2024-03-10 01:59:59-05' "
            "AND t.ts < '2024-03-31 03:00:00+02' OR t.ts = TIMESTAMPTZ '2024-11-03 01:30:00-05' "
            "OR t.ts BETWEEN '2024-10-27 02:30:00+02' AND '2024-10-27 02:30:00+01' "
            "OR t.ts = TIMESTAMP '2024-02-01 00:00:00' OR t.ts >= DATE '2024-12-31'"),
    Pitfall("ts_casts_pushed",
            "SELECT CAST(t.ts AS DATE) AS d, CAST(t.ts AS TIMESTAMP) AS naive, count(*) AS n "
            "FROM {T} WHERE t.ts >= TIMESTAMP '2024-03-10 03:00:00' "
            "OR t.ts < '2024-03-10 03:00:00 America/New_York' GROUP BY 1, 2"),
    Pitfall("ts_cast_date_and_hour_filters",
            "SELECT t.id FROM {T} WHERE CAST(t.ts AS DATE) = DATE '2024-02-29' "
            "OR CAST(t.ts AS DATE) = t.day OR extract(hour FROM t.ts) = 23"),
    Pitfall("ts_at_time_zone",
            "SELECT t.id, t.ts AT TIME ZONE 'America/New_York' AS ny, "
            "date_trunc('day', t.ts AT TIME ZONE 'Europe/Berlin') AS berlin_day, "
            "extract(hour FROM t.ts AT TIME ZONE 'America/New_York') AS ny_hour FROM {T}"),
    # -- strings ----------------------------------------------------------------------------------
    Pitfall("concat_null",
            "SELECT t.id, concat(t.s, t.s2) AS c, t.s || t.s2 AS p, "
            "concat_ws('-', t.s, t.s2, 'z') AS w, concat(t.a, t.s2) AS ca FROM {T}"),
    Pitfall("string_functions",
            "SELECT t.id, lower(t.s) AS lo, upper(t.s) AS up, length(t.s) AS len, "
            "substring(t.s, 0, 3) AS s0, substring(t.s, -2, 2) AS sn, substr(t.s, 2) AS s2, "
            "trim(t.s) AS tr, starts_with(t.s, 'a') AS sw FROM {T}"),
    Pitfall("like_ilike",
            "SELECT t.id, t.s FROM {T} WHERE t.s LIKE 'a_b' OR t.s ILIKE 'é%' "
            "OR t.s LIKE '%\\%%' ESCAPE '\\' OR t.s LIKE 'M%' OR t.s ILIKE 'ZOE' "
            "OR starts_with(t.s, '_')"),
    # -- text under collation -----------------------------------------------------------------
    Pitfall("text_less_than", "SELECT t.id, t.s FROM {T} WHERE t.s < 'M'"),
    Pitfall("text_between", "SELECT t.id, t.s FROM {T} WHERE t.s BETWEEN 'a' AND 'n'"),
    Pitfall("text_order_limit",
            "SELECT t.s FROM {T} WHERE t.s IS NOT NULL ORDER BY t.s DESC LIMIT 9",
            ordered=True),
    Pitfall("text_group_by",
            "SELECT t.s, count(*) AS n, count(DISTINCT t.g) AS g, sum(t.a) AS a FROM {T} "
            "GROUP BY t.s"),
    Pitfall("text_min_max_group",
            "SELECT t.g, min(t.s) AS lo, max(t.s) AS hi, count(DISTINCT t.s) AS n FROM {T} "
            "GROUP BY t.g ORDER BY t.g NULLS FIRST", ordered=True),
    Pitfall("text_set_operation_order_by_position",
            "SELECT t.s FROM {T} UNION SELECT g FROM {O} ORDER BY 1 LIMIT 8", ordered=True),
    # -- aggregates and windows ---------------------------------------------------------------
    Pitfall("count_distinct_and_filter",
            "SELECT count(DISTINCT t.g) AS g, count(DISTINCT t.a) AS a, "
            "count(*) FILTER (WHERE t.flag) AS f, sum(t.d) FILTER (WHERE t.a > 0) AS sp, "
            "count(t.s) FILTER (WHERE t.s <> '') AS ns, avg(t.n) FILTER (WHERE NOT t.flag) AS an "
            "FROM {T}"),
    Pitfall("rollup",
            "SELECT t.g, t.flag, count(*) AS n, sum(t.d) AS s, grouping(t.g, t.flag) AS gi "
            "FROM {T} GROUP BY ROLLUP (t.g, t.flag)"),
    Pitfall("grouping_sets",
            "SELECT t.g, t.flag, count(*) AS n, max(t.ts) AS last FROM {T} "
            "GROUP BY GROUPING SETS ((t.g), (t.flag), ())"),
    Pitfall("window_frames",
            "SELECT t.id, sum(t.d) OVER (ORDER BY t.id ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING) "
            "AS w, sum(t.a) OVER (PARTITION BY t.flag ORDER BY t.id ROWS BETWEEN UNBOUNDED "
            "PRECEDING AND CURRENT ROW) AS run, count(t.n) OVER (ORDER BY t.id ROWS BETWEEN "
            "1 FOLLOWING AND 3 FOLLOWING) AS ahead, min(t.d) OVER (PARTITION BY t.g) AS gmin "
            "FROM {T}"),
    Pitfall("lag_lead_defaults",
            "SELECT t.id, lag(t.a, 1, -1) OVER (ORDER BY t.id) AS la, "
            "lead(t.d, 2, 0) OVER (PARTITION BY t.flag ORDER BY t.id) AS le, "
            "lag(t.s) OVER (ORDER BY t.id) AS ls, "
            "lead(t.day, 1, DATE '2000-01-01') OVER (ORDER BY t.id) AS ld FROM {T}"),
    Pitfall("ntile_percent_rank",
            "SELECT t.id, ntile(4) OVER (ORDER BY t.id) AS nt, "
            "percent_rank() OVER (ORDER BY t.a) AS pr, "
            "percent_rank() OVER (PARTITION BY t.flag ORDER BY t.d DESC) AS prd, "
            "cume_dist() OVER (ORDER BY t.n NULLS FIRST) AS cd FROM {T}"),
    # -- three-valued logic ---------------------------------------------------------------------
    Pitfall("not_in_null_list",
            "SELECT t.id, t.a NOT IN (1, 7, NULL) AS ni, t.a IN (1, NULL) AS i FROM {T} "
            "WHERE t.a NOT IN (1, 7, -7)"),
    Pitfall("not_in_subquery_with_null",
            "SELECT t.id FROM {T} WHERE t.a NOT IN (SELECT b FROM {O} WHERE b > 2 OR b IS NULL) "
            "OR t.b NOT IN (SELECT a FROM {O} WHERE a IS NOT NULL)"),
    Pitfall("case_without_else_coalesce_mixed",
            "SELECT t.id, CASE WHEN t.a > 0 THEN 'pos' WHEN t.a < 0 THEN 'neg' END AS sign, "
            "CASE t.flag WHEN true THEN t.d END AS fd, COALESCE(t.a, t.d) AS ad, "
            "COALESCE(t.d, t.r) AS dr, COALESCE(t.a, t.n, 0) AS an, COALESCE(t.day, t.ts) AS dt, "
            "COALESCE(t.a, 2.5) AS a25, COALESCE(t.s, t.g, '?') AS sg FROM {T}"),
    Pitfall("is_distinct_from",
            "SELECT t.id, t.a IS DISTINCT FROM t.b AS dist, t.s IS NOT DISTINCT FROM t.s2 AS same, "
            "t.flag IS DISTINCT FROM true AS nt FROM {T} WHERE t.a IS DISTINCT FROM 7"),
    Pitfall("boolean_logic",
            "SELECT t.id, t.flag AND t.a > 0 AS f_and, t.flag OR t.a > 0 AS f_or, "
            "NOT t.flag AS f_not, (t.a > 0) = t.flag AS f_eq FROM {T} "
            "WHERE NOT (t.flag AND t.a < 0)"),
    # -- set operations with NULLs and duplicates ---------------------------------------------
    Pitfall("union_distinct", "SELECT t.a, t.flag FROM {T} UNION SELECT b, flag FROM {O}"),
    Pitfall("union_all",
            "SELECT t.a AS v FROM {T} UNION ALL SELECT b FROM {O} WHERE b IS NULL OR b < 0"),
    Pitfall("intersect", "SELECT t.a FROM {T} INTERSECT SELECT b FROM {O}"),
    Pitfall("except", "SELECT t.g FROM {T} EXCEPT SELECT s FROM {O}"),
    Pitfall("intersect_all_except_all",
            "(SELECT t.flag FROM {T} INTERSECT ALL SELECT flag FROM {O} WHERE id > 20) "
            "UNION ALL (SELECT t.b FROM {T} EXCEPT ALL SELECT a FROM {O})"),
    # -- named parameters with types ----------------------------------------------------------
    Pitfall("params_each_type",
            "SELECT t.id FROM {T} WHERE t.s = :s OR t.a = :i OR t.d = :dec OR t.day = :day "
            "OR t.ts = :ts",
            params={"s": "Zoë", "i": -7, "dec": Decimal("2.675"), "day": dt.date(2024, 2, 29),
                    "ts": dt.datetime(2024, 3, 10, 7, 0, tzinfo=dt.UTC)}),
    Pitfall("params_as_text",  # as the CLI passes them
            "SELECT t.id FROM {T} WHERE t.a = :i OR t.d = :dec OR t.day = :day OR t.ts = :ts",
            params={"i": "-7", "dec": "2.675", "day": "2024-02-29",
                    "ts": "2024-03-10 03:00:00-04"}),
    Pitfall("params_in_select",
            "SELECT t.id, t.d * :dec AS x, t.a + :i AS y, :s AS z FROM {T} WHERE t.id <= :i",
            params={"s": "it's", "i": 9, "dec": Decimal("-0.5")}),
    Pitfall("params_decimal_vs_integer_column",
            "SELECT t.id, t.a FROM {T} WHERE t.a > :lo AND t.a <= :hi",
            params={"lo": Decimal("2.5"), "hi": Decimal("7.5")}),
    Pitfall("params_float_vs_integer_column",
            "SELECT t.id, t.a FROM {T} WHERE t.a > :f", params={"f": 2.9}),
    Pitfall("params_one_text_value_two_column_types",  # DuckDB: a > 3 (cast) OR n = 2.5
            "SELECT t.id FROM {T} WHERE t.a > :v OR t.n = :v", params={"v": "2.5"}),
    Pitfall("params_integer_vs_decimal_column",
            "SELECT t.id, t.d FROM {T} WHERE t.d >= :i", params={"i": 1}),
    Pitfall("params_timestamptz_vs_date_column",
            "SELECT t.id, t.day FROM {T} WHERE t.day = :ts OR t.day > :later",
            params={"ts": dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.UTC),
                    "later": dt.datetime(2024, 12, 30, 23, 0, tzinfo=dt.UTC)}),
    Pitfall("params_date_vs_timestamptz_column",
            "SELECT t.id, t.ts FROM {T} WHERE t.ts >= :since AND t.ts < :until",
            params={"since": dt.date(2024, 3, 10), "until": dt.date(2024, 3, 31)}),
    Pitfall("params_text_range",
            "SELECT t.id, t.s FROM {T} WHERE t.s >= :lo AND t.s < :hi",
            params={"lo": "Z", "hi": "b"}),
]


def _edge_queries() -> list[Q]:
    out = []
    for pitfall in PITFALLS:
        for source, (table, other) in EDGE.items():
            split_other = EDGE[other][0]
            forms = [
                (source, f"{table} t", table),
                (f"{source}+{other}",
                 f"{table} t" if "{O}" in pitfall.sql
                 else f"{table} t JOIN {split_other} k ON k.id = t.id",
                 split_other),
            ]
            for form, t_ref, o_ref in forms:
                out.append(Q(f"edge_{form}_{pitfall.name}",
                             pitfall.sql.replace("{T}", t_ref).replace("{O}", o_ref),
                             pitfall.ordered, pitfall.params, pitfall.marks.get(form, ())))
    return out


QUERIES += _edge_queries()


@pytest.mark.parametrize("q", [pytest.param(q, id=q.id, marks=q.marks) for q in QUERIES])
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
    assert len(ids) >= 130


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


def test_plan_set_operation_of_unlike_types_is_not_sent_to_postgres(billing):
    # DuckDB unites BOOLEAN and INTEGER; PostgreSQL refuses to ("UNION types boolean and
    # integer cannot be matched").
    plan = billing.ws.explain(
        "SELECT flag FROM pg.public.edge_cases UNION ALL SELECT a FROM pg.public.edge_cases"
    )
    assert plan.residual is not None
    assert any("different column types" in note for note in plan.notes)
    like = billing.ws.explain(
        "SELECT a FROM pg.public.edge_cases UNION SELECT b FROM pg.public.edge_cases"
    )
    assert like.residual is None


def test_plan_sqlite_takes_integer_literals_only(billing):
    # SQLite reads 2.99999999999999999 as the REAL 3.0: "a > 2.99999999999999999" would drop 3.
    plan = billing.ws.explain(
        "SELECT id FROM lite.main.edge_cases WHERE a > 2.99999999999999999 AND b = 3"
    )
    (frag,) = plan.fragments
    assert '"b" = 3' in frag.sql and "2.99" not in frag.sql
    assert "REAL" in " ".join(frag.kept)


def test_postgres_database_sorts_text_linguistically(billing):
    """The collation differentials mean something only if PostgreSQL does not sort bytewise."""
    import adbc_driver_postgresql.dbapi as pg

    with pg.connect(billing.pg_uri, autocommit=True) as con, con.cursor() as cur:
        cur.execute("SELECT 'a' < 'B', 'Zoë' < 'zulu'")
        assert cur.fetchone() == (True, True)



# -- dynamic filters: the join keys of one source restrict another source's scan ----------------



def test_dynamic_filter_text_key_range_keeps_duckdb_order(billing):
    sql = (
        "SELECT e.id, t.s FROM pg.public.events e JOIN lite.main.edge_cases t ON e.meter = t.s "
        "WHERE t.id > 0"
    )
    billing.ws.settings.set("dynamic_filter_max_keys", 1)  # force the key range
    try:
        got = billing.ws.query(sql)
    finally:
        billing.ws.settings.set("dynamic_filter_max_keys", None)
    assert_same_rows(got.table, reference(billing.ref, sql, {}), ordered=False)


def test_dynamic_filter_keys_wider_than_the_probe_column(pg_cluster, pg_database, tmp_path):
    import sqlite3

    import meterql

    db = pg_database(
        "dynkeys",
        "CREATE TABLE ev (id int, cid int); "
        "INSERT INTO ev SELECT g, g % 50 FROM generate_series(1, 5000) AS g; ANALYZE ev;",
    )
    path = tmp_path / "c.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE c (id INTEGER, k TEXT)")
    con.executemany("INSERT INTO c VALUES (?, ?)", [(1, "a"), (2, "b"), (3_000_000_000, "big")])
    con.commit()
    con.close()
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db))
        ws.sources.add("lite", f"sqlite://{path}")
        result = ws.query(
            "SELECT count(*) AS n FROM pg.public.ev e JOIN lite.main.c c ON c.id = e.cid"
        )
    assert result.rows() == [(200,)]
