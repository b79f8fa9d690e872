"""Source statistics in the catalog, read from a real PostgreSQL, SQLite and DuckDB file: rows,
distinct counts, null fractions, histogram bounds as the column's values, indexes with their
columns in order; refreshed by ``source refresh`` and by each sync; kept across reopening."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import duckdb
import pytest

import meterql
from meterql.catalog import ColumnStats, IndexInfo, TableStats

EVENTS = """
CREATE TABLE events (id bigint PRIMARY KEY, customer_id int NOT NULL, meter text,
                     ts timestamptz NOT NULL, quantity numeric(12,3), note text);
CREATE INDEX events_customer_ts ON events (customer_id, ts);
CREATE INDEX events_lower_meter ON events (lower(meter));
CREATE INDEX events_partial ON events (quantity) WHERE quantity > 100;
INSERT INTO events
SELECT g, g % 10, 'm' || (g % 3), TIMESTAMPTZ '2026-01-01 00:00:00+00' + g * INTERVAL '1 minute',
       g / 4.0, CASE WHEN g % 4 = 0 THEN NULL ELSE 'n' END
FROM generate_series(1, 20000) AS g;
ANALYZE events;
"""


@pytest.fixture()
def pg_ws(pg_cluster, pg_database, tmp_path):
    db = pg_database("stats", EVENTS)
    ws = meterql.connect(tmp_path / "home")
    ws.sources.add("pg", pg_cluster.uri(db), mode="sync")
    yield ws, db
    ws.close()


def test_postgres_statistics_reflect_the_data(pg_ws):
    ws, _ = pg_ws
    stats = ws.catalog.statistics("pg.public.events")
    assert stats is not None and stats.rows == 20000
    customer = stats.column("customer_id")
    assert customer.distinct == pytest.approx(10, abs=0.5)
    assert customer.null_frac == 0
    assert sorted(v for v, _ in customer.common) == list(range(10))
    assert sum(f for _, f in customer.common) == pytest.approx(1.0, abs=0.01)
    assert stats.column("note").null_frac == pytest.approx(0.25, abs=0.02)
    ts = stats.column("ts")
    assert ts.distinct == pytest.approx(20000, rel=0.01)  # n_distinct -1 made absolute
    assert ts.min == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert ts.max == datetime(2026, 1, 14, 21, 20, tzinfo=UTC)
    assert len(ts.histogram) > 10 and list(ts.histogram) == sorted(ts.histogram)
    assert all(isinstance(b, datetime) and b.tzinfo is not None for b in ts.histogram)
    quantity = stats.column("quantity").histogram
    assert quantity and str(quantity[0]) == "0.250"  # Decimal, as the column holds it
    assert stats.column("meter").histogram == ()  # text keeps no values (collation order)
    indexes = {i.name: i for i in stats.indexes}
    assert indexes["events_customer_ts"].columns == ("customer_id", "ts")
    assert not indexes["events_customer_ts"].unique
    assert indexes["events_pkey"].columns == ("id",) and indexes["events_pkey"].unique
    # an expression index and a partial index cannot find an arbitrary row: not listed
    assert set(indexes) == {"events_customer_ts", "events_pkey"}


def test_refresh_and_sync_read_them_again(pg_ws, pg_cluster, tmp_path):
    ws, db = pg_ws
    pg_cluster.run_sql("INSERT INTO events SELECT g, 10 + g % 5, 'm', now(), 1, NULL "
                       "FROM generate_series(20001, 30000) AS g; ANALYZE events; "
                       "CREATE INDEX events_meter ON events (meter, quantity)", dbname=db)
    before = ws.catalog.statistics("pg.public.events")
    assert before.rows == 20000
    ws.sync("pg")
    after = ws.catalog.statistics("pg.public.events")
    assert after.rows == 30000
    assert after.column("customer_id").distinct == pytest.approx(15, abs=0.5)
    assert ("meter", "quantity") in [i.columns for i in after.indexes]
    pg_cluster.run_sql("DROP INDEX events_meter", dbname=db)
    ws.sources.refresh("pg")
    assert ("meter", "quantity") not in [i.columns for i in
                                         ws.catalog.statistics("pg.public.events").indexes]
    ws.close()
    with meterql.connect(tmp_path / "home") as again:  # stored, and read back typed
        kept = again.catalog.statistics("pg.public.events")
        assert kept.rows == 30000
        assert kept.column("ts").histogram == ws.catalog.statistics(
            "pg.public.events").column("ts").histogram


def test_sqlite_indexes_and_stat1(tmp_path):
    path = tmp_path / "crm.db"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE usage (id INTEGER PRIMARY KEY, customer_id INT, ts TEXT, qty REAL);
        CREATE INDEX usage_customer_ts ON usage (customer_id, ts);
        CREATE TABLE plans (code TEXT PRIMARY KEY, price REAL);
    """)
    con.executemany("INSERT INTO usage (customer_id, ts, qty) VALUES (?, ?, ?)",
                    [(i % 10, f"2026-01-{i % 28 + 1:02d}", i) for i in range(2000)])
    con.commit()
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("lite", f"sqlite:///{path}")
        stats = ws.catalog.statistics("lite.main.usage")
        assert stats.rows == 2000 and stats.columns == {}  # no sqlite_stat1 yet
        assert sorted((i.name, i.columns) for i in stats.indexes) == [
            ("primary key", ("id",)), ("usage_customer_ts", ("customer_id", "ts"))]
        (plan_key,) = ws.catalog.statistics("lite.main.plans").indexes
        assert plan_key.columns == ("code",) and plan_key.unique
        con.execute("ANALYZE")
        con.commit()
        ws.sources.refresh("lite")
        stats = ws.catalog.statistics("lite.main.usage")
        assert stats.column("customer_id").distinct == pytest.approx(10, abs=0.5)
    con.close()


