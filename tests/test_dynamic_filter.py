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
    # aggregate, whose rows are groups): dynamic filtering of scans is tested on its own here.
    ws.settings.set("eager_aggregation", False)
    _copy_to_reference(ws, ref, ("pg.public.events", "lite.main.customers"))
    yield ws, ref
    ws.close()


def _copy_to_reference(ws, ref, tables) -> None:
    """Each table's rows as meterql reads them, under the same name in the reference DuckDB."""
    for table in tables:
        data = ws.query(f"SELECT * FROM {table}", max_rows=None).to_arrow()
        ref.register("data", data)
        ref.execute(f"CREATE TABLE {table} AS FROM data")
        ref.unregister("data")


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
    assert events.dynamic is not None and events.dynamic.keys[0].build_column == "id"
    assert "IN (SELECT UNNEST(CAST($1 AS BIGINT[])))" in events.dynamic.statement(["keys"])[0]
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


# -- choosing the key from statistics ------------------------------------------------------------

USAGE = """
CREATE TABLE usage_events (id bigint PRIMARY KEY, customer_id bigint, meter text,
                           quantity numeric(12,3));
INSERT INTO usage_events
SELECT g, CASE WHEN g % 997 = 0 THEN NULL ELSE (g % 2000) + 1 END,
       (ARRAY['api_calls', 'storage_gb', 'seats'])[(g % 3) + 1], (g % 89) / 8.0
FROM generate_series(1, 60000) AS g;
CREATE TABLE plans (id int PRIMARY KEY, name text);
INSERT INTO plans VALUES (1, 'starter'), (2, 'team'), (3, 'business'), (4, 'enterprise');
ANALYZE usage_events; ANALYZE plans;
"""

FIVE_TABLES = (
    "SELECT r.name AS region, p.name AS plan, m.unit, count(*) AS n, sum(u.quantity) AS qty "
    "FROM pg.public.usage_events u "
    "JOIN lite.main.accounts a ON a.id = u.customer_id "
    "JOIN dk.main.meters m ON m.meter = u.meter "
    "JOIN pg.public.plans p ON p.id = a.plan_id "
    "JOIN dk.main.regions r ON r.code = a.region "
    "WHERE a.segment = 'enterprise' GROUP BY ALL"
)


@pytest.fixture(scope="module")
def five(pg_cluster, tmp_path_factory):
    """Events in PostgreSQL (2,000 customers, 3 meters), accounts in SQLite (100 of them
    enterprise), meters and regions in a DuckDB file; every source's statistics as read when
    it is added."""
    pg_cluster.create_database("dynf_five")
    pg_cluster.run_sql(USAGE, dbname="dynf_five")
    folder = tmp_path_factory.mktemp("dynf_five")
    lite = folder / "crm.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, segment TEXT, plan_id INTEGER, "
                "region TEXT)")
    con.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?)", [
        (i, "enterprise" if i % 20 == 0 else f"segment-{i % 19}", i % 4 + 1, f"r{i % 5}")
        for i in range(1, 2001)])
    con.execute("CREATE INDEX accounts_segment ON accounts (segment)")
    con.execute("ANALYZE")
    con.commit()
    con.close()
    lake = duckdb.connect(str(folder / "lake.duckdb"))
    lake.execute("CREATE TABLE meters AS SELECT * FROM (VALUES ('api_calls', 'call'), "
                 "('storage_gb', 'GB'), ('seats', 'seat')) AS t(meter, unit)")
    lake.execute("CREATE TABLE regions AS SELECT 'r' || i AS code, 'Region ' || i AS name "
                 "FROM range(5) AS t(i)")
    lake.close()
    ws = meterql.connect(folder / "home")
    ws.sources.add("pg", pg_cluster.uri("dynf_five"))
    ws.sources.add("lite", f"sqlite://{lite}")
    ws.sources.add("dk", f"duckdb://{folder / 'lake.duckdb'}")
    ref = duckdb.connect()
    for db, schema in (("pg", "public"), ("lite", "main"), ("dk", "main")):
        ref.execute(f"ATTACH ':memory:' AS {db}")
        if schema != "main":
            ref.execute(f"CREATE SCHEMA {db}.{schema}")
    _copy_to_reference(ws, ref, ("pg.public.usage_events", "pg.public.plans",
                                 "lite.main.accounts", "dk.main.meters", "dk.main.regions"))
    yield ws, ref
    ws.close()


