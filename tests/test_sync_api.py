"""``POST /v1/sync`` and ``PUT /v1/tables/{name}/sync`` (admin): the same runs, checks and
errors as ``meterql sync`` and ``meterql source strategy``."""

from __future__ import annotations

import sqlite3

from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.server.app import create_app


def test_sync_now_and_choose_a_strategy_over_http(tmp_path):
    lite = tmp_path / "lite.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE usage (id INTEGER PRIMARY KEY, qty INTEGER)")
    con.executemany("INSERT INTO usage VALUES (?, ?)", [(i, i * 10) for i in range(1, 6)])
    con.commit()
    con.close()
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("lite", f"sqlite://{lite}")
        keys = {s: create_key(ws.keys, s)[1] for s in ("read", "admin")}
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        with TestClient(create_app(ws)) as client:
            assert client.post("/v1/sync", json={}, headers={
                "Authorization": f"Bearer {keys['read']}"}).status_code == 403
            none = client.post("/v1/sync", json={}, headers=admin)
            assert none.status_code == 400 and "no source is in sync mode" in none.text

            ws.sources.set_mode("lite", "sync")
            ran = client.post("/v1/sync", json={}, headers=admin)
            assert ran.status_code == 200, ran.text
            [report] = ran.json()["reports"]
            assert (report["source"], report["rows"], report["error"]) == ("lite", 5, None)
            assert report["tables"][0]["strategy"] == "full"
            assert ws.query("SELECT sum(qty) AS s FROM lite.main.usage").to_pylist() == \
                [{"s": 150}]

            chosen = client.put("/v1/tables/lite.main.usage/sync", headers=admin,
                                json={"strategy": "append", "cursor": "ID", "lag": 2,
                                      "cluster_by": ["QTY"]})
            assert chosen.json() == {"table": "lite.main.usage", "strategy": "append",
                                     "cursor": "id", "lag": 2, "soft_delete": None,
                                     "cluster_by": ["qty"]}
            bad_key = client.put("/v1/tables/lite.main.usage/sync", headers=admin,
                                 json={"strategy": "full", "cluster_by": ["qtty"]})
            assert bad_key.status_code == 400 and "did you mean 'qty'" in bad_key.json()["hint"]
            too_many = client.put("/v1/tables/lite.main.usage/sync", headers=admin,
                                  json={"strategy": "full", "cluster_by": ["qty"] * 17})
            assert too_many.status_code == 422
            wrong = client.put("/v1/tables/lite.main.usage/sync", headers=admin,
                               json={"strategy": "merge", "cursor": "nope"})
            assert wrong.status_code == 400 and wrong.json()["title"] == "InvalidSourceError"
            assert "one of: id, qty" in wrong.json()["hint"]

            con = sqlite3.connect(lite)
            con.execute("INSERT INTO usage VALUES (6, 60)")
            con.commit()
            con.close()
            again = client.post("/v1/sync", json={"sources": ["lite"]}, headers=admin).json()
            assert again["reports"][0]["tables"][0]["strategy"] == "append"
            assert ws.query("SELECT sum(qty) AS s FROM lite.main.usage").to_pylist() == \
                [{"s": 210}]

            unknown = client.post("/v1/sync", json={"sources": ["lit"]}, headers=admin)
            assert unknown.status_code == 400 and "did you mean 'lite'" in unknown.text

            lite.write_bytes(b"not a database " * 512)  # the source fails: 207, its error
            failed = client.post("/v1/sync", json={}, headers=admin)
            assert failed.status_code == 207, failed.text
            [report] = failed.json()["reports"]
            assert report["error"] is not None and report["error"]["title"].endswith("Error")
            assert report["error"]["detail"]
            assert ws.query("SELECT sum(qty) AS s FROM lite.main.usage").to_pylist() == \
                [{"s": 210}]  # the replica keeps its last committed copy
