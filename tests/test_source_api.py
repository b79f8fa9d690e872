"""Sources over HTTP (admin): add, change, test, refresh, remove, with the same checks and
errors as in-process; and a source added over the network cannot make the server read its own
environment, files or local sockets (those go through the owner's socket)."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.client import Transport
from meterql.errors import UnknownSourceError
from meterql.server.app import create_app
from meterql.server.presence import read_presence
from tests.support.served import serve


def _sqlite(path) -> str:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'a'), (2, 'b')")
    con.commit()
    con.close()
    return f"sqlite://{path}"


@pytest.mark.parametrize("uri,named", [
    ("sqlite://{lite}", "a file of the server"),
    ("postgresql://u:env:HOME@127.0.0.1:1/db", "environment variable HOME"),
    ("postgresql://u@127.0.0.1:1/db?passfile=/etc/passwd", "'passfile'"),
    ("postgresql://u@127.0.0.1:1/db?sslkey=/etc/ssl/k", "'sslkey'"),
    ("postgresql://u@%2Fvar%2Frun%2Fpostgresql/db", "local socket folder"),
])
def test_a_network_caller_cannot_make_the_server_read_its_own_secrets(tmp_path, uri, named):
    lite = _sqlite(tmp_path / "lite.db").removeprefix("sqlite://")
    with meterql.connect(tmp_path / "home") as ws:
        keys = {s: create_key(ws.keys, s)[1] for s in ("ingest", "admin")}
        with TestClient(create_app(ws)) as client:
            body = {"name": "src", "uri": uri.format(lite=lite)}
            refused = client.post("/v1/sources", json=body,
                                  headers={"Authorization": f"Bearer {keys['admin']}"})
            assert refused.status_code == 403, refused.text
            assert refused.json()["title"] == "ScopeError" and named in refused.json()["detail"]
            assert "owner's socket" in refused.json()["hint"]
            ingest = client.post("/v1/sources", json=body,
                                 headers={"Authorization": f"Bearer {keys['ingest']}"})
            assert ingest.status_code == 403 and "needs the admin scope" in ingest.text
        assert ws.sources() == []  # nothing stored


@pytest.mark.postgres
def test_an_admin_key_adds_changes_and_removes_a_postgres_source(tmp_path, pg_cluster,
                                                                pg_database):
    db = pg_database("srcapi", "CREATE TABLE usage (id int PRIMARY KEY, qty int);"
                               "INSERT INTO usage VALUES (1, 5), (2, 7);")
    with meterql.connect(tmp_path / "home") as ws:
        admin = {"Authorization": f"Bearer {create_key(ws.keys, 'admin')[1]}"}
        with TestClient(create_app(ws)) as client:
            added = client.post("/v1/sources", headers=admin, json={
                "name": "pg", "uri": pg_cluster.uri(db) + "?sslmode=disable",
                "options": {"statement_timeout_ms": 5000}})
            assert added.status_code == 201, added.text
            shown = added.json()
            assert (shown["name"], shown["kind"], shown["mode"], shown["tables"]) == \
                ("pg", "postgres", "direct", 1)
            assert pg_cluster.password not in added.text and "***" in shown["uri"]
            again = client.post("/v1/sources", headers=admin, json={
                "name": "pg", "uri": pg_cluster.uri(db)})
            assert again.status_code == 409 and again.json()["title"] == "SourceExistsError"

            assert "PostgreSQL" in client.post("/v1/sources/pg/test",
                                               headers=admin).json()["version"]
            synced = client.patch("/v1/sources/pg", headers=admin, json={"mode": "sync"})
            assert synced.status_code == 200 and synced.json()["mode"] == "sync"
            assert ws.sources.get("pg").mode == "sync"
            assert client.post("/v1/sources/pg/refresh", headers=admin).json()["tables"] == 1
            described = client.get("/v1/tables/pg.public.usage?sample=0", headers=admin).json()
            assert described.get("statistics", {}).get("read_at") is not None, described
            assert described["statistics"]["indexes"] == [
                {"name": "usage_pkey", "columns": ["id"], "unique": True}]
            calibrated = client.post("/v1/sources/pg/calibrate", headers=admin)
            assert calibrated.status_code == 200, calibrated.text
            assert calibrated.json()["constants"] == ws.catalog.cost_constants("pg")
            assert {"round_trip_ms", "seq_row_ns"} <= set(calibrated.json()["constants"])
            ingest = {"Authorization": f"Bearer {create_key(ws.keys, 'ingest')[1]}"}
            refused = client.post("/v1/sources/pg/calibrate", headers=ingest)
            assert refused.status_code == 403
            gone = client.delete("/v1/sources/pg", headers=admin)
            assert gone.json() == {"removed": "pg"} and ws.sources() == []
            missing = client.post("/v1/sources/pgx/test", headers=admin)
            assert missing.status_code == 400, missing.text  # (UnknownSourceError: 400 today)
            assert missing.json()["title"] == "UnknownSourceError"


def test_the_owner_adds_a_file_source_through_its_socket(tmp_path):
    lite = _sqlite(tmp_path / "lite.db")
    home = tmp_path / "home"
    meterql.connect(home).close()
    with serve(home):
        owner = Transport.owner(read_presence(home))
        added = owner.json("POST", "/v1/sources", json={"name": "lite", "uri": lite})
        assert added["kind"] == "sqlite" and added["tables"] == 1
        assert owner.json("PATCH", "/v1/sources/lite",
                             json={"mode": "sync"})["mode"] == "sync"
        assert owner.json("DELETE", "/v1/sources/lite") == {"removed": "lite"}
        with pytest.raises(UnknownSourceError) as remote:
            owner.json("POST", "/v1/sources/lit/test")
    with meterql.connect(home) as ws:
        assert ws.sources() == []
        with pytest.raises(UnknownSourceError) as local:
            ws.sources.test("lit")
    assert str(remote.value) == str(local.value)
