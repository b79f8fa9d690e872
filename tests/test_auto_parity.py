"""Parity: every differential query reading PostgreSQL gives the same rows and Arrow types with
``pg`` in auto mode as in direct mode, under the bounds 0 (live: every table from the source),
none (any replica age: every table from the replica) and 1h (the replica, synced just now); and
under the bound 0 with incremental strategies, where events and plans are read as replica plus
delta (hybrid) and the tables without a delta from the source."""

from __future__ import annotations

import pytest

import meterql
from meterql.errors import MeterqlError
from tests.support.routing import prefer_replica
from tests.test_differential import assert_same_rows
from tests.test_sync_parity import PG_QUERIES

BOUNDS = {"0": "source", "none": "replica", "1h": "replica"}


def _synced(billing, folder, strategies=()):
    """The billing sources with ``pg`` in auto mode (replica preferred within the bound),
    synced with the given (table, strategy, cursor) choices."""
    ws = meterql.connect(folder / "home")
    ws.sources.add("pg", billing.pg_uri, mode="auto")
    prefer_replica(ws)
    ws.sources.add("lite", f"sqlite://{billing.sqlite_path}")
    ws.sources.add("dk", f"duckdb://{billing.duckdb_path}")
    for table, strategy, cursor in strategies:
        ws.sync.set_strategy(table, strategy, cursor)
    assert [r.error for r in ws.sync()] == [None]
    return ws


@pytest.fixture(scope="module")
def auto(billing, tmp_path_factory):
    ws = _synced(billing, tmp_path_factory.mktemp("auto"))
    yield ws
    ws.close()


@pytest.fixture(scope="module")
def hybrid(billing, tmp_path_factory):
    ws = _synced(billing, tmp_path_factory.mktemp("hybrid"), [
        ("pg.public.events", "append", "id"), ("pg.public.plans", "merge", "updated_at")])
    yield ws
    ws.close()


@pytest.mark.parametrize("q", [pytest.param(q, id=q.id) for q in PG_QUERIES])
def test_same_answer_direct_and_hybrid(billing, hybrid, q):
    try:
        direct = billing.ws.query(q.sql, q.params, max_rows=None)
    except MeterqlError:
        with pytest.raises(MeterqlError):
            hybrid.query(q.sql, q.params, max_rows=None, max_staleness=0)
        return
    result = hybrid.query(q.sql, q.params, max_rows=None, max_staleness=0)
    assert_same_rows(result.table, direct.table, q.ordered)
    assert result.table.schema.types == direct.table.schema.types
    routes = {m["table"]: m["route"] for m in result.watermarks if "route" in m}
    for table in ("pg.public.events", "pg.public.plans"):
        assert routes.get(table, "hybrid") == "hybrid"
    assert set(routes.values()) <= {"hybrid", "source"}


@pytest.mark.parametrize("bound", list(BOUNDS))
@pytest.mark.parametrize("q", [pytest.param(q, id=q.id) for q in PG_QUERIES])
def test_same_answer_direct_and_auto(billing, auto, q, bound):
    try:
        direct = billing.ws.query(q.sql, q.params, max_rows=None)
    except MeterqlError:
        with pytest.raises(MeterqlError):
            auto.query(q.sql, q.params, max_rows=None, max_staleness=bound)
        return
    result = auto.query(q.sql, q.params, max_rows=None, max_staleness=bound)
    assert_same_rows(result.table, direct.table, q.ordered)
    assert result.table.schema.types == direct.table.schema.types
    routes = {m["route"] for m in result.watermarks if "route" in m}
    assert routes == {BOUNDS[bound]}
    assert (BOUNDS[bound] == "replica") == all(f.source != "pg" for f in result.plan.fragments)
