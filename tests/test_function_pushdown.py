"""Functions sent to PostgreSQL: each query is sent whole (the plan says so) and gives DuckDB's
rows in DuckDB's types; what PostgreSQL computes otherwise stays local with its reason.

The data is the billing dataset (tests/support/dataset.py): instants on month ends and on the
US and EU daylight-saving changes, NULLs everywhere, non-ASCII text, notes holding ``%``, ``_``
and a backslash, integer pairs with zero and NULL divisors.
"""

from __future__ import annotations

import duckdb
import pytest

from meterql.errors import MeterqlError
from tests.support.compare import assert_same_rows, reference

pytestmark = pytest.mark.postgres

T = "pg.public.edge_cases t"
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata")

#: (id, SQL): each is sent whole to PostgreSQL.
PUSHED = [
    # -- date_trunc over AT TIME ZONE / timezone(), the monthly billing grouping -------------
    *[(f"trunc_month_in_{zone.split('/')[1].lower()}",
       f"SELECT e.customer_id, date_trunc('month', e.ts AT TIME ZONE '{zone}') AS m, "
       "sum(e.quantity) AS q, count(*) AS n FROM pg.public.events e GROUP BY 1, 2")
      for zone in ZONES],
    *[(f"trunc_units_in_{zone.split('/')[1].lower()}",
       f"SELECT t.id, date_trunc('day', t.ts AT TIME ZONE '{zone}') AS d, "
       f"date_trunc('hour', timezone('{zone}', t.ts)) AS h, "
       f"date_trunc('week', t.ts AT TIME ZONE '{zone}') AS w, "
       f"t.ts AT TIME ZONE '{zone}' AS wall FROM {T}")
      for zone in ZONES],
    ("trunc_units_timestamptz",
     "SELECT t.id, date_trunc('second', t.ts) AS s, date_trunc('minute', t.ts) AS mi, "
     "date_trunc('hour', t.ts) AS h, date_trunc('day', t.ts) AS d, "
     "date_trunc('week', t.ts) AS w, date_trunc('month', t.ts) AS m, "
     "date_trunc('quarter', t.ts) AS q, date_trunc('year', t.ts) AS y FROM " + T),
    ("trunc_date_and_naive",
     "SELECT t.id, date_trunc('month', t.day) AS dm, date_trunc('week', t.day) AS dw, "
     "date_trunc('quarter', t.day) AS dq FROM " + T),
    ("trunc_naive_timestamp",
     "SELECT code, date_trunc('day', updated_at) AS d, date_trunc('month', updated_at) AS m "
     "FROM pg.public.plans"),
    ("trunc_in_where_and_group",
     "SELECT date_trunc('month', e.ts AT TIME ZONE 'America/New_York') AS m, count(*) AS n "
     "FROM pg.public.events e "
     "WHERE date_trunc('day', e.ts) >= TIMESTAMPTZ '2024-03-10 00:00:00+00' "
     "GROUP BY 1 ORDER BY 1"),
    # -- extract / date_part -----------------------------------------------------------------
    ("extract_fields_timestamptz",
     "SELECT t.id, extract(year FROM t.ts) AS y, extract(isoyear FROM t.ts) AS iy, "
     "extract(quarter FROM t.ts) AS q, extract(month FROM t.ts) AS mo, "
     "extract(week FROM t.ts) AS w, extract(day FROM t.ts) AS d, extract(doy FROM t.ts) AS doy, "
     "extract(dow FROM t.ts) AS dow, extract(isodow FROM t.ts) AS idow, "
     "extract(hour FROM t.ts) AS h, extract(minute FROM t.ts) AS mi, "
     "extract(second FROM t.ts) AS s, extract(millisecond FROM t.ts) AS ms, "
     "extract(microseconds FROM t.ts) AS us, extract(epoch FROM t.ts) AS ep FROM " + T),
    ("extract_in_zones",
     "SELECT t.id, "
     + ", ".join(f"extract(hour FROM t.ts AT TIME ZONE '{z}') AS h{i}, "
                 f"date_part('dow', t.ts AT TIME ZONE '{z}') AS d{i}, "
                 f"date_part('day', timezone('{z}', t.ts)) AS dd{i}"
                 for i, z in enumerate(ZONES))
     + " FROM " + T),
    ("date_part_fields",
     "SELECT t.id, date_part('year', t.ts) AS y, date_part('month', t.day) AS m, "
     "date_part('isodow', t.day) AS idow, date_part('week', t.day) AS w, "
     "date_part('epoch', t.ts) AS ep, date_part('epoch', t.day) AS dep, "
     "date_part('second', t.ts) AS s FROM " + T),
    ("extract_filter_and_group",
     "SELECT extract(isodow FROM e.ts AT TIME ZONE 'Europe/Berlin') AS dow, count(*) AS n, "
     "sum(e.quantity) AS q FROM pg.public.events e "
     "WHERE extract(hour FROM e.ts) BETWEEN 8 AND 17 GROUP BY 1"),
    # -- casts to DATE, interval arithmetic (month ends, DST) --------------------------------
    ("cast_to_date",
     "SELECT t.id, CAST(t.ts AS DATE) AS d, CAST(t.ts AT TIME ZONE 'Asia/Kolkata' AS DATE) AS k "
     "FROM " + T),
    ("interval_arithmetic",
     "SELECT t.id, t.ts + INTERVAL 1 MONTH AS m1, t.ts - INTERVAL 1 MONTH AS m0, "
     "t.ts + INTERVAL 1 DAY AS d1, t.ts - INTERVAL 3 HOUR AS h3, t.day + INTERVAL 1 MONTH AS dm, "
     "t.day - INTERVAL 1 YEAR AS dy, t.ts + INTERVAL 2 WEEK AS w2, "
     "(t.ts AT TIME ZONE 'America/New_York') + INTERVAL 1 DAY AS ny FROM " + T),
    ("interval_month_end_naive",
     "SELECT code, updated_at + INTERVAL 1 MONTH AS m, updated_at + INTERVAL 1 YEAR AS y, "
     "launched + INTERVAL 1 MONTH AS l FROM pg.public.plans"),
    ("interval_in_filter",
     "SELECT count(*) AS n FROM pg.public.events "
     "WHERE ts >= TIMESTAMPTZ '2024-03-01 00:00:00+00' - INTERVAL 1 DAY "
     "AND ts < TIMESTAMPTZ '2024-03-01 00:00:00+00' + INTERVAL 1 MONTH"),
    # -- coalesce, nullif, CASE, FILTER -------------------------------------------------------
    ("coalesce_nullif_case",
     "SELECT t.id, nullif(t.a, 7) AS na, nullif(t.s, '') AS ns, coalesce(nullif(t.b, 0), -1) AS b,"
     " CASE WHEN nullif(t.a, 0) IS NULL THEN 'none' WHEN t.a > 0 THEN 'pos' ELSE 'neg' END AS k "
     "FROM " + T),
    ("aggregate_filter",
     "SELECT t.g, count(*) FILTER (WHERE t.flag) AS f, sum(t.d) FILTER (WHERE t.a > 0) AS sp, "
     "count(t.s) FILTER (WHERE t.s <> '') AS ns, max(t.ts) FILTER (WHERE NOT t.flag) AS last "
     "FROM " + T + " GROUP BY t.g"),
    ("billing_filter_by_month",
     "SELECT e.customer_id, "
     "sum(e.quantity) FILTER (WHERE date_trunc('month', e.ts AT TIME ZONE 'Europe/Berlin') "
     "= TIMESTAMP '2024-03-01 00:00:00') AS march, "
     "sum(e.quantity) FILTER (WHERE e.meter = 'seats') AS seats FROM pg.public.events e "
     "GROUP BY 1"),
    # -- integer division ---------------------------------------------------------------------
    ("integer_division",
     "SELECT t.id, t.a / t.b AS q, 7 / 2 AS lit, -7 / 2 AS nlit, t.a / 3 AS a3 FROM " + T),
    ("integer_division_truncating",
     "SELECT t.id, t.a // t.b AS iq, t.a % t.b AS r, -t.b // 2 AS n, t.a // -3 * 2 AS m "
     "FROM " + T + " WHERE t.b <> 0"),
    ("integer_division_in_filter",
     "SELECT t.id FROM " + T + " WHERE t.a / t.b > 1.5 OR t.a // 4 = -2 OR t.a % 4 = -3"),
    ("integer_division_overflow_raises", "SELECT t.id, -t.a // 2 AS n FROM " + T),
    ("integer_division_by_zero_raises", "SELECT t.id, t.a // t.b AS n FROM " + T),
    ("integer_division_by_zero_aggregate",
     "SELECT sum(e.customer_id / 7) AS s, count(*) FILTER (WHERE e.id / 0 > 0) AS inf "
     "FROM pg.public.events e"),
    # -- text ---------------------------------------------------------------------------------
    ("substring_positive",
     "SELECT t.id, substring(t.s, 1, 3) AS a, substring(t.s, 2) AS b, substr(t.s, 3, 1) AS c, "
     "substring(t.s, 40, 2) AS far, substring(t.s, 2, 0) AS none FROM " + T),
    ("concat_and_pipe",
     "SELECT t.id, concat(t.s, t.s2) AS c, t.s || t.s2 AS p, concat_ws('-', t.s, t.s2, 'z') AS w,"
     " concat(t.a, '/', t.b, t.s2) AS ab, t.s || '|' AS bar FROM " + T),
    ("like_patterns",
     "SELECT e.id, e.note LIKE '%\\%' AS bs, e.note LIKE 'back\\slash' AS b2, "
     "e.note LIKE 'percent _ and %' AS pc, e.note LIKE '%\\_%' AS us, "
     "e.note LIKE '%!%%' ESCAPE '!' AS esc, e.note NOT LIKE '%e%' AS ne FROM pg.public.events e"),
    ("like_filter",
     "SELECT e.id, e.note FROM pg.public.events e WHERE e.note LIKE '%\\%' "
     "OR e.note LIKE 'percent \\% and _'"),
    ("like_text_edge",
     "SELECT t.id, t.s LIKE 'a_b' AS u, t.s LIKE 'a%b' AS p, t.s LIKE '_' AS one, "
     "t.s LIKE '%ö%' AS uml, t.s LIKE '東%' AS kanji, t.s LIKE t.s2 AS col FROM " + T),
]

