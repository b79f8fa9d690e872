"""Parity: every differential query reading PostgreSQL gives the same rows and Arrow types with
``pg`` in sync mode (a local replica) as in direct mode."""

from __future__ import annotations

import pytest

import meterql
from meterql.errors import MeterqlError
from tests.test_differential import QUERIES, assert_same_rows

PG_QUERIES = [q for q in QUERIES if "pg." in q.sql]


@pytest.fixture(scope="module")
def synced(billing, tmp_path_factory):
    ws = meterql.connect(tmp_path_factory.mktemp("synced") / "home")
    ws.sources.add("pg", billing.pg_uri, mode="sync")
    ws.sources.add("lite", f"sqlite://{billing.sqlite_path}")
    ws.sources.add("dk", f"duckdb://{billing.duckdb_path}")
    reports = ws.sync()
    assert [r.error for r in reports] == [None]
    assert {t.table for t in reports[0].tables} >= {"pg.public.events", "pg.public.plans"}
    yield ws
    ws.close()


def test_enough_queries_read_postgres():
    assert len(PG_QUERIES) >= 100


@pytest.mark.parametrize("q", [pytest.param(q, id=q.id) for q in PG_QUERIES])
def test_same_answer_direct_and_sync(billing, synced, q):
    assert_same_as_direct(billing, synced, q)


def assert_same_as_direct(billing, ws, q) -> None:
    """``q`` through ``ws`` (``pg`` in sync mode) answers as ``pg`` read directly: the same rows
    and Arrow types, from the replica, with its watermarks; or both refuse it."""
    try:
        direct = billing.ws.query(q.sql, q.params, max_rows=None)
    except MeterqlError:
        with pytest.raises(MeterqlError):
            ws.query(q.sql, q.params, max_rows=None)
        return
    local = ws.query(q.sql, q.params, max_rows=None)
    assert local.plan.local_tables and all(f.source != "pg" for f in local.plan.fragments)
    assert_same_rows(local.table, direct.table, q.ordered)
    assert local.table.schema.types == direct.table.schema.types
    assert {w["table"] for w in local.watermarks} == set(local.plan.local_tables)
