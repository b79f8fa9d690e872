"""Mode ``auto`` against a real PostgreSQL: each table is read from its replica when synced
within the query's bound ``max_staleness``, else from the source; failover to the replica when
the source is unreachable; the answers equal direct mode's over the same data."""

from __future__ import annotations

import time

import pytest

import meterql
from meterql.errors import InvalidSettingError, QueryError, StaleReplicaError
from tests.support.routing import (
    auto_beside_direct,
    prefer_replica,
    prefer_source,
    routes,
    rows,
)

SETUP = """
CREATE TABLE usage (id bigint PRIMARY KEY, customer_id int, qty numeric(12,3));
INSERT INTO usage SELECT g, g % 5, g / 8.0 FROM generate_series(1, 200) AS g;
CREATE TABLE customers (id int PRIMARY KEY, name text);
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(0, 4) AS g;
"""
QUERIES = [
    "SELECT * FROM {s}.public.usage ORDER BY id",
    "SELECT customer_id, sum(qty) AS q, count(*) AS n FROM {s}.public.usage "
    "GROUP BY customer_id ORDER BY customer_id",
    # two tables of one source: one may be on the replica and the other on the source
    "SELECT c.name, count(*) AS n FROM {s}.public.usage u JOIN {s}.public.customers c "
    "ON c.id = u.customer_id GROUP BY c.name ORDER BY c.name",
    "SELECT name FROM {s}.public.customers WHERE id IN "
    "(SELECT customer_id FROM {s}.public.usage WHERE qty > 20) ORDER BY name",
]


@pytest.fixture()
def auto(pg_cluster, pg_database, tmp_path):
    db = pg_database("auto", SETUP)
    ws = auto_beside_direct(pg_cluster, db, tmp_path / "home")
    yield ws, db
    ws.close()


def test_not_synced_reads_the_source(auto):
    ws, _ = auto
    for sql in QUERIES:
        assert rows(ws, sql) == rows(ws, sql, "src")
    result = ws.query("SELECT count(*) FROM pg.public.usage")
    assert routes(result) == {"pg.public.usage": "source"}
    assert "pg.public.usage -> source: not synced yet" in str(ws.explain(
        "SELECT count(*) FROM pg.public.usage"))


@pytest.mark.parametrize("bound", [0, "0", "none", None, "1h", 3600.0])
def test_every_bound_answers_as_direct_before_a_change(auto, bound):
    ws, _ = auto
    ws.sync("pg")
    for sql in QUERIES:
        assert rows(ws, sql, max_staleness=bound) == rows(ws, sql, "src")


def test_rows_inserted_after_the_sync(auto, pg_cluster):
    ws, db = auto
    ws.sync("pg")
    pg_cluster.run_sql("INSERT INTO usage VALUES (201, 1, 99); UPDATE customers SET name = 'x' "
                       "WHERE id = 1", dbname=db)
    direct = {sql: rows(ws, sql, "src") for sql in QUERIES}
    for sql in QUERIES:  # live: the new rows
        assert rows(ws, sql, max_staleness=0) == direct[sql]
    stale = rows(ws, QUERIES[0], max_staleness="1h")
    assert len(stale) == 200 and len(direct[QUERIES[0]]) == 201
    result = ws.query(QUERIES[2].format(s="pg"), max_staleness="1h")
    assert routes(result) == {"pg.public.usage": "replica", "pg.public.customers": "replica"}
    assert routes(ws.query(QUERIES[2].format(s="pg"), max_staleness=0)) == {
        "pg.public.usage": "source", "pg.public.customers": "source"}
    # a bound between: past it once the replica has aged
    assert rows(ws, QUERIES[0], max_staleness="30s") == stale
    time.sleep(1.1)
    result = ws.query(QUERIES[0].format(s="pg"), max_staleness="1s", max_rows=None)
    assert result.rows() == direct[QUERIES[0]]
    [mark] = result.watermarks
    assert mark["route"] == "source" and "bound 1s;" in mark["reason"]
    # the sync brings the replica up to date: replica route, the new rows
    ws.sync("pg")
    for sql in QUERIES:
        assert rows(ws, sql, max_staleness="1h") == direct[sql]


def test_mixed_routes_in_one_query(auto, pg_cluster):
    """One table synced and the other not: the join reads a replica and a source fragment."""
    ws, db = auto
    ws.sync.set_strategy("pg.public.usage", "full")
    ws.sync("pg")
    pg_cluster.run_sql("CREATE TABLE extra (customer_id int, tag text);"
                       "INSERT INTO extra VALUES (1, 'a'), (2, 'b')", dbname=db)
    ws.sources.refresh("pg")
    ws.sources.refresh("src")
    sql = ("SELECT e.tag, count(*) AS n FROM {s}.public.usage u JOIN {s}.public.extra e "
           "USING (customer_id) GROUP BY e.tag ORDER BY e.tag")
    result = ws.query(sql.format(s="pg"), max_staleness="1h")
    assert result.rows() == rows(ws, sql, "src")
    assert routes(result) == {"pg.public.usage": "replica", "pg.public.extra": "source"}
    text = str(result.plan)
    assert "pg.public.extra -> source: not synced yet" in text
    assert "pg.public.usage -> replica: synced" in text and "within the bound 1h" in text