#: (id, SQL, what the plan note says): each stays local and still gives DuckDB's rows.
KEPT = [
    ("lower", f"SELECT t.id, lower(t.s) AS l FROM {T}", "lower() folds the case"),
    ("upper", f"SELECT t.id, upper(t.s) AS u FROM {T}", "upper() folds the case"),
    ("ilike", f"SELECT t.id FROM {T} WHERE t.s ILIKE 'é%' OR t.s ILIKE 'ZOE'",
     "ILIKE folds the case"),
    ("substring_zero_start", f"SELECT t.id, substring(t.s, 0, 3) AS s FROM {T}",
     "DuckDB counts a negative start from the end"),
    ("substring_negative_start", f"SELECT t.id, substring(t.s, -2, 2) AS s FROM {T}",
     "DuckDB counts a negative start from the end"),
    ("naive_at_time_zone",
     "SELECT code, updated_at AT TIME ZONE 'Europe/Berlin' AS i FROM pg.public.plans",
     "daylight-saving gap or overlap"),
    ("zone_abbreviation", f"SELECT t.id, t.ts AT TIME ZONE 'EST' AS e FROM {T}",
     "literal IANA zone name"),
    ("decimal_division", f"SELECT t.id, t.d / 2 AS h FROM {T}",
     "DuckDB divides in DOUBLE"),
    ("extract_hour_of_date", f"SELECT t.id, extract(hour FROM t.day) AS h FROM {T}",
     "extract of 'hour' of a DATE value"),
    ("trunc_millennium", f"SELECT t.id, date_trunc('millennium', t.ts) AS m FROM {T}",
     "date_trunc to 'millennium'"),
    ("interval_text", f"SELECT t.id, t.ts + INTERVAL '1 month 2 days' AS x FROM {T}",
     "whole number of one unit"),
    ("concat_decimal", f"SELECT t.id, concat(t.n, 'x') AS c FROM {T}",
     "concat of a DECIMAL value"),
    ("like_odd_escape", f"SELECT t.id FROM {T} WHERE t.s LIKE 'a!b' ESCAPE '!'",
     "escapes no wildcard"),
]


