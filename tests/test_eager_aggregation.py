"""Eager aggregation (planner/aggregate_before_join.py) on the real PostgreSQL of the billing
dataset: each query gives DuckDB's rows with DuckDB's Arrow types, and the plan aggregated the
PostgreSQL side early exactly when that keeps the answer (else a note says why).

The workspace reads the billing database's ``pg`` and ``lite`` and holds a local upload
``local.uploads.prices`` (meter, tier, unit_price): two prices for some meters (a group joins
several rows), a NULL meter (it never matches the events' NULL meters), a meter no event has.
"""

from __future__ import annotations

import duckdb
import pytest

import meterql
from meterql.errors import MeterqlError
from tests.support.compare import assert_same_rows, reference
from tests.support.dataset import create_reference

pytestmark = pytest.mark.postgres

PRICES_CSV = (
    "meter,tier,unit_price\n"
    "api_calls,base,0.000400000\n"
    "api_calls,burst,0.000123456\n"
    "storage_gb,base,0.012500000\n"
    "seats,base,12.500000000\n"
    "seats,volume,123456789.123456789\n"
    "egress,base,-0.090000000\n"
    "東京,base,1.000000001\n"
    ",base,7.000000000\n"
    "unknown_meter,base,3.000000000\n"
)
MONTH = ("e.ts >= TIMESTAMPTZ '2024-02-01 00:00:00+00' "
         "AND e.ts < TIMESTAMPTZ '2024-03-01 00:00:00+00'")
JOIN_PRICES = "FROM pg.public.events AS e JOIN local.uploads.prices AS pr ON pr.meter = e.meter"


@pytest.fixture(scope="module")
def eager(billing, tmp_path_factory):
    """(workspace, reference): the billing sources plus the upload, and DuckDB over the same."""
    ws = meterql.connect(tmp_path_factory.mktemp("eager") / "home")
    ws.sources.add("pg", billing.pg_uri)
    ws.sources.add("lite", f"sqlite://{billing.sqlite_path}")
    ws.sources.add("dk", f"duckdb://{billing.duckdb_path}")
    ws.uploads.load(PRICES_CSV.encode(), "prices")
    types = {t.full_name: {c.name: c.type for c in t.columns} for t in ws.tables()}
    ref = create_reference(billing.data, types)
    local = ws.query("SELECT * FROM local.uploads.prices").table  # noqa: F841 - read by DuckDB
    ref.execute("ATTACH ':memory:' AS local")
    ref.execute("CREATE SCHEMA local.uploads")
    ref.execute("CREATE TABLE local.uploads.prices AS SELECT * FROM local")
    yield ws, ref
    ref.close()
    ws.close()


def _same_as_duckdb(eager, sql: str, ordered: bool = False):
    ws, ref = eager
    try:
        want = reference(ref, sql, {})
    except duckdb.Error as exc:  # (an overflow): meterql must fail too, not answer
        assert "overflow" in str(exc).lower()
        with pytest.raises(MeterqlError, match="(?i)overflow"):
            ws.query(sql, max_rows=None)
        return ws.explain(sql)
    got = ws.query(sql, max_rows=None)
    assert_same_rows(got.table, want, ordered)
    assert got.table.schema.types == want.schema.types
    assert got.table.schema.names == want.schema.names
    return got.plan


def _aggregated(plan) -> list:
    return [f for f in plan.fragments if getattr(f, "aggregate", None) is not None]


def _note(plan) -> str:
    return " ".join(n for n in plan.notes if n.startswith("no eager aggregation"))


# -- queries aggregated early --------------------------------------------------------------------
AGGREGATED = {
    "price_list": (
        f"SELECT e.meter, sum(e.quantity) AS qty, sum(e.quantity * pr.unit_price) AS amount "
        f"{JOIN_PRICES} WHERE {MONTH} GROUP BY 1"),
    "counts_with_nulls": (
        f"SELECT e.meter, count(*) AS n, count(e.note) AS notes, count(e.quantity) AS nq "
        f"{JOIN_PRICES} GROUP BY e.meter"),
    "min_max_exact_types": (
        f"SELECT e.meter, min(e.quantity) AS lo, max(e.quantity) AS hi, min(e.ts) AS first, "
        f"max(e.id) AS last_id, min(e.customer_id) AS c {JOIN_PRICES} GROUP BY e.meter"),
    "integer_sums_are_hugeint": (
        f"SELECT e.meter, sum(e.customer_id) AS s, sum(e.id) AS ids {JOIN_PRICES} "
        f"GROUP BY e.meter"),
    "group_by_the_small_side": (
        f"SELECT pr.tier, sum(e.quantity) AS q, count(*) AS n, "
        f"sum(pr.unit_price * e.quantity) AS amount, max(pr.unit_price) AS top "
        f"{JOIN_PRICES} GROUP BY pr.tier"),
    "having_order_limit": (
        f"SELECT e.meter, pr.tier, sum(e.quantity) AS q, count(*) AS n {JOIN_PRICES} "
        f"WHERE {MONTH} GROUP BY 1, 2 HAVING count(*) > 5 AND sum(e.quantity) > 100 "
        f"ORDER BY q DESC, e.meter, pr.tier LIMIT 4"),
    "left_join_big_side_preserved": (
        "SELECT e.meter, pr.tier, sum(e.quantity) AS q, count(*) AS n, max(pr.unit_price) AS p "
        "FROM pg.public.events AS e LEFT JOIN local.uploads.prices AS pr ON pr.meter = e.meter "
        "GROUP BY ALL"),
    "no_group_by": (
        f"SELECT sum(e.quantity) AS q, count(*) AS n, min(e.ts) AS first {JOIN_PRICES}"),
    "no_group_by_no_rows": (
        f"SELECT sum(e.quantity) AS q, count(*) AS n, max(e.id) AS last_id {JOIN_PRICES} "
        "WHERE e.ts < TIMESTAMPTZ '1990-01-01 00:00:00+00'"),
    "postgres_with_sqlite": (
        "SELECT c.country, sum(e.quantity) AS q, count(*) AS n, "
        "sum(e.quantity * c.credit) AS credit_weighted "
        "FROM pg.public.events AS e JOIN lite.main.customers AS c ON c.id = e.customer_id "
        "WHERE c.credit < 1000000 GROUP BY c.country"),
    # A row's quantity * credit overflows DECIMAL(18, 8) in DuckDB: so must the finished sum.
    "product_overflow_raises": (
        "SELECT c.country, sum(e.quantity * c.credit) AS credit_weighted "
        "FROM pg.public.events AS e JOIN lite.main.customers AS c ON c.id = e.customer_id "
        "GROUP BY c.country"),
    "three_tables": (
        "SELECT p.name, pr.tier, sum(e.quantity) AS q, count(*) AS n, "
        "sum(e.quantity * p.monthly_fee) AS fees "
        "FROM pg.public.events AS e JOIN local.uploads.prices AS pr ON pr.meter = e.meter "
        "JOIN pg.public.plans AS p ON p.is_public GROUP BY 1, 2"),
}


