"""Dynamic filtering: a small side's join keys restrict the big side's scan at its source."""

from __future__ import annotations

import sqlite3

import duckdb
import pytest

import meterql

EVENTS = """
CREATE TABLE events (id bigint PRIMARY KEY, customer_id int, account text, qty numeric(12,3));
INSERT INTO events
SELECT g, (g % 200) + 1, 'acct-' || ((g % 200) + 1), (g % 97) / 10.0
FROM generate_series(1, 20000) AS g;
INSERT INTO events VALUES (20001, NULL, NULL, 1), (20002, 5, 'o''brien "q"', 2);
ANALYZE events;
"""


@pytest.fixture(scope="module")
def setup(pg_cluster, tmp_path_factory):
    import itertools

    name = f"dynf_{next(itertools.count())}"
    pg_cluster.create_database(name)
    pg_cluster.run_sql(EVENTS, dbname=name)
    folder = tmp_path_factory.mktemp("dynf")
    lite = folder / "crm.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE customers (id INTEGER, account TEXT, plan TEXT)")
    rows = [(i, f"acct-{i}", "enterprise" if i % 10 == 0 else "starter") for i in range(1, 101)]
    rows.append((None, None, "enterprise"))
    rows.append((5000, 'o\'brien "q"', "enterprise"))
    con.executemany("INSERT INTO customers VALUES (?, ?, ?)", rows)
    con.commit()
    con.close()
    ref = duckdb.connect()
    ref.execute("SET TimeZone = 'UTC'")
    ref.execute("ATTACH ':memory:' AS pg")
    ref.execute("CREATE SCHEMA pg.public")
    ref.execute("ATTACH ':memory:' AS lite")
    ws = meterql.connect(folder / "home")
    ws.sources.add("pg", pg_cluster.uri(name))
    ws.sources.add("lite", f"sqlite://{lite}")
    # These aggregates over a join would be aggregated early (the big scan becomes a partial
    # aggregate, which takes no dynamic filter): dynamic filtering is tested on its own here.
    ws.settings.set("eager_aggregation", False)
    for table in ("pg.public.events", "lite.main.customers"):
        data = ws.query(f"SELECT * FROM {table}", max_rows=None).to_arrow()
        ref.register("data", data)
        ref.execute(f"CREATE TABLE {table} AS FROM data")
        ref.unregister("data")
    yield ws, ref
    ws.close()


def _same(ws, ref, sql):
    got = ws.query(sql, max_rows=None)
    expected = ref.execute(sql).fetchall()
    assert sorted(got.rows(), key=repr) == sorted(expected, key=repr)
    return got


ENTERPRISE = (
    "SELECT c.plan, count(*) AS n, sum(e.qty) AS qty FROM pg.public.events e "
    "JOIN lite.main.customers c ON c.id = e.customer_id WHERE c.plan = 'enterprise' "
    "GROUP BY ALL"
)


def test_keys_of_the_small_side_filter_the_big_scan(setup):
    ws, ref = setup
    plan = ws.explain(ENTERPRISE)
    events = next(f for f in plan.fragments if f.source == "pg")
    assert events.dynamic is not None and events.dynamic.build_column == "id"
    assert "IN (SELECT UNNEST(CAST($1 AS BIGINT[])))" in events.dynamic.keys_sql
    assert "dynamic filter: customer_id in the keys of" in str(plan)
    result = _same(ws, ref, ENTERPRISE)
    pulled = next(s for s in result.fragments if s.source == "pg")
    assert pulled.rows == 1000  # 10 enterprise customers with keys <= 200, 100 events each
    assert pulled.note == "dynamic filter: 11 keys from f2"


def test_past_max_keys_a_range_is_pushed(setup):
    ws, ref = setup
    ws.settings.set("dynamic_filter_max_keys", 5)
    try:
        result = _same(ws, ref, ENTERPRISE)
        pulled = next(s for s in result.fragments if s.source == "pg")
        assert pulled.note.startswith("dynamic filter: more than 5 keys")
        assert "range [10, 5000]" in pulled.note
    finally:
        ws.settings.set("dynamic_filter_max_keys", None)


def test_text_keys_with_quotes(setup):
    ws, ref = setup
    sql = (
        "SELECT e.account, count(*) AS n FROM pg.public.events e JOIN lite.main.customers c "
        "ON c.account = e.account WHERE c.plan = 'enterprise' GROUP BY ALL"
    )
    result = _same(ws, ref, sql)
    assert ('o\'brien "q"', 1) in result.rows()
    assert any(s.note and "keys" in s.note for s in result.fragments)


def test_preserved_side_of_a_left_join_is_not_filtered(setup):
    ws, ref = setup
    sql = (
        "SELECT count(*) AS n, count(c.id) AS matched FROM pg.public.events e "
        "LEFT JOIN lite.main.customers c ON c.id = e.customer_id AND c.plan = 'enterprise'"
    )
    plan = ws.explain(sql)
    assert all(f.dynamic is None for f in plan.fragments)
    _same(ws, ref, sql)


def test_no_keys_means_no_rows(setup):
    ws, ref = setup
    sql = (
        "SELECT count(*) AS n FROM pg.public.events e JOIN lite.main.customers c "
        "ON c.id = e.customer_id WHERE c.plan = 'nobody'"
    )
    result = _same(ws, ref, sql)
    assert next(s for s in result.fragments if s.source == "pg").rows == 0


def test_setting_turns_it_off(setup):
    ws, ref = setup
    ws.settings.set("dynamic_filter", False)
    try:
        assert all(f.dynamic is None for f in ws.explain(ENTERPRISE).fragments)
        result = _same(ws, ref, ENTERPRISE)
        assert next(s for s in result.fragments if s.source == "pg").rows == 20002
    finally:
        ws.settings.set("dynamic_filter", None)


def test_explain_analyze_reports_the_keys(setup):
    ws, _ = setup
    text = "\n".join(ws.query("EXPLAIN ANALYZE " + ENTERPRISE).to_pylist()[i]["plan"]
                     for i in range(ws.query("EXPLAIN ANALYZE " + ENTERPRISE).num_rows))
    assert "dynamic filter: 11 keys" in text and "1,000 rows" in text