def _check_same(billing, sql: str) -> None:
    try:
        want = reference(billing.ref, sql, {})
    except duckdb.Error as exc:  # the same error through meterql
        with pytest.raises(MeterqlError):
            billing.ws.query(sql)
        assert "zero" in str(exc).lower() or "overflow" in str(exc).lower(), exc
        return
    got = billing.ws.query(sql)
    assert not got.truncated
    assert_same_rows(got.table, want, ordered=" ORDER BY " in sql)
    assert got.table.schema.types == want.schema.types


@pytest.mark.parametrize(("sql"), [pytest.param(sql, id=i) for i, sql in PUSHED])
def test_pushed_whole_with_duckdb_answer(billing, sql):
    plan = billing.ws.explain(sql)
    assert plan.residual is None, plan.notes
    assert [f.source for f in plan.fragments] == ["pg"]
    _check_same(billing, sql)


@pytest.mark.parametrize(("sql", "reason"),
                         [pytest.param(sql, reason, id=i) for i, sql, reason in KEPT])
def test_kept_local_with_reason(billing, sql, reason):
    plan = billing.ws.explain(sql)
    assert plan.residual is not None
    assert any(reason in note for note in plan.notes), plan.notes
    _check_same(billing, sql)


def test_the_sql_postgres_receives(billing):
    plan = billing.ws.explain(
        "SELECT extract(second FROM t.ts) AS s, date_part('epoch', t.ts) AS e, t.a / t.b AS q, "
        "t.a // t.b AS iq FROM pg.public.edge_cases t WHERE t.s LIKE 'a\\%'")
    (frag,) = plan.fragments
    assert "CAST(FLOOR(EXTRACT(SECOND FROM t.ts)) AS BIGINT)" in frag.sql
    assert "CAST(EXTRACT(EPOCH FROM t.ts) AS DOUBLE PRECISION)" in frag.sql
    assert "CAST('Infinity' AS DOUBLE PRECISION)" in frag.sql
    assert "(t.a / t.b)" in frag.sql
    assert "LIKE 'a\\%' ESCAPE ''" in frag.sql


