"""``GET /v1/settings`` and ``PUT /v1/settings/{name}`` (admin): the same settings, checks and
messages as ``meterql settings``, and a change applies to the very next request."""

from __future__ import annotations

from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.catalog.settings import SETTINGS
from meterql.server.app import create_app


def test_settings_are_listed_changed_checked_and_applied_at_once(tmp_path):
    with meterql.connect(tmp_path / "home") as ws:
        keys = {s: create_key(ws.keys, s)[1] for s in ("read", "admin")}
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        with TestClient(create_app(ws)) as client:
            assert client.get("/v1/settings").status_code == 401
            assert client.get("/v1/settings", headers={
                "Authorization": f"Bearer {keys['read']}"}).status_code == 403

            listed = client.get("/v1/settings", headers=admin).json()
            assert [e["name"] for e in listed] == list(SETTINGS)
            body_limit = next(e for e in listed if e["name"] == "http_max_body_mb")
            assert body_limit["value"] == body_limit["default"] == SETTINGS[
                "http_max_body_mb"].default and body_limit["meaning"]

            changed = client.put("/v1/settings/http_max_body_mb", headers=admin,
                                 json={"value": "1"})
            assert changed.json() == {"name": "http_max_body_mb", "value": 1}
            assert ws.settings.get("http_max_body_mb") == 1
            big = {"sql": "SELECT 1 AS x -- " + "x" * (2 << 20)}
            assert client.post("/v1/query", headers=admin, json=big).status_code == 413

            misspelt = client.put("/v1/settings/http_max_body", headers=admin,
                                  json={"value": 2})
            assert misspelt.status_code == 400
            assert "did you mean 'http_max_body_mb'" in misspelt.json()["hint"]
            out_of_range = client.put("/v1/settings/http_max_body_mb", headers=admin,
                                      json={"value": 0})
            assert out_of_range.status_code == 400
            assert "whole number from 1 to 1024" in out_of_range.json()["detail"]
            assert ws.settings.get("http_max_body_mb") == 1  # unchanged by the refusals

            reset = client.put("/v1/settings/http_max_body_mb", headers=admin,
                               json={"value": None})
            assert reset.json()["value"] == SETTINGS["http_max_body_mb"].default
            assert client.put("/v1/settings/http_max_body_mb", headers=admin,
                              json={"value": 5, "other": 1}).status_code == 422