def test_explain_prints_the_route_per_table(auto):
    ws, _ = auto
    ws.sync("pg")
    sql = "SELECT count(*) FROM pg.public.usage"
    assert "route: pg.public.usage -> replica: synced" in str(ws.explain(sql, max_staleness="5m"))
    time.sleep(1.1)
    text = str(ws.explain(sql, max_staleness="1s"))
    assert "route: pg.public.usage -> source: replica synced" in text and "bound 1s" in text
    # EXPLAIN as SQL takes the bound too
    plan = "\n".join(r[0] for r in ws.query("EXPLAIN " + sql, max_staleness=0).rows())
    assert "-> source: replica synced" in plan and "bound 0s" in plan


def test_the_workspace_setting_is_the_default_bound(auto, pg_cluster):
    ws, db = auto
    ws.sync("pg")
    pg_cluster.run_sql("INSERT INTO usage VALUES (201, 1, 99)", dbname=db)
    assert len(rows(ws, QUERIES[0])) == 200  # default: none, any age
    ws.settings.set("max_staleness", "0")
    assert ws.settings.get("max_staleness") == "0s"
    assert len(rows(ws, QUERIES[0])) == 201
    assert len(rows(ws, QUERIES[0], max_staleness="none")) == 200  # the query's bound wins
    with pytest.raises(InvalidSettingError, match="duration"):
        ws.settings.set("max_staleness", "soon")
    with pytest.raises(QueryError, match="max_staleness"):
        ws.query(QUERIES[0].format(s="pg"), max_staleness="soon")


def test_sync_and_direct_sources_ignore_the_bound(auto, pg_cluster):
    ws, db = auto
    ws.sources.set_mode("pg", "sync")
    ws.sync("pg")
    pg_cluster.run_sql("INSERT INTO usage VALUES (201, 1, 99)", dbname=db)
    assert len(rows(ws, QUERIES[0], max_staleness=0)) == 200
    assert len(rows(ws, QUERIES[0], "src", max_staleness="1h")) == 201


def test_failover_to_the_replica_within_the_bound(pg_cluster, pg_database, tmp_path):
    db = pg_database("failover", SETUP)
    ws = meterql.connect(tmp_path / "home")
    try:
        ws.sources.add("pg", pg_cluster.uri(db), mode="auto")
        prefer_source(ws)
        ws.sync("pg")
        expected = rows(ws, QUERIES[1], max_staleness="1h")
        pg_cluster.run_sql(f"DROP DATABASE {db} WITH (FORCE)")
        time.sleep(1.1)
        # the cost model sends the query to the source, within the bound; the source is
        # gone, so the replica answers and the result says so
        assert "-> source:" in str(ws.explain(QUERIES[1].format(s="pg"), max_staleness="1h"))
        result = ws.query(QUERIES[1].format(s="pg"), max_staleness="1h")
        assert result.rows() == expected
        assert routes(result) == {"pg.public.usage": "replica"}
        [warning] = result.warnings
        assert warning.startswith("pg.public.usage was read from its replica: failover: "
                                  "source unreachable, replica synced")
        # a replica preferred by cost within the bound: the source is not asked at all
        prefer_replica(ws)
        result = ws.query(QUERIES[1].format(s="pg"), max_staleness="1h")
        assert result.rows() == expected
        assert routes(result) == {"pg.public.usage": "replica"} and result.warnings == []
        with pytest.raises(StaleReplicaError) as err:
            ws.query(QUERIES[1].format(s="pg"), max_staleness="1s")
        message = str(err.value)
        assert "pg.public.usage" in message and "past the bound 1s" in message
        assert "synced 1" in message  # the replica's age
        assert err.value.table == "pg.public.usage"
    finally:
        ws.close()


def test_failover_reports_the_replica_read_and_refuses_past_the_bound(
        pg_cluster, pg_database, tmp_path):
    """The engine's failover itself: routed to the source (the replica past the bound), the
    source unreachable, the table is planned again as unreachable."""
    from meterql.engine.planner.routes import choose_route

    db = pg_database("failover", SETUP)
    ws = meterql.connect(tmp_path / "home")
    try:
        ws.sources.add("pg", pg_cluster.uri(db), mode="auto")
        pg_cluster.run_sql(f"DROP DATABASE {db} WITH (FORCE)")
        with pytest.raises(StaleReplicaError, match="pg.public.usage .* no replica yet"):
            ws.query(QUERIES[0].format(s="pg"), max_staleness=0)
    finally:
        ws.close()
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    route = choose_route("pg.public.usage", now - timedelta(minutes=3), 300, now,
                         unreachable=True)
    assert route.kind == "replica" and route.failover
    assert route.reason == ("failover: source unreachable, replica synced 3m ago, within the "
                            "bound 5m")


# -- the bound through every interface ----------------------------------------------------------

