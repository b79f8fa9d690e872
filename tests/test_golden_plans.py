"""Golden files for the planner's rules: the plan (and so the SQL each source receives) for a
query over a fixed catalog, without any source running.

Each file in tests/golden/planner/ holds cases::

    -- title: what the case shows
    SELECT ...
    -- plan:
    <str(plan)>

separated by a line ``-- ====``. Regenerate after an intended change with
``METERQL_UPDATE_GOLDEN=1 pytest tests/test_golden_plans.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from meterql.catalog import Catalog, Column, ColumnStats, Source, Table, TableStats
from meterql.engine.bind import bind
from meterql.engine.parse import parse_query
from meterql.engine.planner import plan_query

GOLDEN = Path(__file__).parent / "golden" / "planner"
SEPARATOR = "-- ===="


def _catalog() -> Catalog:
    catalog = Catalog(duckdb.connect())

    def cols(*spec: str) -> tuple[Column, ...]:
        return tuple(Column(n, t, t) for n, t in (s.split(":") for s in spec))

    sources = [
        (Source("pg", "postgres", "postgresql://u@h/db"), [
            Table("pg", "public", "events", cols(
                "id:BIGINT", "customer_id:INTEGER", "meter:VARCHAR",
                "ts:TIMESTAMP WITH TIME ZONE", "quantity:DECIMAL(18, 6)"), rows=10_000_000),
            Table("pg", "public", "plans", cols("id:INTEGER", "name:VARCHAR",
                                                "price:DECIMAL(12, 4)"), rows=4),
            Table("pg", "public", "usage_events", cols(
                "id:BIGINT", "customer_id:BIGINT", "meter:VARCHAR", "quantity:DECIMAL(18, 6)"),
                rows=5_000_000),
        ]),
        (Source("lite", "sqlite", "sqlite:///crm.db"), [
            Table("lite", "main", "customers", cols(
                "id:BIGINT", "name:VARCHAR", "plan:VARCHAR", "credit:DECIMAL(12, 2)",
                "signed_up:DATE"), rows=1_000),
            Table("lite", "main", "accounts", cols(
                "id:BIGINT", "segment:VARCHAR", "plan_id:BIGINT", "region:VARCHAR"), rows=10_000),
        ]),
        (Source("dk", "duckdb", "duckdb:///lake.duckdb"), [
            Table("dk", "main", "prices", cols("meter:VARCHAR", "price:DECIMAL(12, 6)"),
                  rows=32),
            Table("dk", "main", "meters", cols("meter:VARCHAR", "unit:VARCHAR"), rows=3),
            Table("dk", "main", "regions", cols("code:VARCHAR", "name:VARCHAR"), rows=20),
        ]),
    ]
    for source, tables in sources:
        catalog.add_source(source, tables)
    # Statistics: the distinct meters of events (what eager aggregation reads; none for
    # customer_id), and the tables of the five-table query.
    catalog.replace_statistics("pg", [
        TableStats("pg.public.events", 10_000_000, {"meter": ColumnStats("meter", 12, 0.0)}),
        TableStats("pg.public.usage_events", 5_000_000, {
            "customer_id": ColumnStats("customer_id", 50_000, 0.0),
            "meter": ColumnStats("meter", 3, 0.0)})])
    catalog.replace_statistics("lite", [TableStats("lite.main.accounts", 10_000, {
        "id": ColumnStats("id", 10_000, 0.0), "segment": ColumnStats("segment", 100, 0.0),
        "plan_id": ColumnStats("plan_id", 4, 0.0)})])
    catalog.replace_statistics("dk", [
        TableStats("dk.main.meters", 3, {"meter": ColumnStats("meter", 3, 0.0)}),
        TableStats("dk.main.regions", 20, {"code": ColumnStats("code", 20, 0.0)})])
    return catalog


def _cases() -> list[tuple[str, str, str, str]]:
    cases = []
    for path in sorted(GOLDEN.glob("*.sql")):
        for chunk in path.read_text(encoding="utf-8").split(SEPARATOR):
            if not chunk.strip():
                continue
            head, _, expected = chunk.partition("-- plan:\n")
            lines = head.strip().splitlines()
            title = lines[0].removeprefix("-- title:").strip()
            sql = "\n".join(lines[1:]).strip()
            cases.append((path.stem, title, sql, expected.rstrip("\n")))
    return cases


CATALOG = _catalog()
CASES = _cases()


def _plan(sql: str) -> str:
    parsed = parse_query(sql)
    return str(plan_query(bind(parsed.tree, CATALOG, "duckdb", sql), CATALOG, sql))


def test_there_are_golden_cases_for_every_rule():
    from meterql.engine.planner import RULES

    files = {case[0] for case in CASES}
    assert {rule.__module__.rsplit(".", 1)[1] for rule in RULES} <= files


@pytest.mark.parametrize(("rule", "title", "sql", "expected"), CASES,
                         ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_golden_plan(rule, title, sql, expected):
    assert _plan(sql) == expected, f"{rule}: {title}"


def update() -> None:
    """Rewrite every golden file with the plans the planner makes now."""
    for path in sorted(GOLDEN.glob("*.sql")):
        out = []
        for chunk in path.read_text(encoding="utf-8").split(SEPARATOR):
            if not chunk.strip():
                continue
            head = chunk.partition("-- plan:\n")[0].strip()
            sql = "\n".join(head.splitlines()[1:]).strip()
            out.append(f"{head}\n-- plan:\n{_plan(sql)}\n")
        path.write_text(f"\n{SEPARATOR}\n".join(out), encoding="utf-8")


if os.environ.get("METERQL_UPDATE_GOLDEN"):
    update()
    CASES = _cases()
