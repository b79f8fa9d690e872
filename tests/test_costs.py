"""The cost model on the benchmark's shapes, with the statistics a real PostgreSQL gives after
ANALYZE: one customer's month is cheaper at the source (the index on (customer_id, ts)), the
invoice run (every customer, one month) on the replica; the estimated rows match the real
counts; the reasons name the index and the row counts."""

from __future__ import annotations

import dataclasses
import re

import pytest

import meterql
from meterql.engine.bind import bind
from meterql.engine.parse import parse_query
from meterql.engine.planner.costs import (
    CostConstants,
    cheapest,
    constants_for,
    estimate_routes,
    selectivity,
    table_predicates,
)

# 200,000 events over the benchmark's year (ts rising with id, as an append-only log), 200
# customers, 5 meters.
EVENTS = """
CREATE TABLE events (id bigint PRIMARY KEY, customer_id int NOT NULL, meter text NOT NULL,
                     ts timestamptz NOT NULL, quantity numeric(18,6) NOT NULL);
CREATE INDEX events_customer_ts ON events (customer_id, ts);
INSERT INTO events
SELECT g, 1 + (g * 7919) % 200, (ARRAY['api','storage','seats','egress','compute'])[1 + g % 5],
       TIMESTAMPTZ '2025-12-01 00:00:00+00' + (g - 1) * (INTERVAL '365 days' / 200000),
       (g % 1000) / 10.0
FROM generate_series(1, 200000) AS g;
ANALYZE events;
"""
MONTH = ("ts >= TIMESTAMPTZ '2026-03-01 00:00:00+00' "
         "AND ts < TIMESTAMPTZ '2026-04-01 00:00:00+00'")
CUSTOMER_MONTH = ("SELECT meter, count(*) AS n, sum(quantity) AS qty FROM pg.public.events "
                  f"WHERE customer_id = 7 AND {MONTH} GROUP BY meter")
INVOICE_RUN = ("SELECT customer_id, meter, count(*) AS n, sum(quantity) AS qty "
               f"FROM pg.public.events WHERE {MONTH} GROUP BY customer_id, meter")


@pytest.fixture(scope="module")
def env(pg_cluster, pg_database, tmp_path_factory):
    db = pg_database("costs", EVENTS)
    ws = meterql.connect(tmp_path_factory.mktemp("costs") / "home")
    ws.sources.add("pg", pg_cluster.uri(db), mode="auto")
    ws.sources.add("src", pg_cluster.uri(db))  # the same database, read directly
    ws.sync("pg")
    yield ws
    ws.close()


#: The benchmark's 10 GB against this table: 283 times the events and the customers.
AT_10GB = 283


def _estimate(ws, sql, constants=None, scale=1):
    """The estimates, with the statistics (rows, and customers as the benchmark grows them)
    and the replica ``scale`` times this table's."""
    bound = bind(parse_query(sql).tree, ws.catalog, "duckdb", sql)
    table = bound.tables[0][1]
    (mark,) = ws.sync.watermarks("pg")
    stats = ws.catalog.statistics(table.full_name)
    if scale != 1:
        customers = stats.columns["customer_id"]
        stats = dataclasses.replace(stats, rows=stats.rows * scale, columns={
            **stats.columns,
            "customer_id": dataclasses.replace(
                customers, distinct=customers.distinct * scale,
                common=tuple((value, share / scale) for value, share in customers.common))})
    # (both benchmark queries are sent whole to PostgreSQL on the source route)
    return bound, estimate_routes(bound, 0, table, stats, mark.rows * scale, constants,
                                  sent_whole=True)


def _count(ws, where):
    return ws.query(f"SELECT count(*) FROM src.public.events WHERE {where}").rows()[0][0]


def test_one_customer_month_is_cheaper_at_the_source(env):
    # at 200k rows the query sent whole skips DuckDB's own fixed cost; at the benchmark's
    # 10 GB the index reads a few rows and the replica millions
    assert cheapest(_estimate(env, CUSTOMER_MONTH)[1]).route == "source"
    _, scaled = _estimate(env, CUSTOMER_MONTH, scale=AT_10GB)
    choice = cheapest(scaled)
    assert choice.route == "source" and scaled["source"].ms < scaled["replica"].ms
    assert choice.reason.startswith("source: index on (customer_id, ts) selects ~")
    assert "of 56.6M rows" in choice.reason
    # (31 days of 365: 8.5%, give or take ANALYZE's sample)
    assert re.search(r"; replica would scan ~8\.\d% of 56.6M rows \(zone maps on ts\), ~",
                     choice.reason)
    bound, costs = _estimate(env, CUSTOMER_MONTH)
    # the rows the index reads, against the real count (within a factor of two)
    real = _count(env, f"customer_id = 7 AND {MONTH}")
    assert real / 2 <= costs["source"].rows_read <= real * 2
    # ts follows the rows' order (correlation ~1): the replica's scan reads about the month
    assert costs["replica"].rows_read == pytest.approx(_count(env, MONTH), rel=0.1)


