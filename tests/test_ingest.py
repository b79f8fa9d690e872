"""Ingestion: events (validation, de-duplication, corrections, backfills), CSV uploads and
manual rows, through Python and HTTP; and all of it queryable beside other sources."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.errors import DataError, IngestError, InvalidSourceError
from meterql.local.events import parse_body
from meterql.server.app import create_app

NOW = datetime.now(UTC).replace(microsecond=0)
T = (NOW - timedelta(hours=2)).isoformat()


def event(i, **fields):
    return {"id": f"e{i}", "timestamp": T, "customer_id": "acme", "qty": Decimal("1.5"),
            **fields}


@pytest.fixture()
def ws(tmp_path):
    with meterql.connect(tmp_path / "home") as workspace:
        yield workspace


def statuses(outcomes):
    return [o.status for o in outcomes]


def test_a_stream_is_created_by_its_first_event_and_grows_columns(ws):
    assert statuses(ws.events.ingest("calls", [event(1, region="eu")])) == ["accepted"]
    assert statuses(ws.events.ingest("calls", [event(2, tier=3, tags=["a"])])) == ["accepted"]
    columns = {c.name: c.type for c in ws.tables.get("local.events.calls").columns}
    assert columns["qty"] == "DECIMAL(38,9)" and columns["region"] == "VARCHAR"
    assert columns["tier"] == "BIGINT" and columns["tags"] == "JSON"
    assert columns["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    # numbers sent as strings are accepted for decimal fields, exactly
    ws.events.ingest("calls", [event(3, qty="0.000000001")])
    total = ws.query("SELECT sum(qty) AS q FROM local.events.calls").rows()[0][0]
    assert total == Decimal("3.000000001")
    # an integer field that receives a fraction widens to a decimal
    ws.events.ingest("calls", [event(4, tier=Decimal("2.5"))])
    assert ws.tables.get("local.events.calls").column("tier").type == "DECIMAL(38,9)"


def test_duplicates_within_and_across_batches(ws):
    first = ws.events.ingest("calls", [event(1), event(2), event(1), event(2, qty=9)])
    assert statuses(first) == ["accepted", "accepted", "duplicate", "rejected"]
    assert "earlier in this batch with a different body" in first[3].reason
    again = ws.events.ingest("calls", [event(1), event(2, qty=Decimal("7"))])
    assert statuses(again) == ["duplicate", "rejected"]
    assert "stored before with a different body" in again[1].reason
    assert ws.query("SELECT count(*), sum(qty) FROM local.events.calls").rows() == [
        (2, Decimal("3.000000000"))]


@pytest.mark.parametrize("bad,reason", [
    ({"timestamp": T, "customer_id": "a"}, "missing required field 'id'"),
    ({"id": "x", "customer_id": "a"}, "missing required field 'timestamp'"),
    ({"id": "x", "timestamp": T}, "missing required field 'customer_id'"),
    ({"id": "x", "timestamp": "yesterday", "customer_id": "a"}, "is not an ISO 8601 time"),
    ({"id": "x", "timestamp": (NOW + timedelta(hours=1)).isoformat(), "customer_id": "a"},
     "outside the accepted window"),
    ({"id": "x", "timestamp": (NOW - timedelta(days=40)).isoformat(), "customer_id": "a"},
     "outside the accepted window"),
    ({"id": "x", "timestamp": T, "customer_id": "a", "qty": "lots"}, "'lots' is not a number"),
    ({"id": "x", "timestamp": T, "customer_id": "a", "qty": Decimal("1.0000000001")},
     "more than 9 decimal places"),
    ({"id": "x", "timestamp": T, "customer_id": "a", "region": 5}, "5 is not a string"),
    ({"id": "x", "timestamp": T, "customer_id": "a", "_secret": 1}, "kept for meterql"),
    ("not an object", "not a JSON object"),
])
def test_invalid_events_are_rejected_with_the_reason(ws, bad, reason):
    ws.events.ingest("calls", [event(0, region="eu")])
    [outcome] = ws.events.ingest("calls", [bad])
    assert outcome.status == "rejected" and reason in outcome.reason
    assert ws.query("SELECT count(*) FROM local.events.calls").rows() == [(1,)]


def test_time_bounds_are_settings(ws):
    ws.settings.set("events_max_age_days", 400)
    old = (NOW - timedelta(days=100)).isoformat()
    assert statuses(ws.events.ingest("calls", [event(1, timestamp=old)])) == ["accepted"]


def test_ten_thousand_events_with_three_bad_ones(ws):
    batch = [event(i) for i in range(10_000)]
    batch[17]["qty"] = "x"
    batch[5000].pop("customer_id")
    batch[9999]["timestamp"] = "2000-01-01T00:00:00Z"
    outcomes = ws.events.ingest("calls", batch)
    rejected = [(o.index, o.id) for o in outcomes if o.status == "rejected"]
    assert rejected == [(17, "e17"), (5000, "e5000"), (9999, "e9999")]
    assert ws.query("SELECT count(*) FROM local.events.calls").rows() == [(9_997,)]


def test_a_declared_schema_is_enforced(ws):
    ws.events.create_stream("meters", id_field="event_id", timestamp_field="at",
                            customer_field="account", schema={"units": "DECIMAL(18,6)"})
    ok = {"event_id": "m1", "at": T, "account": "acme", "units": "2.5"}
    assert statuses(ws.events.ingest("meters", [ok])) == ["accepted"]
    [extra] = ws.events.ingest("meters", [{**ok, "event_id": "m2", "colour": "red"}])
    assert extra.status == "rejected" and "unknown field 'colour'" in extra.reason


@pytest.mark.parametrize("fields,message", [
    ({"id_field": ""}, "id_field '' is not a valid field name"),
    ({"customer_field": "_who"}, "customer_field '_who' is not a valid field name"),
    ({"schema": {"": "VARCHAR"}}, "column '' is not a valid field name"),
    ({"timestamp_field": "id"}, "must be three different fields, not id, id, customer_id"),
    ({"schema": {"units": "5"}}, "the declared columns of stream 'bad' are not valid"),
    ({"schema": {"units": "NOSUCHTYPE"}}, "the declared columns of stream 'bad' are not valid"),
])
def test_a_stream_that_cannot_be_created_is_refused_with_the_reason(ws, fields, message):
    with pytest.raises(IngestError, match=message):
        ws.events.create_stream("bad", **fields)
    assert [s.name for s in ws.events.streams()] == []  # nothing half-made
    assert ws.events.create_stream("bad").name == "bad"


def test_amend_and_void_keep_the_originals(ws):
    ws.events.ingest("calls", [event(1), event(2)])
    assert ws.events.amend("calls", "e1", {"timestamp": T, "customer_id": "acme",
                                           "qty": 4}).status == "amended"
    assert ws.events.void("calls", "e2", actor="ops").status == "voided"
    assert ws.query("SELECT id, qty FROM local.events.calls").rows() == [
        ("e1", Decimal("4.000000000"))]
    history = ws.events.history("calls")
    assert [(h["id"], h["action"]) for h in history] == [("e1", "amend"), ("e2", "void")]
    assert Decimal(str(history[0]["previous"]["qty"])) == Decimal("1.5")
    assert history[1]["actor"] == "ops"
    # the voided id stays taken: a retry of the original is a duplicate, not new usage
    assert statuses(ws.events.ingest("calls", [event(2)])) == ["duplicate"]
    with pytest.raises(IngestError, match="no stored event with id e9"):
        ws.events.void("calls", "e9")


def test_a_backfill_is_invisible_until_closed_and_can_be_reverted(ws):
    ws.events.ingest("calls", [event(1)])
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    backfill = ws.events.open_backfill("calls", start, end)
    old = [event(f"b{i}", timestamp=f"2025-01-{i + 1:02d}T12:00:00Z") for i in range(5)]
    outside = event("late", timestamp="2025-03-01T00:00:00Z")
    outcomes = ws.events.ingest("calls", [*old, outside], backfill=backfill)
    assert statuses(outcomes) == ["accepted"] * 5 + ["rejected"]
    assert "backfill" in outcomes[-1].reason
    count = "SELECT count(*) FROM local.events.calls"
    assert ws.query(count).rows() == [(1,)]  # open: not visible to usage queries
    assert ws.events.close_backfill(backfill)["state"] == "closed"
    assert ws.query(count).rows() == [(6,)]
    reverted = ws.events.revert_backfill(backfill)
    assert reverted["state"] == "reverted" and reverted["events"] == 5
    assert ws.query(count).rows() == [(1,)]
    with pytest.raises(IngestError, match="reverted"):
        ws.events.ingest("calls", old, backfill=backfill)


def test_csv_uploads(ws, tmp_path):
    prices = tmp_path / "prices.csv"
    prices.write_text("plan,price,since\nstarter,10.50,2026-01-01\ngrowth,49.999,2026-02-01\n")
    assert ws.uploads.load(prices, "prices").rows == 2
    again = ws.uploads.load(prices, "prices")
    assert again.status == "unchanged" and "nothing was added" in again.note
    assert ws.query("SELECT count(*) FROM local.uploads.prices").rows() == [(2,)]
    assert ws.tables.get("local.uploads.prices").column("price").type == "DECIMAL(38,9)"
    bad = tmp_path / "bad.csv"
    bad.write_text("plan,price,since\nscale,abc,2026-01-01\nok,2,2026-03-01\n"
                   "ent,1,2026-13-01\n")
    with pytest.raises(DataError) as excinfo:
        ws.uploads.load(bad, "prices")
    assert [(r["line"], r["column"]) for r in excinfo.value.details["rows"]] == [
        (2, "price"), (4, "since")]
    assert ws.query("SELECT count(*) FROM local.uploads.prices").rows() == [(2,)]  # nothing
    kept = ws.uploads.load(bad, "prices", keep_good=True)
    assert kept.rows == 1 and len(kept.rejected) == 2
    update = tmp_path / "update.csv"
    update.write_text("plan,price,since\nstarter,11,2026-01-01\n")
    ws.uploads.load(update, "prices", mode="upsert", key=["plan"])
    assert ws.query("SELECT plan, price FROM local.uploads.prices ORDER BY plan").rows() == [
        ("growth", Decimal("49.999000000")), ("ok", Decimal("2.000000000")),
        ("starter", Decimal("11.000000000"))]


def test_manual_rows_are_audited(ws):
    ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)"},
                     ["customer_id"], actor="ana")
    ws.manual.insert("credits", {"customer_id": "acme", "amount": "10.25"}, actor="ana")
    ws.manual.update("credits", {"customer_id": "acme"}, {"amount": "12"}, actor="bo")
    with pytest.raises(DataError, match="Duplicate key"):
        ws.manual.insert("credits", {"customer_id": "acme", "amount": "1"})
    with pytest.raises(DataError, match="DECIMAL"):
        ws.manual.insert("credits", {"customer_id": "bolt", "amount": "ten"})
    ws.manual.insert("credits", {"customer_id": "bolt", "amount": "1"}, actor="cy")
    ws.manual.delete("credits", {"customer_id": "bolt"}, actor="cy")
    trail = [(a["action"], a["actor"], a["before"], a["after"])
             for a in ws.manual.audit("credits")]
    assert trail == [
        ("create", "ana", None, {"columns": {"customer_id": "VARCHAR",
                                             "amount": "DECIMAL(18,2)"},
                                 "key": ["customer_id"]}),
        ("insert", "ana", None, {"customer_id": "acme", "amount": Decimal("10.25")}),
        ("update", "bo", {"customer_id": "acme", "amount": Decimal("10.25")},
         {"customer_id": "acme", "amount": Decimal("12.00")}),
        ("insert", "cy", None, {"customer_id": "bolt", "amount": Decimal("1.00")}),
        ("delete", "cy", {"customer_id": "bolt", "amount": Decimal("1.00")}, None),
    ]


def test_local_data_joins_other_sources_and_reports_its_watermark(ws, tmp_path):
    path = tmp_path / "crm.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers AS SELECT 'acme' AS id, 'growth' AS plan")
    con.close()
    ws.sources.add("crm", f"duckdb://{path}")
    ws.events.ingest("calls", [event(1), event(2)])
    ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)"},
                     ["customer_id"])
    ws.manual.insert("credits", {"customer_id": "acme", "amount": "0.5"})
    sql = """SELECT c.plan, sum(e.qty) - max(m.amount) AS net
             FROM local.events.calls e JOIN crm.main.customers c ON c.id = e.customer_id
             JOIN local.manual.credits m ON m.customer_id = e.customer_id GROUP BY c.plan"""
    result = ws.query(sql)
    assert result.rows() == [("growth", Decimal("2.500000000"))]
    marks = {m["table"]: m for m in result.watermarks}
    assert set(marks) == {"local.events.calls", "local.manual.credits"}
    assert marks["local.events.calls"]["last_ingest_at"] is not None
    ws.aggregates.save("calls", "SELECT customer_id, sum(qty) AS quantity FROM "
                       "local.events.calls WHERE timestamp >= :period_start AND timestamp < "
                       ":period_end GROUP BY ALL")
    day = NOW.date()
    ev = ws.aggregates.evaluate("calls", day - timedelta(days=1), day + timedelta(days=1))
    assert ev.provenance["watermarks"][0]["table"] == "local.events.calls"
    assert ev.rows()[0]["quantity"] == Decimal("3.000000000")


def test_local_is_not_a_registered_source(ws, tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "x.db").close()
    assert [s.name for s in ws.sources()] == []
    with pytest.raises(InvalidSourceError, match="reserved"):
        ws.sources.add("local", f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(InvalidSourceError, match="workspace's own data"):
        ws.sources.set_mode("local", "direct")


# -- HTTP ----------------------------------------------------------------------------------------
@pytest.fixture()
def api(ws):
    keys = {s: create_key(ws.keys, s)[1] for s in ("read", "ingest")}
    with TestClient(create_app(ws)) as client:
        yield client, keys, ws


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def test_an_unknown_stream_or_backfill_is_a_404_and_an_unreadable_body_a_400(api):
    client, keys, ws = api
    h = bearer(keys["ingest"])
    ws.events.ingest("calls", [event(1)])
    one = {"id": "x1", "timestamp": T, "customer_id": "acme"}
    for r in (client.post("/v1/events/nosuch/e1/void", headers=h),
              client.post("/v1/events/nosuch/backfills", headers=h,
                          json={"start": "2025-01-01", "end": "2025-02-01"})):
        assert r.status_code == 404 and r.json()["title"] == "UnknownStreamError", r.text
    for r in (client.get("/v1/backfills/bf_nope", headers=h),
              client.post("/v1/backfills/bf_nope/close", headers=h),
              client.post("/v1/backfills/bf_nope/revert", headers=h),
              client.post("/v1/events/calls?backfill=bf_nope", headers=h, json=one)):
        assert r.status_code == 404 and r.json()["title"] == "UnknownBackfillError", r.text
    for body, headers in ((b"\xff\n", {"Content-Type": "application/x-ndjson"}),
                          (b'{"id": ', {"Content-Type": "application/json"}),
                          (b"not gzip", {"Content-Type": "application/json",
                                         "Content-Encoding": "gzip"})):
        r = client.post("/v1/events/calls", headers={**h, **headers}, content=body)
        assert r.status_code == 400 and r.json()["title"] == "InvalidBodyError", r.text
    missing = client.post("/v1/events/calls/e9/void", headers=h)
    assert missing.status_code == 400 and missing.json()["title"] == "IngestError"
    assert ws.query("SELECT count(*) FROM local.events.calls").rows() == [(1,)]


def test_events_sent_as_csv_or_a_form_get_a_415_naming_the_upload_route(api):
    client, keys, ws = api
    h = bearer(keys["ingest"])
    ws.events.ingest("calls", [event(1)])
    before = ws.query("SELECT count(*) FROM local.events.calls").rows()
    for content_type in ("text/csv", "multipart/form-data; boundary=x",
                         "application/x-www-form-urlencoded"):
        r = client.post("/v1/events/calls", content=b'{"id": "c1"}',
                        headers={**h, "Content-Type": content_type})
        assert r.status_code == 415, r.text
        problem = r.json()
        assert problem["title"] == "UnsupportedMediaTypeError"
        assert f"sent as {content_type.split(';')[0]}" in problem["detail"]
        assert "/upload" in problem["hint"]
    # text/plain is still read as JSON (clients send it), and nothing above was stored
    plain = client.post("/v1/events/calls", headers={**h, "Content-Type": "text/plain"},
                        content=json.dumps({"id": "p1", "timestamp": T,
                                            "customer_id": "acme"}).encode())
    assert plain.status_code in (200, 201), plain.text
    after = ws.query("SELECT count(*) FROM local.events.calls").rows()
    assert after[0][0] == before[0][0] + 1


def test_push_formats_and_answers(api):
    client, keys, ws = api
    h = bearer(keys["ingest"])
    lines = [json.dumps({"id": f"n{i}", "timestamp": T, "customer_id": "acme", "qty": 1.25})
             for i in range(3)]
    body = gzip.compress(("\n".join(lines) + "\n{oops\n").encode())
    r = client.post("/v1/events/calls", content=body, headers={
        **h, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert r.status_code == 207
    assert (r.json()["accepted"], r.json()["rejected"]) == (3, 1)
    assert "line 4 is not JSON" in r.json()["results"][3]["reason"]
    one = client.post("/v1/events/calls", headers=h, json={
        "id": "o1", "timestamp": T, "customer_id": "bolt", "qty": "0.5"})
    assert one.status_code == 200 and one.json()["accepted"] == 1
    cloud = {"specversion": "1.0", "id": "c1", "type": "usage", "source": "app", "time": T,
             "subject": "cleo", "data": {"qty": 2}}
    r = client.post("/v1/events/calls", headers={
        **h, "Content-Type": "application/cloudevents-batch+json"},
        content=json.dumps([cloud, cloud]))
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "duplicate"]
    dup = client.post("/v1/events/calls", headers=h, json={
        "id": "o1", "timestamp": T, "customer_id": "bolt", "qty": "0.5"})
    assert dup.status_code == 200 and dup.json()["duplicate"] == 1
    allbad = client.post("/v1/events/calls", headers=h, json=[{"id": "z"}])
    assert allbad.status_code == 422
    assert allbad.headers["content-type"] == "application/problem+json"
    assert "missing required field" in allbad.json()["results"][0]["reason"]
    broken = client.post("/v1/events/calls", headers={**h, "Content-Type": "application/json"},
                         content=b'{"id": ')
    assert broken.status_code == 400 and "not JSON" in broken.json()["detail"]
    denied = client.post("/v1/events/calls", headers=bearer(keys["read"]), json={})
    assert denied.status_code == 403
    rows = client.post("/v1/query", headers=bearer(keys["read"]), json={
        "sql": "SELECT customer_id, sum(qty) AS q FROM local.events.calls GROUP BY 1 ORDER BY 1"})
    assert rows.json()["rows"] == [["acme", "3.750000000"], ["bolt", "0.500000000"],
                                   ["cleo", "2.000000000"]]


def test_corrections_backfills_uploads_and_rows_over_http(api):
    client, keys, ws = api
    h = bearer(keys["ingest"])
    client.post("/v1/events/calls", headers=h, json=[
        {"id": "a", "timestamp": T, "customer_id": "acme", "qty": 1}])
    amended = client.post("/v1/events/calls/a/amend", headers=h,
                          json={"timestamp": T, "customer_id": "acme", "qty": 5})
    assert amended.json()["status"] == "amended"
    opened = client.post("/v1/events/calls/backfills", headers=h,
                         json={"start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"})
    backfill = opened.json()["id"]
    pushed = client.post(f"/v1/events/calls?backfill={backfill}", headers=h, json=[
        {"id": "old", "timestamp": "2025-01-10T00:00:00Z", "customer_id": "acme", "qty": 2}])
    assert pushed.json()["accepted"] == 1
    assert client.post(f"/v1/backfills/{backfill}/close", headers=h).json()["state"] == "closed"
    assert ws.query("SELECT sum(qty) FROM local.events.calls").rows()[0][0] == 7
    upload = client.post("/v1/tables/prices/upload", headers=h,
                         files={"file": ("p.csv", b"plan,price\nstarter,10.5\n", "text/csv")})
    assert upload.status_code == 201 and upload.json()["rows"] == 1
    again = client.post("/v1/tables/prices/upload", headers=h,
                        files={"file": ("p.csv", b"plan,price\nstarter,10.5\n", "text/csv")})
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    bad = client.post("/v1/tables/prices/upload", headers=h,
                      files={"file": ("b.csv", b"plan,price\nx,abc\n", "text/csv")})
    assert bad.status_code == 422 and bad.json()["rows"][0]["line"] == 2
    ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)"},
                     ["customer_id"])
    made = client.post("/v1/tables/credits/rows", headers=h,
                       json={"values": {"customer_id": "acme", "amount": "3"}})
    assert made.status_code == 201 and made.json()["amount"] == "3.00"
    changed = client.patch("/v1/tables/credits/rows", headers=h,
                           json={"key": {"customer_id": "acme"}, "values": {"amount": "4"}})
    assert changed.json()["amount"] == "4.00"
    gone = client.request("DELETE", "/v1/tables/credits/rows", headers=h,
                          json={"key": {"customer_id": "acme"}})
    assert gone.status_code == 204
    actors = {a["actor"] for a in ws.manual.audit("credits") if a["action"] != "create"}
    assert actors == {keys["ingest"].split("_")[1]}  # the key's id, never the key


def test_parse_body_shapes():
    assert parse_body(b'{"a": 1.5}', "application/json") == [{"a": Decimal("1.5")}]
    assert parse_body(b'[{"a": 1}, 2]', "application/json") == [{"a": 1}, 2]
    events = parse_body(b'{"a": 1}\n\n{"b": 2}\n', "application/x-ndjson")
    assert events == [{"a": 1}, {"b": 2}]
    [bad] = parse_body(b'{"data": 1}', "application/cloudevents+json")
    assert "not a CloudEvent" in bad.reason
    assert date  # imported for readers of the aggregate test above


def test_an_ndjson_line_with_two_values_is_not_two_events():
    events = parse_body(b'{"a": 1}\n{"b": 2}, {"c": 3}\n', "application/x-ndjson")
    assert events[0] == {"a": 1} and len(events) == 2
    assert "line 2 is not JSON" in events[1].reason


def test_columnar_and_event_by_event_paths_store_the_same(tmp_path):
    lines = [json.dumps({"id": f"e{i}", "timestamp": T, "customer_id": f"c{i % 3}",
                         "qty": f"{i}.25", "n": i}).replace('"qty": "', '"qty": ')
             .replace('.25"', ".25") for i in range(50)]
    body = ("\n".join(lines) + "\n").encode()
    results = []
    for path in ("columns", "events"):
        with meterql.connect(tmp_path / path) as ws:
            ws.events.ingest("calls", [event("seed", n=1)])  # the stream and its columns
            if path == "columns":
                outcomes = ws.events.ingest_body("calls", body, "application/x-ndjson")
            else:
                outcomes = ws.events.ingest("calls", parse_body(body, "application/x-ndjson"))
            again = ws.events.ingest_body("calls", body, "application/x-ndjson")
            rows = ws.query("SELECT * EXCLUDE (_ingested_at) FROM local.events.calls "
                            "ORDER BY id").rows()
            results.append((statuses(outcomes), statuses(again), rows))
    assert results[0] == results[1]
    assert results[0][0] == ["accepted"] * 50 and results[0][1] == ["duplicate"] * 50
    first = dict(zip(["id", "timestamp", "customer_id", "_backfill", "qty", "n"],
                     results[0][2][0], strict=True))
    assert first["id"] == "e0" and first["qty"] == Decimal("0.250000000") and first["n"] == 0


def test_a_batch_with_one_bad_event_still_gets_reasons(ws):
    ws.events.ingest("calls", [event("seed")])
    lines = [json.dumps({"id": f"e{i}", "timestamp": T, "customer_id": "acme"})
             for i in range(5)]
    lines[3] = json.dumps({"id": "e3", "timestamp": T})
    outcomes = ws.events.ingest_body("calls", "\n".join(lines).encode(), "application/x-ndjson")
    assert statuses(outcomes) == ["accepted"] * 3 + ["rejected", "accepted"]
    assert "missing required field 'customer_id'" in outcomes[3].reason


def test_concurrent_batches_with_overlapping_ids_store_each_event_once(ws):
    import threading

    ws.events.ingest("calls", [event("seed")])  # known stream: batches go the columnar way

    def body(start):
        return "\n".join(json.dumps({"id": f"o{i}", "timestamp": T, "customer_id": "acme",
                                     "qty": 1.5}) for i in range(start, start + 200)).encode()

    answers: list[list] = []
    lock = threading.Lock()

    def push(start):
        outcomes = ws.events.ingest_body("calls", body(start), "application/x-ndjson")
        with lock:
            answers.append(outcomes)

    threads = [threading.Thread(target=push, args=(s,)) for s in (0, 100, 200, 300, 0, 150)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [o.id for outcomes in answers for o in outcomes if o.status == "accepted"]
    assert sorted(accepted) == sorted(f"o{i}" for i in range(500))  # each id accepted once
    others = {o.status for outcomes in answers for o in outcomes if o.status != "accepted"}
    assert others == {"duplicate"}
    assert ws.query("SELECT count(*), count(DISTINCT id) FROM local.events.calls").rows() == [
        (501, 501)]


def test_stream_shapes_are_cached_once_committed_and_a_rollback_drops_them(ws):
    ws.events.ingest("calls", [event(1)])
    schemas = ws.events._schemas
    before = schemas.cached("calls")
    with pytest.raises(RuntimeError), schemas.transaction() as tx:
        tx.change_columns(tx.config("calls"), {"region": "VARCHAR"}, {})
        assert tx.config("calls").columns["region"] == "VARCHAR"
        assert schemas.cached("calls") is before  # (not published before the commit)
        raise RuntimeError("rolled back")
    assert schemas.cached("calls") is before
    assert "region" not in ws.events.stream("calls").columns
    with schemas.transaction() as tx:
        tx.change_columns(tx.config("calls"), {"region": "VARCHAR"}, {})
    assert schemas.cached("calls").columns["region"] == "VARCHAR"
    assert "region" not in before.columns  # (a shape once made never changes)
    with pytest.raises(TypeError):
        before.columns["region"] = "VARCHAR"


def test_a_stream_declared_over_http_is_enforced(api):
    client, keys, _ = api
    h = bearer(keys["ingest"])
    made = client.put("/v1/events/meters", headers=h, json={
        "id_field": "event_id", "customer_field": "account",
        "columns": {"units": "DECIMAL(18,6)"}})
    assert made.status_code == 201 and made.json()["declared"] is True
    ok = {"event_id": "m1", "timestamp": T, "account": "acme", "units": "1.5"}
    assert client.post("/v1/events/meters", headers=h, json=ok).json()["accepted"] == 1
    extra = client.post("/v1/events/meters", headers=h, json={**ok, "event_id": "m2", "x": 1})
    assert extra.status_code == 422
    assert "unknown field 'x'" in extra.json()["results"][0]["reason"]
    again = client.put("/v1/events/meters", headers=h, json={})
    assert again.status_code == 400 and "exists" in again.json()["detail"]
    nameless = client.put("/v1/events/other", headers=h, json={"columns": {"": "5"}})
    assert nameless.status_code == 400  # (was a 500: DuckDB's parser error)
    assert nameless.headers["content-type"] == "application/problem+json"
    assert "column '' is not a valid field name" in nameless.json()["detail"]


def test_a_streams_watermark_is_its_last_commit_and_survives_a_restart(tmp_path):
    home = tmp_path / "ws"
    with meterql.connect(home) as ws:
        before = datetime.now(UTC)
        ws.events.ingest("calls", [event(1)])
        first = ws._local.watermark("local.events.calls")["last_ingest_at"]
        ws.events.ingest_body("calls", (json.dumps(event(2), default=str) + "\n").encode(),
                              "application/x-ndjson")
        second = ws._local.watermark("local.events.calls")["last_ingest_at"]
        assert before.isoformat() <= first < second <= datetime.now(UTC).isoformat()
        stored = ws.query("SELECT max(_ingested_at) AS m FROM local.events.calls").rows()[0][0]
        assert stored.isoformat() == second  # the rows carry the watermark itself
    with meterql.connect(home) as ws:  # nothing in memory: read back from the rows
        assert ws._local.watermark("local.events.calls")["last_ingest_at"] == second
        ws.events.void("calls", "e1")  # a correction moves it too
        assert ws._local.watermark("local.events.calls")["last_ingest_at"] > second


def test_a_columnar_batch_with_one_stored_id_is_rewritten_id_by_id(ws):
    ws.events.ingest("calls", [event(1)])  # known stream: NDJSON batches go the columnar way

    def ndjson(*events):
        return "\n".join(json.dumps(e, default=str) for e in events).encode()

    out = ws.events.ingest_body("calls", ndjson(event(2), event(1), event(3)),
                                "application/x-ndjson")
    assert statuses(out) == ["accepted", "duplicate", "accepted"]
    out = ws.events.ingest_body("calls", ndjson(event(4), event(3, qty=Decimal("2"))),
                                "application/x-ndjson")
    assert statuses(out) == ["accepted", "rejected"]
    assert "stored before with a different body" in out[1].reason
    assert ws.query("SELECT list(id ORDER BY id), sum(qty) FROM local.events.calls").rows() == [
        (["e1", "e2", "e3", "e4"], Decimal("6.000000000"))]


def test_the_push_answer_is_the_outcomes_described():
    from meterql.local.events import Outcome, answer_json

    outcomes = [Outcome(0, "e1", "accepted"), Outcome(1, 'ü"\\\n', "accepted"),
                Outcome(2, None, "rejected", 'line 3 is not JSON: "x"'),
                Outcome(3, "e1", "duplicate", "the same event arrived earlier in this batch")]
    counts = {"accepted": 2, "duplicate": 1, "rejected": 1}
    assert json.loads(answer_json(counts, outcomes)) == {
        **counts, "results": [o.describe() for o in outcomes]}


def test_a_push_cancelled_while_queued_is_dropped_and_the_writer_goes_on(ws):
    import asyncio

    ws.events.ingest("calls", [event(0)])

    def body(i):  # (a new field each time: the transactional way, which adds the column)
        return json.dumps({**event(i), f"extra{i}": "x"}, default=str).encode()

    async def scenario():
        with ws._local._lock:  # the writer waits for the store: requests queue up behind it
            first = asyncio.create_task(
                ws.events.ingest_body_async("calls", body(1), "application/json"))
            await asyncio.sleep(0.2)  # the writer has taken `first` and waits for the lock
            second = asyncio.create_task(
                ws.events.ingest_body_async("calls", body(2), "application/json"))
            await asyncio.sleep(0.05)
            second.cancel()  # its client went away while it was queued
        assert statuses(await first) == ["accepted"]
        with pytest.raises(asyncio.CancelledError):
            await second
        return await asyncio.wait_for(  # (a dead writer would never answer)
            ws.events.ingest_body_async("calls", body(3), "application/json"), 10)

    assert statuses(asyncio.run(scenario())) == ["accepted"]
    assert ws.query("SELECT list(id ORDER BY id) FROM local.events.calls").rows() == [
        (["e0", "e1", "e3"],)]


def test_a_backfill_does_not_move_the_watermark_until_closed(tmp_path):
    home = tmp_path / "ws"
    with meterql.connect(home) as ws:
        ws.events.ingest("calls", [event(1)])
        first = ws._local.watermark("local.events.calls")["last_ingest_at"]
        backfill = ws.events.open_backfill("calls", NOW - timedelta(days=3), NOW)
        out = ws.events.ingest("calls", [event(2)], backfill=backfill)
        assert statuses(out) == ["accepted"]
        assert ws._local.watermark("local.events.calls")["last_ingest_at"] == first
    with meterql.connect(home) as ws:
        assert ws._local.watermark("local.events.calls")["last_ingest_at"] == first
        ws.events.close_backfill(backfill)
        assert ws._local.watermark("local.events.calls")["last_ingest_at"] > first


def test_ndjson_requests_written_together_keep_their_own_answers(ws):
    import threading
    import time

    def line(*events):
        return ("".join(json.dumps(e, default=str) for e in events) + "\n").encode()

    a, b = line(event("a1"), event("a2")), line(event("b1"))  # a: two values on one line
    answers = {}

    def push(name, body):
        answers[name] = ws.events.ingest_body("calls", body, "application/x-ndjson")

    def until(condition):
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert condition()

    threads = [threading.Thread(target=push, args=("c", line(event("c1"))))]
    with ws._local._lock:  # the writer takes c, then waits for the store
        threads[0].start()
        until(lambda: ws.events._writer._thread is not None and not ws.events._writer._queue)
        threads += [threading.Thread(target=push, args=x) for x in (("a", a), ("b", b))]
        for t in threads[1:]:
            t.start()
        until(lambda: len(ws.events._writer._queue) == 2)  # a and b: written as one group
    for t in threads:
        t.join()
    assert [o.status for o in answers["a"]] == ["rejected"]
    assert "line 1 is not JSON" in answers["a"][0].reason
    assert [(o.index, o.id, o.status) for o in answers["b"]] == [(0, "eb1", "accepted")]


def test_a_dropped_workspace_is_not_kept_open_by_the_events_writer(tmp_path):
    import gc
    import time

    from meterql.local.events import group_commit

    def ingest_without_close():
        ws = meterql.connect(tmp_path / "ws")
        ws.events.ingest("calls", [event(1)])

    ingest_without_close()
    time.sleep(group_commit.IDLE_S + 0.5)  # the writer thread ends when idle
    gc.collect()
    with meterql.connect(tmp_path / "ws") as ws:  # the lock was released
        assert ws.query("SELECT count(*) FROM local.events.calls").rows() == [(1,)]


def test_events_after_close_are_refused_as_unavailable(tmp_path):
    from meterql.errors import WorkspaceError

    ws = meterql.connect(tmp_path / "ws")
    ws.close()
    with pytest.raises(WorkspaceError, match="closed"):
        ws.events.ingest("calls", [event(1)])


def test_integers_beyond_64_bits_are_exact_decimals_or_rejected(ws):
    out = ws.events.ingest("calls", [event(1, big=2**70), event(2, huge=10**40), event(3)])
    assert statuses(out) == ["accepted", "rejected", "accepted"]
    assert "field 'huge'" in out[1].reason and "too large" in out[1].reason
    assert ws.query("SELECT id, big FROM local.events.calls ORDER BY id").rows() == [
        ("e1", Decimal(2**70)), ("e3", None)]
    assert ws.events.stream("calls").columns["big"] == "DECIMAL(38,9)"
    out = ws.events.ingest("calls", [event(4, qty=Decimal("1e40")), event(5, big=Decimal("1.5"))])
    assert statuses(out) == ["rejected", "accepted"]  # (the first used to fail the request)
    assert "too large" in out[0].reason


# -- exact numbers in uploads and manual rows ----------------------------------------------------
EXACT_CASES = [  # (text, column type): Python and SQL must agree, with and without rounding
    (text, typ) for typ in ("DECIMAL(18,2)", "DECIMAL(3,2)", "DECIMAL(38,9)", "INTEGER",
                            "TINYINT", "UBIGINT")
    for text in ("12.34", "12.345", "1.005", "-1.005", "1.50", "1.500", "100e-2", "1e-3", "1E2",
                 " 7 ", "\t7", "abc", "", "1_000", ".5", "5.", "+.5e1", "1e400", "-1",
                 "99999999999999999.99", "9.999", "2.5", "-2.5", "1.0", "-129", "0.0000000001",
                 "1e-99999999999999999999", "1e-999999", "1e999999", "1.2.3", "0x10", "inf",
                 "NaN", "1 000", "- 1", "1-", "++1", ".", "-.0", "1.5E+06", "5e-3", "-5e-3",
                 "0.1e1", "1e30")]


@pytest.mark.parametrize("round_decimals", [False, True])
def test_exact_numbers_are_checked_alike_in_python_and_in_sql(round_decimals):
    from meterql.local.exact import fit_number, parse_number, text_check

    con = duckdb.connect()
    for text, typ in EXACT_CASES:
        number = parse_number(text)
        try:
            python = ("ok", fit_number(number, typ, round_decimals)) if number is not None \
                else ("refused", None)
        except ValueError:
            python = ("refused", None)
        value, reason = text_check("cell", typ, round_decimals)
        got, why = con.execute(f"SELECT {value}, {reason} FROM (SELECT ?::VARCHAR AS cell)",
                               [text]).fetchall()[0]
        sql = ("ok", got) if why is None else ("refused", None)
        assert python == sql, (text, typ, why)
    # the rule itself: refused unless asked, then rounded half away from zero, as DuckDB does
    assert fit_number(Decimal("1.50"), "DECIMAL(18,2)") == Decimal("1.50")
    for text, typ, rounded in (("12.345", "DECIMAL(18,2)", "12.35"),
                               ("-1.005", "DECIMAL(18,2)", "-1.01"), ("2.5", "INTEGER", "3")):
        with pytest.raises(ValueError, match="decimal places|whole number"):
            fit_number(Decimal(text), typ)
        assert fit_number(Decimal(text), typ, round_decimals=True) == Decimal(rounded)


def test_manual_numbers_are_refused_not_rounded_unless_asked(ws):
    ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)",
                                 "units": "INTEGER"}, ["customer_id"])
    for value in ("12.345", 1.999, Decimal("1.005"), "1e-3"):
        with pytest.raises(DataError) as excinfo:
            ws.manual.insert("credits", {"customer_id": "acme", "amount": value})
        assert "column amount" in str(excinfo.value) and "more than 2 decimal places" in str(
            excinfo.value) and "--round" in excinfo.value.hint
        assert excinfo.value.details["rows"][0]["column"] == "amount"
        assert excinfo.value.details["rows"][0]["value"] == str(value)
    with pytest.raises(DataError, match="column units: 2.5 is not a whole number"):
        ws.manual.insert("credits", {"customer_id": "acme", "units": "2.5"})
    with pytest.raises(DataError, match="out of range for DECIMAL"):
        ws.manual.insert("credits", {"customer_id": "acme", "amount": "1e16"})
    assert ws.query("SELECT count(*) FROM local.manual.credits").rows() == [(0,)]
    assert [a["action"] for a in ws.manual.audit("credits")] == ["create"]  # nothing stored
    # exact values of every kind are taken; rounding only when asked for, half away from zero
    assert ws.manual.insert("credits", {"customer_id": "acme", "amount": 1.5, "units": "1e3"}
                            ) == {"customer_id": "acme", "amount": Decimal("1.50"), "units": 1000}
    row = ws.manual.insert("credits", {"customer_id": "bolt", "amount": "12.345",
                                       "units": -2.5}, round_decimals=True)
    assert (row["amount"], row["units"]) == (Decimal("12.35"), -3)
    with pytest.raises(DataError, match="more than 2 decimal places"):
        ws.manual.update("credits", {"customer_id": "acme"}, {"amount": "1.999"})
    assert ws.manual.update("credits", {"customer_id": "acme"}, {"amount": "1.999"},
                            round_decimals=True)["amount"] == Decimal("2.00")


@pytest.mark.parametrize("column,value,reason", [
    ("amount", True, "true is a boolean, not a number (DECIMAL(18,2))"),
    ("units", False, "false is a boolean, not a number (INTEGER)"),
    ("paid", 1, "1 is a number, not a boolean (BOOLEAN)"),
    ("note", 5, "5 is a number, not text (VARCHAR)"),
    ("note", True, "true is a boolean, not text (VARCHAR)"),
    ("note", {"a": 1}, '{"a": 1} is an object, not text (VARCHAR)'),
    ("amount", [1], "[1] is a list, not a number (DECIMAL(18,2))"),
    ("since", 20260101, "20260101 is a number, not text (DATE)"),
    ("amount", "ten", '"ten" is not a number (DECIMAL(18,2))'),
    ("meta", "{oops", '"{oops" is not JSON text (JSON)'),
])
def test_a_manual_value_must_be_of_its_columns_kind(ws, column, value, reason):
    ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)",
                                 "units": "INTEGER", "paid": "BOOLEAN", "note": "VARCHAR",
                                 "since": "DATE", "meta": "JSON"}, ["customer_id"])
    with pytest.raises(DataError) as excinfo:
        ws.manual.insert("credits", {"customer_id": "acme", column: value})
    assert str(excinfo.value).startswith(f"local.manual.credits: column {column}: {reason}")
    assert excinfo.value.details["rows"][0]["reason"] == reason
    assert ws.query("SELECT count(*) FROM local.manual.credits").rows() == [(0,)]


def test_manual_values_of_their_kind_and_text_are_taken(ws):
    ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)",
                                 "paid": "BOOLEAN", "since": "DATE", "meta": "JSON",
                                 "tags": "VARCHAR[]"}, ["customer_id"])
    # text, as the CLI sends every value, is cast by DuckDB
    assert ws.manual.insert("credits", {"customer_id": "acme", "amount": "25", "paid": "true",
                                        "since": "2026-01-01", "meta": '{"a": 1}',
                                        "tags": "[x, y]"}) == {
        "customer_id": "acme", "amount": Decimal("25.00"), "paid": True,
        "since": date(2026, 1, 1), "meta": {"a": 1}, "tags": ["x", "y"]}
    # JSON values of any kind into a JSON column, numbers exactly as given
    row = ws.manual.insert("credits", {"customer_id": "bolt", "paid": False,
                                       "since": date(2026, 2, 1), "tags": ["z"],
                                       "meta": {"n": [1, "a", Decimal("0.10"), None, True]}})
    assert row["meta"] == {"n": [1, "a", Decimal("0.10"), None, True]}  # (not ["1","a",...])
    assert ws.query("SELECT meta::VARCHAR FROM local.manual.credits WHERE customer_id = 'bolt'"
                    ).rows() == [('{"n":[1,"a",0.10,null,true]}',)]
    assert ws.manual.insert("credits", {"customer_id": "cleo", "meta": 7})["meta"] == 7


def test_manual_rows_without_values_or_with_a_bad_key_are_refused(ws):
    ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)"},
                     ["customer_id"])
    with pytest.raises(IngestError, match="needs values"):
        ws.manual.insert("credits", {})
    with pytest.raises(DataError, match="the key column customer_id needs a value"):
        ws.manual.insert("credits", {"amount": "1"})
    with pytest.raises(DataError, match="has no column 'amout'") as excinfo:
        ws.manual.insert("credits", {"customer_id": "acme", "amout": "1"})
    assert excinfo.value.hint == "its columns: customer_id, amount"
    ws.manual.insert("credits", {"customer_id": "acme", "amount": "1"})
    with pytest.raises(IngestError, match="no change given"):
        ws.manual.update("credits", {"customer_id": "acme"}, {})
    for call in (lambda key: ws.manual.update("credits", key, {"amount": "2"}),
                 lambda key: ws.manual.delete("credits", key)):
        with pytest.raises(DataError, match=r'key column customer_id: \{"a": 1\} is an object'):
            call({"customer_id": {"a": 1}})
    with pytest.raises(DataError, match="every key column needs a value"):
        ws.manual.update("credits", {"customer_id": "acme"}, {"customer_id": None})


def test_csv_numbers_are_refused_not_rounded_unless_asked(ws):
    columns = {"customer": "VARCHAR", "amount": "DECIMAL(18,2)", "units": "BIGINT",
               "since": "DATE"}
    data = (b"customer,amount,units,since\n"
            b"acme,10.50,1,2026-01-01\n"
            b"bolt,1.005,2,2026-01-02\n"
            b"cleo,2.5,2.5,2026-13-01\n"
            b"dino,\"-1.005\",3,2026-01-04\n"
            b"emma,1e-3,4,2026-01-05\n")
    with pytest.raises(DataError) as excinfo:
        ws.uploads.load(data, "bills", columns=columns)
    assert "line 3: 1.005 has more than 2 decimal places (DECIMAL(18,2))" in str(excinfo.value)
    assert "--round" in excinfo.value.hint
    assert [(r["line"], r["column"], r["value"]) for r in excinfo.value.details["rows"]] == [
        (3, "amount", "1.005"), (4, "since", None), (5, "amount", "-1.005"),
        (6, "amount", "1e-3")]
    assert "local.uploads.bills" not in [t.full_name for t in ws.tables("local")]
    # rounding only when asked for: half away from zero, as DuckDB casts
    assert ws.uploads.load(data.replace(b"2026-13-01", b"2026-01-03").replace(b"2.5,2.5", b"2.5,2"),
                       "bills", columns=columns, round_decimals=True).rows == 5
    assert ws.query("SELECT customer, amount FROM local.uploads.bills ORDER BY customer").rows() \
        == [("acme", Decimal("10.50")), ("bolt", Decimal("1.01")), ("cleo", Decimal("2.50")),
            ("dino", Decimal("-1.01")), ("emma", Decimal("0.00"))]
    # appending reads with the table's types: the same check
    more = b"customer,amount,units,since\nfred,3.333,5,2026-02-01\ngina,3.30,6,2026-02-02\n"
    with pytest.raises(DataError, match="line 2: 3.333 has more than 2 decimal places"):
        ws.uploads.load(more, "bills")
    kept = ws.uploads.load(more, "bills", keep_good=True)
    assert kept.rows == 1 and kept.rejected == [
        {"line": 2, "column": "amount", "value": "3.333",
         "reason": "3.333 has more than 2 decimal places (DECIMAL(18,2))"}]
    assert ws.query("SELECT sum(amount) FROM local.uploads.bills").rows() == [
        (Decimal("16.30"),)]
    # an integer column does not round either
    with pytest.raises(DataError, match=r"line 2: 2\.5 is not a whole number \(BIGINT\)"):
        ws.uploads.load(b"customer,amount,units,since\nhugo,1,2.5,2026-03-01\n", "bills")


def test_csv_sniffed_decimals_keep_their_nine_places(ws):
    with pytest.raises(DataError) as excinfo:
        ws.uploads.load(b"plan,price\nstarter,0.1234567891\ngrowth,2\n", "prices")
    assert excinfo.value.details["rows"] == [{
        "line": 2, "column": "price", "value": "0.1234567891",
        "reason": "0.1234567891 has more than 9 decimal places (DECIMAL(38,9))"}]
    ws.uploads.load(b"plan,price\nstarter,0.1234567891\ngrowth,2\n", "prices",
                columns={"plan": "VARCHAR", "price": "DECIMAL(38,10)"})
    assert ws.query("SELECT max(price) FROM local.uploads.prices WHERE plan = 'starter'"
                    ).rows() == [(Decimal("0.1234567891"),)]


def test_csv_cells_are_found_on_the_line_duckdb_gives_their_row(ws):
    # a blank line and a quoted value over two lines come before the row: its line is the one
    # DuckDB's reader gives a row it rejects itself (a date that does not parse)
    text = ('customer,amount,since\nacme,1.50,2026-01-01\n\n"multi\nline",2.00,2026-01-02\n'
            'x,3,2026-01-09,9\nbolt,{amount},{since}\ncleo,4.00,2026-01-05\n')
    columns = {"customer": "VARCHAR", "amount": "DECIMAL(18,2)", "since": "DATE"}
    lines = []
    for amount, since in (("1.005", "2026-01-03"), ("1.00", "2026-13-03")):
        with pytest.raises(DataError) as excinfo:
            ws.uploads.load(text.format(amount=amount, since=since).encode(), "bills",
                        columns=columns)
        rejected = excinfo.value.details["rows"]
        assert rejected[0]["reason"].startswith("Expected Number of Columns")
        lines.append(rejected[1]["line"])
    assert lines[0] == lines[1]


def test_an_empty_csv_is_refused(ws):
    for data in (b"", b"\n  \n", b"\xef\xbb\xbf"):
        with pytest.raises(DataError, match="empty: no header, no columns; nothing was loaded"):
            ws.uploads.load(data, "nothing")
    assert "local.uploads.nothing" not in [t.full_name for t in ws.tables("local")]
    assert ws.uploads.load(b"a,b\n", "header_only").rows == 0  # a header alone makes a table


def test_a_declared_column_type_that_does_not_parse_is_an_ingest_error(ws):
    with pytest.raises(IngestError,
                       match=r"column 'amount' of the upload: 'DECIMAL\(18' is not a"):
        ws.uploads.load(b"amount\n1\n", "bills", columns={"amount": "DECIMAL(18"})


def test_manual_rows_over_http_keep_numbers_exact_and_refuse_what_does_not_fit(api):
    client, keys, ws = api
    h = {**bearer(keys["ingest"]), "Content-Type": "application/json"}
    ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)",
                                 "meta": "JSON"}, ["customer_id"])
    empty = client.post("/v1/tables/credits/rows", headers=h, content='{"values": {}}')
    assert empty.status_code == 400 and "needs values" in empty.json()["detail"]
    extra = client.post("/v1/tables/credits/rows", headers=h,
                        content='{"values": {"customer_id": "acme", "amount": 1.999}}')
    assert extra.status_code == 422 and extra.json()["rows"] == [{
        "column": "amount", "value": "1.999",
        "reason": "1.999 has more than 2 decimal places (DECIMAL(18,2))"}]
    assert "round=true" in extra.json()["hint"]
    boolean = client.post("/v1/tables/credits/rows", headers=h,
                          content='{"values": {"customer_id": "acme", "amount": true}}')
    assert boolean.status_code == 422
    assert "true is a boolean, not a number" in boolean.json()["detail"]
    # numbers are read exactly: as a float, this one would be 1234567890123456.8 and fit
    big = client.post("/v1/tables/credits/rows", headers=h, content=(
        '{"values": {"customer_id": "acme", "amount": 1234567890123456.78, '
        '"meta": {"rate": 0.10}}}'))
    assert big.status_code == 201, big.text
    assert big.json()["amount"] == "1234567890123456.78"
    assert ws.query("SELECT meta::VARCHAR FROM local.manual.credits").rows() == [
        ('{"rate":0.10}',)]
    rounded = client.post("/v1/tables/credits/rows?round=true", headers=h,
                          content='{"values": {"customer_id": "bolt", "amount": 1.999}}')
    assert rounded.status_code == 201 and rounded.json()["amount"] == "2.00"
    changed = client.patch("/v1/tables/credits/rows?round=true", headers=h, content=(
        '{"key": {"customer_id": "bolt"}, "values": {"amount": -3.005}}'))
    assert changed.status_code == 200 and changed.json()["amount"] == "-3.01"
    for method in ("PATCH", "DELETE"):  # a key given as an object was a 500
        answer = client.request(method, "/v1/tables/credits/rows", headers=h, content=(
            '{"key": {"customer_id": {"a": 1}}, "values": {"amount": 1}}' if method == "PATCH"
            else '{"key": {"customer_id": {"a": 1}}}'))
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"] == ('local.manual.credits: key column customer_id: '
                                           '{"a": 1} is an object, not text (VARCHAR)')
    for body in ('{"values": ', '{"values": {"amount": NaN}}', '{"values": []}',
                 '{"values": {}, "extra": 1}'):
        answer = client.post("/v1/tables/credits/rows", headers=h, content=body)
        assert answer.status_code == 422 and answer.json()["title"] == "InvalidRequest", body
    spec = client.get("/openapi.json").json()["paths"]["/v1/tables/{name}/rows"]
    assert spec["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "values"]
    assert any(p["name"] == "round" for p in spec["patch"]["parameters"])


def test_uploads_over_http_refuse_rounding_and_empty_files_and_show_no_server_path(api):
    import random
    import tempfile

    client, keys, ws = api
    h = bearer(keys["ingest"])

    def upload(data, query=""):
        return client.post(f"/v1/tables/prices/upload{query}", headers=h,
                           files={"file": ("p.csv", data, "text/csv")})

    assert upload(b"plan,price\nstarter,1.50\n").status_code == 201  # price: DECIMAL(38,9)
    extra = upload(b"plan,price\ngrowth,0.1234567891\n")
    assert extra.status_code == 422 and extra.json()["rows"] == [{
        "line": 2, "column": "price", "value": "0.1234567891",
        "reason": "0.1234567891 has more than 9 decimal places (DECIMAL(38,9))"}]
    rounded = upload(b"plan,price\ngrowth,0.1234567891\n", "?round=true")
    assert rounded.status_code == 201 and rounded.json()["rows"] == 1
    assert ws.query("SELECT price FROM local.uploads.prices WHERE plan = 'growth'").rows() == [
        (Decimal("0.123456789"),)]
    empty = upload(b"")  # was a 201 and an empty table
    assert empty.status_code == 422 and "empty: no header, no columns" in empty.json()["detail"]
    random.seed(14)
    garbage = [bytes(random.randrange(256) for _ in range(2000)), b'"unterminated\n1,2',
               b"\x00" * 64, b"a;b|c\n1;2|3\n" * 3, "plan,price\nx,1\n".encode("utf-16")]
    for data in garbage:
        for query in ("", "?mode=replace"):  # the table's types, then sniffed ones
            answer = upload(data, query)
            assert answer.status_code in (201, 422), answer.text
            text = answer.text
            assert tempfile.gettempdir() not in text and "upload.csv" not in text, text


def test_a_csv_upload_sent_as_text_csv_gets_a_415_saying_to_send_multipart(api):
    client, keys, ws = api
    h = bearer(keys["ingest"])
    body = b"plan,price\nstarter,10.5\n"
    for content_type in ("text/csv", "application/octet-stream"):
        raw = client.post("/v1/tables/prices/upload", content=body,
                          headers={**h, "Content-Type": content_type})
        assert raw.status_code == 415, raw.text
        assert raw.headers["content-type"] == "application/problem+json"
        problem = raw.json()
        assert problem["title"] == "UnsupportedMediaTypeError"
        assert f"sent as {content_type}" in problem["detail"]
        assert "multipart field 'file'" in problem["hint"]
    bare = client.post("/v1/tables/prices/upload", content=body, headers=h)
    assert bare.status_code == 415 and "without a Content-Type" in bare.json()["detail"]
    # the key is checked first, and nothing was loaded
    anonymous = client.post("/v1/tables/prices/upload", content=body,
                            headers={"Content-Type": "text/csv"})
    assert anonymous.status_code == 401
    assert "local.uploads.prices" not in {t.full_name for t in ws.tables("local")}
    sent = client.post("/v1/tables/prices/upload", headers=h,
                       files={"file": ("p.csv", body, "text/csv")})
    assert sent.status_code == 201 and sent.json()["rows"] == 1