@pytest.mark.parametrize("name", sorted(AGGREGATED))
def test_aggregated_early_with_duckdbs_answer(eager, name):
    sql = AGGREGATED[name]
    plan = _same_as_duckdb(eager, sql, ordered="ORDER BY" in sql)
    aggregated = _aggregated(plan)
    assert len(aggregated) == 1, str(plan)
    frag = aggregated[0]
    assert frag.source == "pg" and "GROUP BY" in frag.sql
    assert frag.aggregate.groups * 10 <= frag.aggregate.rows


def test_price_list_sends_groups_not_rows(eager):
    ws, _ = eager
    result = ws.query(AGGREGATED["price_list"])
    (frag,) = _aggregated(result.plan)
    stats = {s.fragment: s for s in result.fragments}
    assert stats[frag.id].rows <= 9  # (8 meters and NULL), against ~900 events of the month
    explain = str(result.plan)
    assert ("partial aggregate: group by meter; sum(quantity), min(quantity), max(quantity) "
            "(eager aggregation: ~9 groups from ~" in explain)
    assert "ts >=" in frag.sql  # the month is cut at the source, before grouping


# -- queries that must not be aggregated early ---------------------------------------------------
REFUSED = {
    "distinct": (f"SELECT e.meter, count(DISTINCT e.customer_id) AS n {JOIN_PRICES} GROUP BY 1",
                 "DISTINCT"),
    "avg": (f"SELECT e.meter, avg(e.quantity) AS a {JOIN_PRICES} GROUP BY 1",
            "extended precision"),
    "min_text": (f"SELECT e.meter, min(e.note) AS lo, max(e.note) AS hi {JOIN_PRICES} "
                 "GROUP BY 1", "collation"),
    "big_side_null_supplying": (
        "SELECT pr.meter, sum(e.quantity) AS q, count(*) AS n FROM local.uploads.prices AS pr "
        "LEFT JOIN pg.public.events AS e ON e.meter = pr.meter GROUP BY 1",
        "null-supplying"),
    "too_many_groups": (
        f"SELECT e.id, sum(e.quantity) AS q {JOIN_PRICES} GROUP BY 1", "too many groups"),
    "sum_of_small_side": (
        f"SELECT e.meter, sum(pr.unit_price) AS p {JOIN_PRICES} GROUP BY 1",
        "partial counts"),
    "filter_clause": (
        f"SELECT e.meter, count(*) FILTER (WHERE e.quantity > 10) AS n {JOIN_PRICES} GROUP BY 1",
        "FILTER"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_not_aggregated_early_with_a_reason(eager, name):
    sql, reason = REFUSED[name]
    plan = _same_as_duckdb(eager, sql)
    assert not _aggregated(plan)
    assert reason in _note(plan)


def test_setting_turns_it_off(eager):
    ws, _ = eager
    ws.settings.set("eager_aggregation", False)
    try:
        assert not _aggregated(ws.explain(AGGREGATED["price_list"]))
    finally:
        ws.settings.set("eager_aggregation", True)
    assert _aggregated(ws.explain(AGGREGATED["price_list"]))


def test_synced_source_is_read_locally(billing, tmp_path_factory):
    ws = meterql.connect(tmp_path_factory.mktemp("eager_sync") / "home")
    try:
        ws.sources.add("pg", billing.pg_uri, mode="sync")
        ws.uploads.load(PRICES_CSV.encode(), "prices")
        assert [r.error for r in ws.sync()] == [None]
        result = ws.query(AGGREGATED["price_list"])
        assert "pg.public.events" in result.plan.local_tables
        assert not result.plan.fragments and not _aggregated(result.plan)
        direct = meterql.connect(tmp_path_factory.mktemp("eager_direct") / "home")
        try:
            direct.sources.add("pg", billing.pg_uri)
            direct.uploads.load(PRICES_CSV.encode(), "prices")
            want = direct.query(AGGREGATED["price_list"])
            assert _aggregated(want.plan)
            assert_same_rows(result.table, want.table, ordered=False)
            assert result.table.schema.types == want.table.schema.types
        finally:
            direct.close()
    finally:
        ws.close()