@pytest.fixture()
def stale(pg_cluster, pg_database, tmp_path):
    """An auto source synced with 200 rows; the source has 201 since. The workspace is closed
    (the CLI and the server open it)."""
    db = pg_database("iface", SETUP)
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg_cluster.uri(db), mode="auto")
        prefer_replica(ws)
        ws.sync("pg")
    pg_cluster.run_sql("INSERT INTO usage VALUES (201, 1, 99)", dbname=db)
    return home


COUNT = "SELECT count(*) AS n FROM pg.public.usage"


def test_the_bound_through_the_cli(stale):
    from click.testing import CliRunner

    from meterql.cli import main

    def cli(*args):
        out = CliRunner().invoke(main, [*args, "--home", str(stale)])
        assert out.exit_code == 0, out.output
        return out.output

    assert cli("query", COUNT, "--format", "csv").splitlines() == ["n", "200"]
    assert cli("query", COUNT, "--format", "csv", "--max-staleness", "0").splitlines() == [
        "n", "201"]
    assert cli("query", COUNT, "--format", "csv", "--max-staleness", "5m").splitlines() == [
        "n", "200"]
    assert "route: pg.public.usage -> source: replica synced" in cli(
        "explain", COUNT, "--max-staleness", "0")
    assert "route: pg.public.usage -> replica: synced" in cli(
        "explain", COUNT, "--max-staleness", "1h")
    cli("settings", "set", "max_staleness", "0")
    assert cli("query", COUNT, "--format", "csv").splitlines() == ["n", "201"]
    bad = CliRunner().invoke(main, ["query", COUNT, "--max-staleness", "soon", "--home",
                                    str(stale)])
    assert bad.exit_code != 0 and "max_staleness" in bad.output


def test_the_bound_through_http(stale):
    from fastapi.testclient import TestClient

    from meterql.access.keys import create_key
    from meterql.server.app import create_app

    ws = meterql.connect(stale)
    try:
        key = create_key(ws.keys, "read", "read key")[1]
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(ws)) as client:
            def post(path, **body):
                return client.post(path, json={"sql": COUNT, **body}, headers=headers)

            live = post("/v1/query", max_staleness="0").json()
            assert live["rows"] == [[201]]
            assert live["watermarks"][0]["route"] == "source"
            cached = post("/v1/query", max_staleness="5m").json()
            assert cached["rows"] == [[200]] and cached["warnings"] == []
            assert cached["watermarks"][0]["route"] == "replica"
            assert post("/v1/query").json()["rows"] == [[200]]
            plan = post("/v1/explain", max_staleness="0").json()["plan"]
            assert "route: pg.public.usage -> source" in plan
            bad = post("/v1/query", max_staleness="soon")
            assert bad.status_code == 400 and "max_staleness" in bad.text
    finally:
        ws.close()


def test_the_bound_through_the_remote_client(stale):
    from tests.support.served import new_key, serve

    key = new_key(stale, "read")
    with serve(stale) as served, meterql.connect(served.base, key=key) as client:
        assert client.query(COUNT, max_staleness=0).rows() == [(201,)]
        result = client.query(COUNT, max_staleness="1h")
        assert result.rows() == [(200,)] and result.watermarks[0]["route"] == "replica"
        assert "-> source" in str(client.explain(COUNT, max_staleness=0))


def test_the_mode_is_set_through_the_cli_and_http(pg_cluster, pg_database, tmp_path):
    from click.testing import CliRunner
    from fastapi.testclient import TestClient

    from meterql.access.keys import create_key
    from meterql.cli import main
    from meterql.server.app import create_app

    db = pg_database("modes", SETUP)
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg_cluster.uri(db))
        ws.sources.add("pg2", pg_cluster.uri(db))
    out = CliRunner().invoke(main, ["source", "set", "pg", "--mode", "auto", "--home", str(home)])
    assert out.exit_code == 0 and "source 'pg' is now in auto mode" in out.output
    out = CliRunner().invoke(main, ["sync", "--home", str(home)])
    assert out.exit_code == 0, out.output
    with meterql.connect(home) as ws:
        assert [m.rows for m in ws.sync.watermarks("pg")] == [5, 200]
        key = create_key(ws.keys, "admin", "admin key")[1]
        with TestClient(create_app(ws)) as client:
            answer = client.patch("/v1/sources/pg2", json={"mode": "auto"},
                                  headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200 and answer.json()["mode"] == "auto"
        assert ws.sources.get("pg2").mode == "auto"


def test_a_routed_query_is_bound_once_and_routed_each_time(auto, pg_cluster):
    ws, db = auto
    ws.sync("pg")
    sql = QUERIES[1].format(s="pg")
    ws.query(sql, max_staleness="1h")
    hits = ws._engine.plans.hits
    again = ws.query(sql, max_staleness="1h")
    assert ws._engine.plans.hits == hits + 1
    assert routes(again) == {"pg.public.usage": "replica"}
    # the same cached query under another bound: routed anew, to the source
    pg_cluster.run_sql("INSERT INTO usage VALUES (201, 1, 99)", dbname=db)
    live = ws.query(sql, max_staleness=0)
    assert routes(live) == {"pg.public.usage": "source"}
    assert live.rows() == rows(ws, QUERIES[1], "src")
    assert ws.query(sql, max_staleness="1h").rows() == again.rows()
