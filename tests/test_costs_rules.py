"""The cost model's rules on hand-made statistics (no source contacted): each kind of predicate,
missing statistics, and which index fits."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from meterql.catalog import Catalog, Column, ColumnStats, IndexInfo, Source, Table, TableStats
from meterql.engine.bind import bind
from meterql.engine.parse import parse_query
from meterql.engine.planner.costs import (
    UNKNOWN,
    UNKNOWN_EQ,
    CostConstants,
    cheapest,
    estimate_routes,
    index_selectivity,
    selectivity,
    table_predicates,
)

ROWS = 1_000_000
MONTHS = tuple(datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 13))
STATS = TableStats("pg.public.events", ROWS, {
    "customer_id": ColumnStats("customer_id", 1000, 0.0, 1, 1000,
                               common=((7, 0.1), (8, 0.05))),
    "ts": ColumnStats("ts", 900_000, 0.0, MONTHS[0], MONTHS[-1], MONTHS, correlation=0.99),
    "day": ColumnStats("day", 365, 0.0, date(2026, 1, 1), date(2026, 12, 31)),
    "quantity": ColumnStats("quantity", 500, 0.2, histogram=(0, 25, 50, 75, 100)),
    "meter": ColumnStats("meter", 5, 0.1),
}, (IndexInfo("events_customer_ts", ("customer_id", "ts")),
    IndexInfo("events_pkey", ("id",), True)))


@pytest.fixture(scope="module")
def catalog():
    catalog = Catalog(__import__("duckdb").connect())
    columns = tuple(Column(n, t, t) for n, t in (
        ("id", "BIGINT"), ("customer_id", "INTEGER"), ("ts", "TIMESTAMP WITH TIME ZONE"),
        ("day", "DATE"), ("quantity", "DECIMAL(18,6)"), ("meter", "VARCHAR")))
    catalog.add_source(Source("pg", "postgres", "postgresql://u@h/db"),
                       [Table("pg", "public", "events", columns, rows=ROWS)])
    return catalog


def bound_of(catalog, where):
    sql = f"SELECT * FROM pg.public.events WHERE {where}"
    return bind(parse_query(sql).tree, catalog, "duckdb", sql)


def share(catalog, where, stats=STATS):
    bound = bound_of(catalog, where)
    return selectivity(table_predicates(bound, 0), stats, bound.tables[0][1])


@pytest.mark.parametrize(("where", "expected"), [
    ("customer_id = 7", 0.1),  # a common value: its frequency
    ("7 = customer_id", 0.1),
    ("customer_id = 9", 0.85 / 998),  # the rest, shared by the other values
    ("customer_id IN (7, 8)", 0.15),
    ("customer_id <> 7", 0.9),
    ("quantity IS NULL", 0.2),
    ("quantity IS NOT NULL", 0.8),
    ("quantity > 50", 0.4),  # half of the 80% not null
    ("quantity <= 25", 0.2),
    ("quantity BETWEEN 25 AND 75", 0.4),
    ("quantity > -5", 0.8),
    ("ts >= TIMESTAMPTZ '2026-03-01 00:00:00+00' AND ts < TIMESTAMPTZ '2026-04-01 00:00:00+00'",
     1 / 11),
    ("ts >= '2026-12-01'", 0.0),
    ("day < DATE '2026-07-02'", 182 / 364),  # min and max only: a straight line
    ("ts > :since", UNKNOWN),
    ("meter = 'api'", 0.9 / 5),  # text: 1 / distinct, no values kept
    ("meter LIKE 'a%'", UNKNOWN),
    ("customer_id = 7 OR customer_id = 8", 0.1 + 0.05 - 0.1 * 0.05),
    ("customer_id = 7 AND quantity > 50", 0.1 * 0.4),
])
def test_selectivity(catalog, where, expected):
    assert share(catalog, where) == pytest.approx(expected, rel=0.01)


def test_without_statistics_the_defaults_apply(catalog):
    assert share(catalog, "customer_id = 7", None) == UNKNOWN_EQ
    assert share(catalog, "quantity > 5", None) == pytest.approx(UNKNOWN)
    bound = bound_of(catalog, "customer_id = 7")
    costs = estimate_routes(bound, 0, bound.tables[0][1], None, None)
    assert set(costs) == {"source"}  # no replica: no replica route
    assert costs["source"].rows_read == ROWS  # no index known: a scan of the catalog's rows
    assert costs["source"].reason.startswith("source: scans 1M rows (no index fits its filters)")


def test_the_index_needs_its_leading_column(catalog):
    def index(where):
        bound = bound_of(catalog, where)
        found = index_selectivity(table_predicates(bound, 0), STATS, bound.tables[0][1])
        return None if found is None else (found[0].name, round(found[1], 4))

    assert index("customer_id = 7") == ("events_customer_ts", 0.1)
    assert index("customer_id = 7 AND ts >= TIMESTAMPTZ '2026-12-01 00:00:00+00'") == (
        "events_customer_ts", 0.0)
    assert index("ts >= TIMESTAMPTZ '2026-06-01 00:00:00+00'") is None  # not its first column
    assert index("id = 5") == ("events_pkey", round(UNKNOWN_EQ, 4))
    assert index("quantity > 5") is None


def test_a_wide_index_read_costs_more_than_a_scan(catalog):
    # customer 7 holds 10% of the rows: 100k index rows cost more than scanning 1M (with an
    # index row 20 times a scanned row's cost)
    bound = bound_of(catalog, "customer_id = 7")
    dear = CostConstants(index_row_ns=20 * CostConstants().seq_row_ns)
    costs = estimate_routes(bound, 0, bound.tables[0][1], STATS, ROWS, dear)
    assert costs["source"].rows_read == ROWS and "scans 1M rows" in costs["source"].reason
    narrow = bound_of(catalog, "customer_id = 9")
    costs = estimate_routes(narrow, 0, narrow.tables[0][1], STATS, ROWS)
    assert costs["source"].reason.startswith("source: index on (customer_id, ts) selects ~")


def test_zone_maps_and_constants(catalog):
    bound = bound_of(catalog, "ts >= TIMESTAMPTZ '2026-11-01 00:00:00+00'")
    costs = estimate_routes(bound, 0, bound.tables[0][1], STATS, ROWS)
    assert costs["replica"].rows_read == pytest.approx(ROWS / 11, rel=0.01)
    assert "zone maps on ts" in costs["replica"].reason
    slow = estimate_routes(bound, 0, bound.tables[0][1], STATS, ROWS,
                           CostConstants(replica_row_ns=1e6))
    assert slow["replica"].ms > costs["replica"].ms
    assert cheapest(slow).route == "source"
    assert cheapest(slow).reason.count(";") == 1
