"""A small catalog that the rules' docstring examples plan against: no source is contacted.

- ``pg`` (PostgreSQL): ``public.events`` (10 million rows, statistics on ``customer_id``: 1,000
  distinct values, and ``meter``: 12) and ``public.plans``;
- ``lite`` (SQLite): ``main.customers`` (1,000 rows).

>>> print(example_context("SELECT * FROM lite.main.customers").bound.tree.sql("duckdb"))
SELECT * FROM lite.main.customers AS customers
"""

from __future__ import annotations

import functools

import duckdb

from meterql.catalog import Catalog, Column, ColumnStats, Source, Table, TableStats
from meterql.engine.bind import bind
from meterql.engine.parse import parse_query
from meterql.engine.planner.context import PlanContext


def _columns(*spec: str) -> tuple[Column, ...]:
    return tuple(Column(n, t, t) for n, t in (s.split(":") for s in spec))


@functools.cache
def example_catalog() -> Catalog:
    """The example catalog (made once)."""
    catalog = Catalog(duckdb.connect())
    catalog.add_source(Source("pg", "postgres", "postgresql://u@h/db"), [
        Table("pg", "public", "events", _columns(
            "id:BIGINT", "customer_id:INTEGER", "meter:VARCHAR", "quantity:DECIMAL(18, 6)"),
            rows=10_000_000),
        Table("pg", "public", "plans", _columns("id:INTEGER", "name:VARCHAR"), rows=4),
    ])
    catalog.replace_statistics("pg", [TableStats("pg.public.events", 10_000_000, {
        "customer_id": ColumnStats("customer_id", 1_000, 0.0),
        "meter": ColumnStats("meter", 12, 0.0)})])
    catalog.add_source(Source("lite", "sqlite", "sqlite:///crm.db"), [
        Table("lite", "main", "customers", _columns("id:BIGINT", "name:VARCHAR", "plan:VARCHAR"),
              rows=1_000),
    ])
    return catalog


def example_context(sql: str) -> PlanContext:
    """What the rules receive for ``sql`` (DuckDB's dialect) over the example catalog."""
    catalog = example_catalog()
    bound = bind(parse_query(sql).tree, catalog, "duckdb", sql)
    return PlanContext(bound, catalog, sql, dict(catalog.settings))