def test_five_tables_filter_the_events_on_the_selected_customers(five):
    ws, ref = five
    plan = ws.explain(FIVE_TABLES)
    events = next(f for f in plan.fragments if f.table == "pg.public.usage_events")
    assert events.dynamic is not None
    assert [k.probe_column for k in events.dynamic.keys] == ["customer_id"]
    accounts = next(f for f in plan.fragments if f.table == "lite.main.accounts")
    assert events.dynamic.keys[0].build == accounts.id
    text = str(plan)
    assert "distinct customer_id values keep" in text
    assert "no dynamic filter: meter from" in text and "prunes too little" in text
    result = _same(ws, ref, FIVE_TABLES)
    pulled = next(s for s in result.fragments if s.fragment == events.id)
    # 100 enterprise accounts (ids 20, 40, ... 2000), 30 events each but the NULL customers
    expected = ref.execute(
        "SELECT count(*) FROM pg.public.usage_events WHERE customer_id % 20 = 0").fetchone()[0]
    assert pulled.rows == expected < 3100
    assert pulled.note == "dynamic filter: 100 keys from " + accounts.id


def test_several_keys_when_each_prunes(five):
    ws, ref = five
    sql = (
        "SELECT a.region, count(*) AS n, sum(u.quantity) AS qty FROM pg.public.usage_events u "
        "JOIN lite.main.accounts a ON a.id = u.customer_id "
        "JOIN dk.main.meters m ON m.meter = u.meter "
        "WHERE a.segment = 'enterprise' AND m.unit = 'GB' GROUP BY ALL"
    )
    plan = ws.explain(sql)
    events = next(f for f in plan.fragments if f.table == "pg.public.usage_events")
    assert events.dynamic is not None
    assert [k.probe_column for k in events.dynamic.keys] == ["customer_id", "meter"], str(plan)
    assert "IN (SELECT UNNEST(CAST($2 AS TEXT[])))" in events.dynamic.statement(
        ["keys", "keys"])[0]
    result = _same(ws, ref, sql)
    pulled = next(s for s in result.fragments if s.fragment == events.id)
    expected = ref.execute(
        "SELECT count(*) FROM pg.public.usage_events WHERE customer_id % 20 = 0 "
        "AND meter = 'storage_gb'").fetchone()[0]
    assert pulled.rows == expected
    assert pulled.note.startswith("dynamic filter: 100 keys from")
    assert pulled.note.endswith("; 1 keys from " + next(
        f.id for f in plan.fragments if f.table == "dk.main.meters"))


def test_a_partial_aggregate_takes_the_keys_before_it_groups(five):
    """Eager aggregation groups the events at PostgreSQL; the selected accounts' ids still cut
    the rows it groups: one group per enterprise customer travels."""
    ws, ref = five
    sql = ("SELECT a.region, count(*) AS n, sum(u.quantity) AS qty "
           "FROM pg.public.usage_events u JOIN lite.main.accounts a ON a.id = u.customer_id "
           "WHERE a.segment = 'enterprise' GROUP BY ALL")
    plan = ws.explain(sql)
    [partial] = [f for f in plan.fragments if f.what == "partial aggregate of "
                 "pg.public.usage_events"]
    assert partial.dynamic is not None
    assert [k.probe_column for k in partial.dynamic.keys] == ["customer_id"]
    inner = partial.dynamic.statement(["keys"])[0]
    assert '"customer_id" IN (SELECT UNNEST(CAST($1 AS BIGINT[]))) GROUP BY' in inner
    result = _same(ws, ref, sql)
    pulled = next(s for s in result.fragments if s.fragment == partial.id)
    assert pulled.rows == 100  # the 100 enterprise customers' groups
    assert pulled.note.startswith("dynamic filter: 100 keys from")
