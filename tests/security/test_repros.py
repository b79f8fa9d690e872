"""Every finding of the attack on a real ``meterql serve`` (issue 14), replayed as it was sent,
with keys of each scope: each now gets the refusal it should, and nothing it should not.

The mechanisms behind them have their own tests: the binder and the locked-down DuckDB
(test_file_access.py), sql_text (test_sql_text.py), the request guard (test_guard.py,
test_serve_memory.py), the checks before an event is answered (test_push_checks.py), file modes
(test_file_modes.py), manual rows and uploads (test_ingest.py)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.lake import lake_workspace
from tests.support.served import auth, new_key, serve

NOW = datetime.now(UTC).replace(microsecond=0)
T = (NOW - timedelta(hours=1)).isoformat()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("repros")
    home = root / "home"
    with lake_workspace(root) as ws:
        ws.events.ingest("usage", [{"id": "u1", "timestamp": T, "customer_id": "acme",
                                    "qty": 5}])
        ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)"},
                         ["customer_id"])
    keys = {scope: new_key(home, scope) for scope in ("read", "ingest", "admin")}
    with serve(home) as served, httpx.Client(base_url=served.base, timeout=60) as http:
        yield http, keys, home, root, served


def event(event_id: str, **fields) -> dict:
    return {"id": event_id, "timestamp": T, "customer_id": "acme", **fields}


def test_2_an_ingest_key_cannot_run_sql_through_a_declared_type(server):
    http, keys, home, root, _ = server
    target = root / "pwn.csv"
    for i, typ in enumerate([
        f"INTEGER); COPY (SELECT 'x') TO '{target}'; CREATE TABLE IF NOT EXISTS "
        "local.uploads.j (q INTEGER",
        "INTEGER); CREATE TABLE local.uploads.p AS SELECT * FROM read_csv('/etc/passwd'); "
        "CREATE TABLE x (q INTEGER",
        "INTEGER); UPDATE local.events.usage SET qty = 0; CREATE TABLE y (q INTEGER",
        "INTEGER); DELETE FROM local.__meterql__.event_ids; CREATE TABLE z (q INTEGER",
        "INTEGER); ATTACH 'catalog.duckdb' AS c; CREATE TABLE w (q INTEGER",
    ]):
        answer = http.put(f"/v1/events/injected{i}", headers=auth(keys["ingest"]),
                          json={"columns": {"q": typ}})
        assert answer.status_code == 400, answer.text
        assert "is not a column type" in answer.json()["detail"]
    assert not target.exists()
    qty = http.post("/v1/query", headers=auth(keys["read"]), json={
        "sql": "SELECT sum(qty)::BIGINT AS q FROM local.events.usage"}).json()["rows"]
    assert qty == [[5]]
    tables = http.get("/v1/tables", headers=auth(keys["read"])).json()
    assert not {t["name"] for t in tables} & {"local.uploads.j", "local.uploads.p"}
    # a retry of the stored event is still a duplicate: the dedupe records are intact
    again = http.post("/v1/events/usage", headers=auth(keys["ingest"]),
                      json=event("u1", qty=5)).json()
    assert again["duplicate"] == 1


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80"])
def test_3_invalid_utf8_in_ndjson_is_refused_not_set_aside(server, bad):
    http, keys, home, _, _ = server
    body = json.dumps(event("utf8-ok", qty=1)).encode() + b"\n" + json.dumps(
        event("utf8-bad", qty=1, note="x")).encode().replace(b'"x"', b'"' + bad + b'"')
    answer = http.post("/v1/events/usage", headers={**auth(keys["ingest"]),
                       "Content-Type": "application/x-ndjson"}, content=body)
    assert answer.status_code == 400 and "UTF-8" in answer.text, answer.text
    found = http.post("/v1/query", headers=auth(keys["read"]), json={
        "sql": "SELECT count(*) FROM local.events.usage WHERE id LIKE 'utf8-%'"}).json()
    assert found["rows"] == [[0]]  # refused whole: nothing half-stored
    unapplied = home / "events.unapplied.log"
    assert not unapplied.exists() or unapplied.stat().st_size == 0


def test_4_an_event_with_many_new_fields_is_rejected_at_once(server):
    http, keys, _, _, served = server
    before = served.rss_peak_kb()
    fields = {f"f{i}": i for i in range(100_000)}
    answer = http.post("/v1/events/usage", headers=auth(keys["ingest"]),
                       json=event("wide", **fields))
    assert answer.status_code == 422, answer.text[:300]
    assert "events_max_fields" in answer.text
    assert served.rss_peak_kb() - before < 300_000  # kB: no column was added
    columns = http.get("/v1/tables/local.events.usage", params={"sample": 0},
                       headers=auth(keys["read"])).json()["columns"]
    assert len(columns) < 10


def test_5_an_unauthenticated_body_is_not_read(server):
    http, _, _, _, _ = server
    answer = http.post("/v1/query", content=b"x" * (8 << 20),
                       headers={"Content-Type": "application/json"})
    assert answer.status_code == 401


def test_6_workspace_files_are_private(server):
    _, _, home, _, _ = server
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, path
        elif not path.name.endswith(".wal"):  # (see test_file_modes.py for write-ahead logs)
            assert mode == 0o600, path


@pytest.mark.parametrize("typ", ["INTEGER", "SMALLINT", "DOUBLE"])
def test_7_streams_declared_with_narrow_numbers_take_events(server, typ):
    http, keys, _, _, _ = server
    stream = f"narrow_{typ.lower()}"
    created = http.put(f"/v1/events/{stream}", headers=auth(keys["ingest"]),
                       json={"columns": {"n": typ}})
    assert created.status_code == 201, created.text
    answer = http.post(f"/v1/events/{stream}", headers=auth(keys["ingest"]),
                       json=[event("a", n=7), event("b", n=-3)])
    assert answer.status_code == 200 and answer.json()["accepted"] == 2, answer.text
    total = http.post("/v1/query", headers=auth(keys["read"]), json={
        "sql": f"SELECT sum(n)::DOUBLE AS n FROM local.events.{stream}"}).json()["rows"]
    assert total == [[4]]


def test_8_an_identical_retry_after_a_widening_is_a_duplicate(server):
    http, keys, _, _, _ = server
    first = event("w1", amount=5)
    assert http.post("/v1/events/widen", headers=auth(keys["ingest"]),
                     json=first).json()["accepted"] == 1
    assert http.post("/v1/events/widen", headers=auth(keys["ingest"]),
                     json=event("w2", amount=2.5)).json()["accepted"] == 1
    retry = http.post("/v1/events/widen", headers=auth(keys["ingest"]), json=first)
    assert retry.json()["duplicate"] == 1, retry.text


def test_9_a_revoked_key_fails_on_the_next_request(server):
    http, keys, _, _, _ = server
    made = http.post("/v1/keys", headers=auth(keys["admin"]), json={"scope": "read"})
    assert made.status_code == 201
    key, key_id = made.json()["key"], made.json()["id"]
    assert http.get("/v1/tables", headers=auth(key)).status_code == 200
    assert http.delete(f"/v1/keys/{key_id}", headers=auth(keys["admin"])).status_code == 204
    assert http.get("/v1/tables", headers=auth(key)).status_code == 401
    for scope in ("read", "ingest"):  # only an admin manages keys
        assert http.post("/v1/keys", headers=auth(keys[scope]),
                         json={"scope": "admin"}).status_code == 403


@pytest.mark.parametrize(("body", "content_type"), [
    (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    (json.dumps(event("big-int")).encode()[:-1] + b', "qty": ' + b"9" * 400 + b"}",
     "application/json"),
    (json.dumps(event("huge-exp")).encode()[:-1] + b', "qty": 1e999999}', "application/json"),
    (json.dumps(event("many-digits")).encode()[:-1] + b', "brand_new": ' + b"7" * 5000 + b"}",
     "application/json"),
], ids=["deep-nesting", "big-int", "huge-exponent", "many-digits"])  # (the bodies hold the time)
def test_10_malformed_pushes_are_4xx_not_500(server, body, content_type):
    http, keys, _, _, _ = server
    answer = http.post("/v1/events/usage", headers={**auth(keys["ingest"]),
                       "Content-Type": content_type}, content=body)
    assert answer.status_code in (400, 413, 422), (answer.status_code, answer.text[:200])
    assert answer.headers["content-type"] == "application/problem+json"


def test_10_an_amend_with_a_lone_surrogate_is_4xx(server):
    http, keys, _, _, _ = server
    answer = http.post("/v1/events/usage/u1/amend", headers={**auth(keys["ingest"]),
                       "Content-Type": "application/json"},
                       content=b'{"id": "u1", "timestamp": "' + T.encode()
                       + b'", "customer_id": "acme", "qty": 5, "note": "\\ud800"}')
    assert 400 <= answer.status_code < 500, answer.text


def test_10_rows_without_values_or_with_an_object_key_are_4xx(server):
    http, keys, _, _, _ = server
    assert http.post("/v1/tables/credits/rows", headers=auth(keys["ingest"]),
                     json={"values": {}}).status_code == 400
    assert http.post("/v1/tables/credits/rows", headers=auth(keys["ingest"]),
                     json={"values": {"customer_id": "k1", "amount": "1"}}).status_code == 201
    patched = http.patch("/v1/tables/credits/rows", headers=auth(keys["ingest"]),
                         json={"key": {"customer_id": {"a": 1}}, "values": {"amount": "2"}})
    assert patched.status_code == 422, patched.text


def test_11_parameters_no_source_can_take_are_400(server):
    http, keys, _, _, _ = server
    for params, sql in (
        ({"n": 10**40}, "SELECT count(*) FROM lake.main.prices WHERE price = :n"),
        ({"n": 1.5}, "SELECT count(*) FROM lake.main.prices WHERE note = :n"),
    ):
        answer = http.post("/v1/query", headers=auth(keys["read"]),
                           json={"sql": sql, "params": params})
        assert answer.status_code == 400, answer.text


def test_12_a_boolean_is_no_amount_and_an_empty_or_garbage_csv_is_refused_cleanly(server):
    http, keys, _, root, _ = server
    answer = http.post("/v1/tables/credits/rows", headers=auth(keys["ingest"]),
                       json={"values": {"customer_id": "b1", "amount": True}})
    assert answer.status_code == 422, answer.text
    empty = http.post("/v1/tables/nothing/upload", headers=auth(keys["ingest"]),
                      files={"file": ("empty.csv", b"", "text/csv")})
    assert empty.status_code == 422, empty.text
    garbage = http.post("/v1/tables/junk/upload", headers=auth(keys["ingest"]),
                        files={"file": ("junk.csv", b'"a,b\n\x00\x01"\n,,,"', "text/csv")})
    assert 400 <= garbage.status_code < 500
    assert "/tmp" not in garbage.text and "upload.csv" not in garbage.text


def test_13_money_is_not_rounded_unless_asked(server):
    http, keys, _, _, _ = server
    refused = http.post("/v1/tables/credits/rows", headers=auth(keys["ingest"]),
                        json={"values": {"customer_id": "r1", "amount": 1.999}})
    assert refused.status_code == 422 and "1.999" in refused.text, refused.text
    rounded = http.post("/v1/tables/credits/rows", params={"round": "true"},
                        headers=auth(keys["ingest"]),
                        json={"values": {"customer_id": "r1", "amount": 1.999}})
    assert rounded.status_code == 201 and rounded.json()["amount"] in ("2.00", 2.0), rounded.text
    csv = b"customer_id,amount\nc1,1.005\n"
    upload = http.post("/v1/tables/prices/upload", headers=auth(keys["ingest"]),
                       files={"file": ("p.csv", csv, "text/csv")})
    assert upload.status_code == 201  # sniffed: DECIMAL(38,9) keeps 1.005 exactly
    narrow = http.post("/v1/tables/prices/upload", headers=auth(keys["ingest"]),
                       files={"file": ("q.csv", b"customer_id,amount\nc2,1.0000000001\n",
                                       "text/csv")})
    assert narrow.status_code == 422 and "1.0000000001" in narrow.text, narrow.text


@pytest.mark.parametrize(("sql", "words"), [
    ("CHECKPOINT", "not CHECKPOINT"),
    ("(SELECT sku FROM lake.main.prices WHERE price = 1)", None),
    ('SELECT "v""x".sku FROM lake.main.prices "v""x" WHERE "v""x".price = 1', None),
    ("SELECT price FROM lake.main.prices p, (SELECT 1 AS price) q", "qualify it"),
])
def test_14_messages_say_what_is_wrong(server, sql, words):
    http, keys, _, _, _ = server
    answer = http.post("/v1/query", headers=auth(keys["read"]), json={"sql": sql})
    if words is None:
        assert answer.status_code == 200 and answer.json()["rows"] == [["sku1"]], answer.text
    else:
        problem = answer.json()
        assert answer.status_code == 400, answer.text
        assert words in problem["detail"] + " " + problem.get("hint", ""), answer.text


def test_15_the_api_docs_load_nothing_from_another_origin(server):
    http, _, _, _, _ = server
    page = http.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text
