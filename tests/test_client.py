"""The Python client (``meterql.connect(URL, key=...)``) and the CLI's ``--server`` against a real
``meterql serve``: the same Arrow types and rows as in-process for the differential suite's
queries, cancellation at the source, a revoked key refused on its very next request, and a read
key's scope."""

from __future__ import annotations

import os
import subprocess

import pyarrow as pa
import pytest

import meterql
from meterql.errors import AuthenticationError, QueryCancelledError, ScopeError
from tests.support.compare import assert_same_rows
from tests.support.dataset import HOST_TIMEZONE, host_timezone
from tests.support.served import METERQL, clean_env, new_key, serve
from tests.support.waiting import sleeping_backends, wait_until
from tests.test_differential import QUERIES

pytestmark = pytest.mark.postgres

#: A representative part of the differential suite: every kind of source and shape, with
#: parameters of each type (decimals, dates, times travel as JSON text and are bound typed).
SUBSET = [q for i, q in enumerate(QUERIES) if not q.marks and (i % 4 == 0 or q.params)]


@pytest.fixture(scope="module")
def served_billing(billing, tmp_path_factory):
    """The billing sources registered in a second workspace, held by a real server."""
    home = tmp_path_factory.mktemp("client") / "home"
    with host_timezone(HOST_TIMEZONE):
        with meterql.connect(home) as ws:
            ws.sources.add("pg", billing.pg_uri)
            ws.sources.add("lite", f"sqlite://{billing.sqlite_path}")
            ws.sources.add("dk", f"duckdb://{billing.duckdb_path}")
        keys = {scope: new_key(home, scope) for scope in ("read", "admin")}
        with serve(home) as served:
            yield served, keys


def test_the_subset_is_representative():
    assert len(SUBSET) >= 30
    assert {"pg", "lite", "dk"} <= {name for q in SUBSET for name in ("pg", "lite", "dk")
                                     if f"{name}." in q.sql}
    assert sum(bool(q.params) for q in SUBSET) >= 8


@pytest.mark.parametrize("q", [pytest.param(q, id=q.id) for q in SUBSET])
def test_the_client_answers_the_in_process_arrow(served_billing, billing, q):
    served, keys = served_billing
    with meterql.connect(served.base, key=keys["read"]) as client:
        try:
            local = billing.ws.query(q.sql, q.params).to_arrow()
        except meterql.MeterqlError as exc:  # (the suite's overflow and zero division cases)
            with pytest.raises(type(exc)) as refused:
                client.query(q.sql, q.params)
            assert str(refused.value) == str(exc)
            return
        remote = client.query(q.sql, q.params).to_arrow()
    assert remote.schema.remove_metadata() == local.schema.remove_metadata()
    assert_same_rows(remote, local, ordered=q.ordered)


def test_catalog_and_explain_through_the_client(served_billing, billing):
    served, keys = served_billing
    with meterql.connect(served.base, key=keys["read"]) as client:
        assert [(s.name, s.kind, s.mode) for s in client.sources()] == [
            (s.name, s.kind, s.mode) for s in billing.ws.sources()]
        assert client.tables() == billing.ws.tables()
        sql = "SELECT count(*) FROM pg.public.events WHERE customer_id = 42"
        assert str(client.explain(sql)) == str(billing.ws.explain(sql))
        with pytest.raises(meterql.errors.UnknownTableError, match="did you mean"):
            client.query("SELECT * FROM pg.public.evnts")
        remote, local = (w.tables.statistics("pg.public.events") for w in (client, billing.ws))
        assert remote.table == local.table and remote.rows == local.rows
        assert sorted(remote.indexes, key=str) == sorted(local.indexes, key=str)
        assert set(remote.columns) == set(local.columns)


def test_calibrate_through_the_client(served_billing):
    served, keys = served_billing
    with meterql.connect(served.base, key=keys["admin"]) as client:
        measured = client.sources.calibrate("lite")
    assert {"round_trip_ms", "seq_row_ns", "transfer_row_ns"} <= set(measured)


def test_submit_cancel_stops_the_query_at_the_source(pg_cluster, pg_database, tmp_path):
    db = pg_database("client_cancel", "CREATE VIEW slow AS SELECT 1 AS x FROM pg_sleep(30);")
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg_cluster.uri(db))
    key = new_key(home, "read")
    with serve(home) as served, meterql.connect(served.base, key=key) as client:
        running = client.submit("SELECT x FROM pg.public.slow")
        assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 1, timeout=10)
        running.cancel()
        with pytest.raises(QueryCancelledError):
            running.result(timeout=10)
        assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 0, timeout=5)
        assert client.query("SELECT 2 AS n FROM pg.public.slow LIMIT 0").num_rows == 0