def test_invoice_run_is_cheaper_on_the_replica(env):
    bound, costs = _estimate(env, INVOICE_RUN)
    choice = cheapest(costs)
    assert choice.route == "replica"
    assert re.match(r"replica: scans ~8\.\d% of 200k rows \(zone maps on ts\) columnar, ~",
                    choice.reason)
    assert "source would scan 200k rows" in choice.reason
    assert costs["source"].rows_read == 200_000  # no index leads with ts: a sequential scan
    table = bound.tables[0][1]
    share = selectivity(table_predicates(bound, 0), env.catalog.statistics(table.full_name),
                        table)
    real = _count(env, MONTH)
    assert share * 200_000 == pytest.approx(real, rel=0.1)


def test_without_an_ordered_column_the_replica_scans_every_row(env):
    sql = "SELECT meter, count(*) FROM pg.public.events WHERE quantity > 50 GROUP BY meter"
    _, costs = _estimate(env, sql)
    assert costs["replica"].rows_read == 200_000
    assert costs["replica"].reason.startswith("replica: scans 200k rows columnar, ~")


def test_calibrated_constants_change_the_choice(env):
    # a source whose sequential scans are as cheap as the replica's: it wins the invoice run
    constants = CostConstants(seq_row_ns=1.0, transfer_row_ns=1.0, replica_row_ns=50.0)
    _, costs = _estimate(env, INVOICE_RUN, constants)
    assert cheapest(costs).route == "source"


@pytest.mark.parametrize(("where", "lo", "hi"), [
    # 1/200 by the common values (ANALYZE reads a sample: each value's share varies a little)
    ("customer_id = 7", 0.0035, 0.0065),
    ("customer_id IN (7, 8, 9)", 0.012, 0.018),
    ("customer_id = :c", 0.004, 0.006),  # a parameter: the average value
    ("quantity > 50", 0.45, 0.55),
    ("quantity BETWEEN 10 AND 20", 0.08, 0.12),
    ("quantity > :q", 1 / 3, 1 / 3),  # a parameter's range: the default third
    ("ts < TIMESTAMPTZ '2025-01-01 00:00:00+00'", 0.0, 0.0),
    ("ts >= DATE '2026-06-01'", 0.47, 0.53),
    ("meter IS NULL", 0.0, 0.0),
    ("meter IS NOT NULL", 1.0, 1.0),
])
def test_selectivity_of_each_predicate_kind(env, where, lo, hi):
    sql = f"SELECT * FROM pg.public.events WHERE {where}"
    bound = bind(parse_query(sql).tree, env.catalog, "duckdb", sql)
    table = bound.tables[0][1]
    share = selectivity(table_predicates(bound, 0), env.catalog.statistics(table.full_name),
                        table)
    assert lo - 1e-9 <= share <= hi + 1e-9


def test_calibrate_measures_stores_and_is_used(env):
    measured = env.sources.calibrate("pg")
    assert set(measured) == {"round_trip_ms", "seq_row_ns", "transfer_row_ns", "index_row_ns",
                             "replica_row_ns"}
    assert all(value > 0 for value in measured.values())
    assert env.catalog.cost_constants("pg") == measured
    constants = constants_for(env.catalog, "pg")
    assert constants.seq_row_ns == measured["seq_row_ns"]
    assert constants.replica_fixed_ms == CostConstants().replica_fixed_ms  # not measured
    # the measured costs of this machine make the same choices as the defaults
    assert cheapest(_estimate(env, CUSTOMER_MONTH, constants, AT_10GB)[1]).route == "source"
    assert cheapest(_estimate(env, INVOICE_RUN, constants, AT_10GB)[1]).route == "replica"


def test_calibrate_and_describe_through_the_cli(env, pg_cluster, tmp_path):
    from click.testing import CliRunner

    from meterql.cli import main

    db = env.sources.get("pg").uri.rsplit("/", 1)[-1]
    home = tmp_path / "cli"
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg_cluster.uri(db))

    def cli(*args):
        out = CliRunner().invoke(main, [*args, "--home", str(home)])
        assert out.exit_code == 0, out.output
        return out.output

    out = cli("calibrate", "pg")
    assert "calibrated source 'pg'" in out and "seq_row_ns = " in out
    assert "replica_row_ns" not in out  # a direct source has no replica to measure
    described = cli("describe", "pg.public.events")
    assert "rows at the source: ~200,000 rows" in described
    assert "index on (customer_id, ts) (events_customer_ts)" in described
    assert "unique index on (id) (events_pkey)" in described
    with meterql.connect(home) as ws:
        assert set(ws.catalog.cost_constants("pg")) == {
            "round_trip_ms", "seq_row_ns", "transfer_row_ns", "index_row_ns"}
