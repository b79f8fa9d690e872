"""The billing engine's main path through the documented API and CLI: the same amounts through
every route that takes them, decimals out in positional notation, conflicts as 409, times in
ISO 8601."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.cli import main
from meterql.server.app import create_app

NOW = datetime.now(UTC).replace(microsecond=0)
T = (NOW - timedelta(hours=1)).isoformat()
AMOUNTS = ["3.5", "0.000000123456", "12345678901234.123456789"]


@pytest.fixture()
def api(tmp_path):
    ws = meterql.connect(tmp_path / "home")
    key = create_key(ws.keys, "ingest")[1]
    ws.events.create_stream("usage", schema={"gb": "DECIMAL(38,12)"})
    ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(38,12)",
                                 "given": "TIMESTAMPTZ"}, ["customer_id"])
    client = TestClient(create_app(ws), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {key}"
    try:
        yield client, ws, tmp_path
    finally:
        client.close()
        ws.close()


def stored_gb(ws, event_id: str) -> Decimal:
    return ws.query("SELECT gb FROM local.events.usage WHERE id = :i", {"i": event_id}).rows()[0][0]


@pytest.mark.parametrize("amount", AMOUNTS)
def test_the_same_body_stores_the_same_amount_through_every_route(api, amount):
    client, ws, tmp_path = api
    body = '{"id": "%s", "timestamp": "%s", "customer_id": "acme", "gb": %s}'
    pushed = client.post("/v1/events/usage", content=body % ("e1", T, 1),
                         headers={"Content-Type": "application/json"})
    assert pushed.status_code == 200, pushed.text
    # an amend over HTTP with a JSON decimal (it was refused: "'gb': 3.5 is not a number")
    amended = client.post("/v1/events/usage/e1/amend", content=body % ("e1", T, amount),
                          headers={"Content-Type": "application/json"})
    assert amended.status_code == 200, amended.text
    over_http = stored_gb(ws, "e1")
    # the same body pushed, and amended through the CLI
    assert client.post("/v1/events/usage", content=body % ("e2", T, amount),
                       headers={"Content-Type": "application/json"}).status_code == 200
    ws.events.ingest("usage", [{"id": "e3", "timestamp": T, "customer_id": "acme", "gb": 1}])
    (tmp_path / "e3.json").write_text(body % ("e3", T, amount))
    ws.close()
    cli = CliRunner().invoke(main, ["events", "amend", "usage", "e3", str(tmp_path / "e3.json"),
                                    "--home", str(tmp_path / "home")])
    assert cli.exit_code == 0 and "e3: amended" in cli.output, cli.output
    with meterql.connect(tmp_path / "home") as again:
        assert {stored_gb(again, e) for e in ("e1", "e2", "e3")} == {over_http}
    assert over_http == Decimal(amount)


def test_manual_rows_keep_the_amount_and_answer_iso_times_and_409_for_a_taken_key(api):
    client, ws, _ = api
    row = {"values": {"customer_id": "acme", "amount": Decimal("0.000000123456"),
                      "given": "2026-10-31 23:00:00+00"}}
    made = client.post("/v1/tables/credits/rows", content=json.dumps(row, default=str).replace(
        '"0.000000123456"', "0.000000123456"), headers={"Content-Type": "application/json"})
    assert made.status_code == 201, made.text
    assert made.json() == {"customer_id": "acme", "amount": "0.000000123456",
                           "given": "2026-10-31T23:00:00+00:00"}
    again = client.post("/v1/tables/credits/rows", json={"values": {"customer_id": "acme",
                                                                    "amount": "1"}})
    assert again.status_code == 409, again.text
    assert again.json()["title"] == "ConflictError" and "update it instead" in again.text
    changed = client.patch("/v1/tables/credits/rows", json={
        "key": {"customer_id": "acme"}, "values": {"amount": "2"}})
    assert changed.json()["amount"] == "2.000000000000"


def test_decimals_leave_meterql_in_positional_notation(api):
    client, ws, tmp_path = api
    ws.events.ingest("usage", [
        {"id": "d1", "timestamp": T, "customer_id": "acme", "gb": Decimal("0")},
        {"id": "d2", "timestamp": T, "customer_id": "acme", "gb": Decimal("1.23456E-7")}])
    sql = "SELECT id, gb FROM local.events.usage ORDER BY id"
    key = create_key(ws.keys, "read")[1]
    as_json = client.post("/v1/query", json={"sql": sql}, headers={
        "Authorization": f"Bearer {key}"}).json()["rows"]
    assert as_json == [["d1", "0.000000000000"], ["d2", "0.000000123456"]]
    as_csv = client.post("/v1/query", json={"sql": sql}, headers={
        "Authorization": f"Bearer {key}", "Accept": "text/csv"}).text
    assert "E-" not in as_csv and "0.000000123456" in as_csv and "0.000000000000" in as_csv
    ws.close()
    for fmt in ("csv", "json", "jsonl", "table"):
        out = CliRunner().invoke(main, ["query", sql, "--format", fmt,
                                        "--home", str(tmp_path / "home")]).output
        assert "0.000000123456" in out and "E-" not in out, (fmt, out)