def test_a_result_streamed_in_many_chunks_arrives_whole(tmp_path):
    import duckdb

    path = tmp_path / "big.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE big AS SELECT range AS id, 'c' || (range % 100) AS customer_id "
                "FROM range(300000)")  # about 4 MB as Arrow: streamed, not one body
    con.close()
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("dk", f"duckdb://{path}")
        local = ws.query("SELECT * FROM dk.main.big ORDER BY id").to_arrow()
    key = new_key(home, "read")
    with serve(home) as served, meterql.connect(served.base, key=key) as client:
        remote = client.query("SELECT * FROM dk.main.big ORDER BY id").to_arrow()
    assert remote.num_rows == 300_000 and remote.equals(local)


def test_a_revoked_key_is_refused_on_its_next_request(served_billing):
    served, keys = served_billing
    with meterql.connect(served.base, key=keys["admin"]) as admin:
        key_id, key = admin.keys.create("read", "short-lived")
        with meterql.connect(served.base, key=key) as reader:
            assert reader.query("SELECT 1 AS one FROM lite.main.customers LIMIT 1").to_pylist() \
                == [{"one": 1}]
            assert admin.keys.revoke(key_id) is True
            with pytest.raises(AuthenticationError):
                reader.query("SELECT 1 AS one FROM lite.main.customers LIMIT 1")
        assert admin.keys.revoke(key_id) is False  # (revoked already)


def test_a_read_key_queries_but_cannot_change_the_catalog(served_billing):
    served, keys = served_billing
    with meterql.connect(served.base, key=keys["read"]) as reader:
        assert isinstance(reader.query("SELECT 1 AS x FROM dk.main.prices LIMIT 1").to_arrow(),
                          pa.Table)
        with pytest.raises(ScopeError, match="admin"):
            reader.sources.add("x", "postgresql://u:p@db.example:5432/x")


def _cli(*args: str, key: str, server: str | None = None) -> subprocess.CompletedProcess:
    env = {**clean_env(), "METERQL_API_KEY": key}
    if server is not None:
        env["METERQL_SERVER"] = server
    return subprocess.run([METERQL, *args], capture_output=True, text=True, env=env, timeout=60)


def test_the_cli_with_server_and_a_read_key(served_billing, tmp_path):
    served, keys = served_billing
    out = _cli("--server", served.base, "query", "SELECT count(*) AS n FROM lite.main.customers",
               "-f", "csv", key=keys["read"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "n" and int(out.stdout.splitlines()[1]) > 0
    # the same through METERQL_SERVER
    env_out = _cli("query", "SELECT count(*) AS n FROM lite.main.customers", "-f", "csv",
                   key=keys["read"], server=served.base)
    assert env_out.stdout == out.stdout
    refused = _cli("--server", served.base, "source", "add", "x",
                   "postgresql://u:p@db.example:5432/x", key=keys["read"])
    assert refused.returncode == 1
    assert "needs the admin scope; the key has read" in refused.stderr
    both = _cli("--server", served.base, "tables", "--home", str(tmp_path), key=keys["read"])
    assert both.returncode == 2 and "drop --home" in both.stderr and "drop --server" in both.stderr
    wrong = _cli("--server", served.base, "tables", key="mq_00000000_nope")
    assert wrong.returncode == 1 and "API key is not valid" in wrong.stderr
    assert os.environ.get("METERQL_SERVER") is None  # (nothing leaked into this process)


def test_settings_and_keys_through_the_client(served_billing, billing):
    served, keys = served_billing
    with meterql.connect(served.base, key=keys["admin"]) as admin:
        assert admin.settings.get("http_max_body_mb") == billing.ws.settings.get(
            "http_max_body_mb")
        with pytest.raises(meterql.errors.InvalidSettingError, match="did you mean"):
            admin.settings.get("http_max_bdy_mb")
        assert admin.settings.set("http_max_body_mb", 3) == 3
        assert admin.settings.get("http_max_body_mb") == 3
        assert admin.settings.set("http_max_body_mb", None) == billing.ws.settings.get(
            "http_max_body_mb")
        listed = {k["id"]: k for k in admin.keys.list()}
        assert listed[keys["read"].split("_")[1]]["scope"] == "read"
