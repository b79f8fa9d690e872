"""``GET /v1/status``: the server process, its sources (replicas and the sync schedule's turns)
and its event streams, for admin keys only, and no source URI in it."""

from __future__ import annotations

import os
import sqlite3

from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.server.app import create_app
from tests.support.waiting import wait_until


def _sqlite(path) -> str:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", [(i, f"c{i}") for i in range(1, 8)])
    con.commit()
    con.close()
    return f"sqlite://{path}"


def test_status_shows_owner_sources_schedule_and_streams(tmp_path):
    lite = tmp_path / "secret-named-file.db"
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("lite", _sqlite(lite))
        ws.sources.set_mode("lite", "sync")
        ws.events.create_stream("calls")
        keys = {s: create_key(ws.keys, s)[1] for s in ("read", "admin")}
        with TestClient(create_app(ws, sync=True, sync_every_s=3600)) as client:
            assert client.get("/v1/status").status_code == 401
            read = client.get("/v1/status", headers={"Authorization": f"Bearer {keys['read']}"})
            assert read.status_code == 403

            admin = {"Authorization": f"Bearer {keys['admin']}"}
            pushed = client.post("/v1/events/calls", headers=admin,
                                 json=[{"id": "e1", "timestamp": "2026-12-01T00:00:00Z",
                                        "customer_id": "acme"}])
            assert pushed.status_code == 200, pushed.text
            again = client.post(  # one new, one duplicate, one rejected: one more counted
                "/v1/events/calls", headers={**admin, "Content-Type": "application/x-ndjson"},
                content=b'{"id": "e2", "timestamp": "2026-12-01T00:00:00Z", "customer_id": "a"}\n'
                        b'{"id": "e1", "timestamp": "2026-12-01T00:00:00Z",'
                        b' "customer_id": "acme"}\n{"id": "e3"}\n')
            assert again.status_code == 207 and again.json()["accepted"] == 1, again.text
            ws.events.ingest("calls", [{"id": "e4", "timestamp": "2026-12-01T00:00:00Z",
                                        "customer_id": "b"}])

            def synced():
                body = client.get("/v1/status", headers=admin).json()
                return (body["sources"][0].get("schedule") or {}).get("last_run") is not None

            assert wait_until(synced, timeout=30, interval=0.1)
            ws.events.flush()
            response = client.get("/v1/status", headers=admin)
            assert response.status_code == 200
            body = response.json()

    assert body["version"] == meterql.__version__
    assert body["owner"]["pid"] == os.getpid() and body["owner"]["uptime_s"] >= 0
    assert body["sync"] == {"running": True, "every_s": 3600.0}
    [source] = body["sources"]
    assert (source["name"], source["kind"], source["mode"]) == ("lite", "sqlite", "sync")
    [replica] = source["replicas"]
    assert replica["table"].endswith("customers") and replica["rows"] == 7
    run = source["schedule"]["last_run"]
    assert run["ok"] is True and run["rows"] == 7 and run["attempt"] == 1 and run["error"] is None
    assert 3000 < source["schedule"]["next_turn_in_s"] <= 3600
    [stream] = body["streams"]
    assert stream["name"] == "calls" and stream["last_event_at"] is not None
    assert stream["accepted_since_start"] == 3 and stream["accepted_per_s"] == 3 / 60
    assert "secret-named-file" not in response.text  # no URI


def test_status_without_a_schedule(tmp_path):
    with meterql.connect(tmp_path / "home") as ws:
        key = create_key(ws.keys, "admin")[1]
        with TestClient(create_app(ws)) as client:
            body = client.get("/v1/status", headers={"Authorization": f"Bearer {key}"}).json()
    assert body["sync"] == {"running": False, "every_s": None}
    assert body["sources"] == [] and body["streams"] == []