def test_duckdb_file_indexes(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t (a INT PRIMARY KEY, b VARCHAR, c INT)")
        con.execute("CREATE INDEX t_c_b ON t (c, b)")
        con.execute("CREATE INDEX t_expr ON t ((c + 1))")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("dk", f"duckdb:///{path}")
        stats = ws.catalog.statistics("dk.main.t")
        assert sorted((i.name, i.columns, i.unique) for i in stats.indexes) == [
            ("primary key", ("a",), True), ("t_c_b", ("c", "b"), False)]
        ws.sources.remove("dk")
        assert ws.catalog.statistics("dk.main.t") is None


def test_a_catalog_of_the_previous_version_gains_the_statistics_tables(tmp_path):
    from meterql.catalog import Catalog, Column, Table
    from meterql.catalog.store import MIGRATIONS, SCHEMA_VERSION

    con = duckdb.connect(str(tmp_path / "catalog.duckdb"))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    for step in MIGRATIONS[:6]:
        step(con)
    con.execute("INSERT INTO meta VALUES ('schema_version', '6')")
    con.execute("INSERT INTO sources (name, kind, uri, mode, options) "
                "VALUES ('lite', 'sqlite', 'sqlite:///x.db', 'direct', '{}')")
    catalog = Catalog(con)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),)
    assert catalog.statistics("lite.main.t") is None and catalog.cost_constants("lite") is None
    table = Table("lite", "main", "t", (Column("n", "INTEGER", "INTEGER"),), rows=5)
    catalog.replace_tables("lite", [table])
    catalog.replace_statistics("lite", [TableStats(
        "lite.main.t", 5, {"n": ColumnStats("n", 3, 0.0, 1, 9, (1, 4, 9), ((4, 0.4),), 0.5)},
        (IndexInfo("t_n", ("n",)),))])
    catalog.set_cost_constants("lite", {"round_trip_ms": 0.3})
    again = Catalog(con)  # read back from the file, typed
    assert again.statistics("lite.main.t").columns["n"] == ColumnStats(
        "n", 3, 0.0, 1, 9, (1, 4, 9), ((4, 0.4),), 0.5)
    assert again.statistics("lite.main.t").indexes == (IndexInfo("t_n", ("n",)),)
    assert again.cost_constants("lite") == {"round_trip_ms": 0.3}
    con.close()