@pytest.mark.parametrize("zone", ZONES)
def test_session_time_zone_does_not_change_what_is_computed(billing, zone):
    """A session's zone only shows instants in it: DuckDB computes a query that reads tables
    in UTC, as PostgreSQL does, so the query pushed whole gives the same instants."""
    sql = ("SELECT date_trunc('day', e.ts) AS d, extract(hour FROM e.ts) AS h, count(*) AS n "
           "FROM pg.public.events e GROUP BY 1, 2")
    got = billing.ws.query(sql, tz=zone)
    assert got.plan.residual is None
    assert got.table.schema.field("d").type.tz == zone
    assert_same_rows(got.table, reference(billing.ref, sql, {}), ordered=False)


def test_functions_in_scan_filters(billing):
    """Across sources, filters with these functions go into PostgreSQL's scan."""
    sql = ("SELECT e.id, c.name FROM pg.public.events e JOIN lite.main.customers c "
           "ON c.id = e.customer_id WHERE date_trunc('month', e.ts) = TIMESTAMPTZ "
           "'2024-02-01 00:00:00+00' AND e.note LIKE '%\\%' "
           "AND extract(dow FROM e.ts AT TIME ZONE 'America/New_York') <> 0")
    plan = billing.ws.explain(sql)
    pg = next(f for f in plan.fragments if f.source == "pg")
    pushed = " ".join(pg.pushed)
    assert "DATE_TRUNC" in pushed.upper() and "LIKE" in pushed and "extract" in pushed.lower()
    assert "ESCAPE ''" in pg.sql
    assert "CAST(EXTRACT(DOW FROM" in pg.sql
    _check_same(billing, sql)


def test_case_folding_filter_stays_in_duckdb(billing):
    sql = ("SELECT e.id, c.name FROM pg.public.events e JOIN lite.main.customers c "
           "ON c.id = e.customer_id WHERE lower(e.meter) = 'seats'")
    plan = billing.ws.explain(sql)
    pg = next(f for f in plan.fragments if f.source == "pg")
    assert "folds the case" in " ".join(pg.kept)
    assert "LOWER" not in pg.sql.upper()
    _check_same(billing, sql)


def test_json_field_access_stays_local(pg_cluster, pg_database, tmp_path):
    import meterql

    db = pg_database(
        "jsonfields",
        "CREATE TABLE ev (id int, props jsonb); INSERT INTO ev VALUES "
        """(1, '{"plan": "pro", "n": 1.50, "nested": {"a": [1, 2]}}'), """
        """(2, '{"plan": null, "n": 100}'), (3, NULL), (4, '{"plan": "Zoë"}');""")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db))
        sql = ("SELECT id, props->>'plan' AS plan, props->>'n' AS n, "
               "json_extract_string(props, '$.nested') AS nested FROM pg.public.ev ORDER BY id")
        result = ws.query(sql)
    assert result.plan.residual is not None
    assert any("DuckDB prints numbers and nested values" in n for n in result.plan.notes)
    assert result.rows() == [(1, "pro", "1.5", '{"a":[1,2]}'), (2, None, "100", None),
                             (3, None, None, None), (4, "Zoë", None, None)]
