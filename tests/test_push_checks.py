"""A 2xx means stored: every check that can refuse an event runs before the event is answered,
on both write ways (the event log and the writer's transaction). Malformed and oversized
events over HTTP, declared column types, and the limits on an event's shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.local.events.logged_path import LoggedPath
from meterql.server.app import create_app

NOW = datetime.now(UTC).replace(microsecond=0)
T = (NOW - timedelta(hours=1)).isoformat()
NDJSON = "application/x-ndjson"


@pytest.fixture()
def api(tmp_path, monkeypatch):
    """A server on a fresh workspace; ``ways`` records how each push was written."""
    ways: list[str] = []
    admit = LoggedPath.admit

    def spy(self, item, loop):
        future = admit(self, item, loop)
        ways.append("logged" if future is not None else "transactional")
        return future

    monkeypatch.setattr(LoggedPath, "admit", spy)
    with meterql.connect(tmp_path / "home") as ws:
        key = create_key(ws.keys, "ingest")[1]
        with TestClient(create_app(ws), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {key}"
            yield client, ws, ways


def post(client, stream, body: bytes, content_type: str):
    return client.post(f"/v1/events/{stream}", content=body,
                       headers={"Content-Type": content_type})


def head(event_id: str, *fields: bytes) -> bytes:
    """A JSON object with the required fields and ``fields`` (raw JSON text after them)."""
    parts = [b'"id": "%s"' % event_id.encode(), b'"timestamp": "%s"' % T.encode(),
             b'"customer_id": "acme"', *fields]
    return b"{" + b", ".join(parts) + b"}"


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


#: Field texts (raw JSON, possibly not valid) that a client may send.
MALFORMED = {
    "utf8_ff_fe": b'"note": "a\xff\xfeb"',
    "utf8_overlong": b'"note": "a\xc0\xafb"',
    "utf8_cesu_surrogate": b'"note": "a\xed\xa0\x80b"',
    "utf8_truncated": b'"note": "a\xe2\x82"',
    "utf8_past_10ffff": b'"note": "\xf4\x90\x80\x80"',
    "lone_high_surrogate": b'"note": "\\ud800"',
    "lone_low_surrogate": b'"note": "x\\udc00y"',
    "surrogate_in_nested": b'"meta": {"k": ["\\ud800"]}',
    "surrogate_in_key": b'"\\ud800": 1',
    "nul_char": b'"note": "a\\u0000b"',
    "bom_in_string": b'"note": "\xef\xbb\xbfx"',
    "deep_40": b'"meta": ' + deep(40),
    "deep_100000": b'"meta": ' + deep(100_000),
    "digits_400": b'"n": ' + b"9" * 400,
    "digits_5000": b'"n": ' + b"9" * 5000,
    "digits_5000_new": b'"n_new": ' + b"9" * 5000,
    "exp_huge": b'"n": 1e999999',
    "exp_huge_qty": b'"qty": -1e999999',
    "exp_tiny_qty": b'"qty": 1e-999999',
    "fraction_into_int": b'"n": 2.5',
    "nan": b'"qty": NaN',
    "infinity": b'"f": Infinity',
    "decimal_39_digits": b'"qty": 123456789012345678901234567890.123456789',
    "many_new_fields": b", ".join(b'"f%d": %d' % (i, i) for i in range(300)),
    "duplicate_keys": b'"qty": 1, "qty": "lots"',
    "string_as_number": b'"n": "12"',
    "bool_as_number": b'"qty": true',
    "empty_key": b'"": 1',
    "underscore_key": b'"_ingested_at": "2000-01-01"',
    "object_as_text": b'"note": {"a": 1}',
    "huge_float": b'"f": 1e308, "g": 1.8e308',
}


def _check_each_event_is_refused_or_stored(client, ws, stream, body, content_type, label):
    r = post(client, stream, body, content_type)
    assert r.status_code in (200, 207, 400, 413, 422), (label, r.status_code, r.text[:300])
    if r.status_code in (400, 413):
        assert r.headers["content-type"] == "application/problem+json", label
        return []
    stored = []
    for result in r.json()["results"]:
        if result["status"] == "accepted":
            rows = ws.query(f"SELECT count(*) FROM local.events.{stream} WHERE id = $id",
                            params={"id": result["id"]}).rows()
            assert rows == [(1,)], (label, result, "answered accepted, not in the table")
            stored.append(result["id"])
        else:
            assert result["status"] == "rejected" and result["reason"], (label, result)
    return stored


def test_no_event_is_answered_accepted_then_set_aside(api):
    client, ws, ways = api
    # an inferred stream and a declared one, each with a column of every inferred type
    setup = head("s0", b'"qty": 1.5, "n": 1, "note": "x", "meta": {"k": 1}, "ok": true, '
                       b'"f": 0.5')
    assert post(client, "inferred", setup, "application/json").status_code == 200
    made = client.put("/v1/events/declared", json={"columns": {
        "qty": "DECIMAL(18,6)", "n": "INTEGER", "note": "VARCHAR", "meta": "JSON",
        "ok": "BOOLEAN", "f": "DOUBLE", "g": "FLOAT", "day": "DATE"}})
    assert made.status_code == 201, made.text
    assert post(client, "declared", setup, "application/json").status_code == 200
    stored = 0
    for stream in ("inferred", "declared"):
        for label, text in MALFORMED.items():
            for way, content_type in enumerate(("application/json", NDJSON)):
                event_id = f"{label}-{way}"
                good = head(f"{event_id}-ok", b'"qty": 2')
                alone, again = head(event_id, text), head(f"{event_id}-b", text)
                # alone, and in a batch after a good event
                for body in (alone, good + b"\n" + again if content_type == NDJSON else
                             b"[" + good + b", " + again + b"]"):
                    stored += len(_check_each_event_is_refused_or_stored(
                        client, ws, stream, body, content_type, (stream, label, content_type)))
    assert stored > 50  # (the good events of the batches, and malformed ones that are fine)
    assert "logged" in ways and "transactional" in ways
    ws.events.flush()
    aside = ws.home / "events.unapplied.log"
    assert not aside.exists() or aside.stat().st_size == 0


@pytest.mark.parametrize("content_type", ["application/json", NDJSON])
@pytest.mark.parametrize("bad", [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80"])
def test_a_body_that_is_not_utf8_is_refused_whole_on_both_ways(api, bad, content_type):
    client, ws, ways = api
    ok = head("a", b'"note": "x"')
    assert post(client, "calls", ok, content_type).status_code == 200
    assert post(client, "calls", head("b", b'"note": "y"'), content_type).status_code == 200
    assert ways[-1] == "logged"  # the stream's pushes now take the logged way
    body = head("c", b'"note": "z') + bad + b'"}'
    if content_type == NDJSON:
        body = head("d", b'"note": "fine"') + b"\n" + body
    r = post(client, "calls", body, content_type)
    assert r.status_code == 400, r.text
    assert "not UTF-8" in r.json()["detail"]
    if content_type == NDJSON:
        assert "line 2" in r.json()["detail"]
    ws.events.flush()
    assert ws.query("SELECT list(id ORDER BY id) FROM local.events.calls").rows() == [
        (["a", "b"],)]
    assert not (ws.home / "events.unapplied.log").exists()


INTEGER_RANGES = {
    "TINYINT": (-2**7, 2**7 - 1), "SMALLINT": (-2**15, 2**15 - 1),
    "INTEGER": (-2**31, 2**31 - 1), "BIGINT": (-2**63, 2**63 - 1),
    "HUGEINT": (-2**127, 2**127 - 1), "UTINYINT": (0, 2**8 - 1),
    "USMALLINT": (0, 2**16 - 1), "UINTEGER": (0, 2**32 - 1), "UBIGINT": (0, 2**64 - 1),
}


def _push_both_ways(client, ways, stream, values, prefix="v"):
    """Push one event per value: the first alone (the stream's first push: the writer's
    transaction), then the others as NDJSON and as JSON, each of which takes the logged way
    when all its events fit. The answers' (status, reason) in order."""
    events = [json.dumps({"id": f"{prefix}{i}", "timestamp": T, "customer_id": "c", "v": v})
              for i, v in enumerate(values)]
    answers = [post(client, stream, events[0].encode(), "application/json")]
    half = len(events) // 2
    answers.append(post(client, stream, "\n".join(events[1:half]).encode(), NDJSON))
    answers.append(post(client, stream, ("[" + ",".join(events[half:]) + "]").encode(),
                        "application/json"))
    out = []
    for r in answers:
        assert r.status_code in (200, 207, 422), r.text
        out += [(x["status"], x.get("reason")) for x in r.json()["results"]]
    return out


@pytest.mark.parametrize("typ", sorted(INTEGER_RANGES))
def test_declared_integer_columns_take_events_both_ways(api, typ):
    client, ws, ways = api
    stream = f"t_{typ.lower()}"
    assert client.put(f"/v1/events/{stream}", json={"columns": {"v": typ}}).status_code == 201
    low, high = INTEGER_RANGES[typ]
    good = [7, low, high, 0, 1, high - 1]
    assert [s for s, _ in _push_both_ways(client, ways, stream, good)] == ["accepted"] * 6
    # (NDJSON into a column Arrow does not read exactly is written by the writer)
    ndjson_way = "transactional" if typ == "HUGEINT" else "logged"
    assert ways[1:] == [ndjson_way, "logged"]
    bad = [5, 6, high + 1, low - 1, 2.5, "3"]
    answers = _push_both_ways(client, ways, stream, bad, prefix="b")
    assert [s for s, _ in answers] == ["accepted"] * 2 + ["rejected"] * 4, answers
    assert all("is not an integer" in reason for _, reason in answers[2:])
    rows = ws.query(f"SELECT id, v FROM local.events.{stream} ORDER BY id").rows()
    assert dict(rows) == {"b0": 5, "b1": 6, **{f"v{i}": v for i, v in enumerate(good)}}
    assert ws.events.stream(stream).columns["v"] == typ
    assert not (ws.home / "events.unapplied.log").exists()


@pytest.mark.parametrize("typ,top", [("FLOAT", 3.4e38), ("REAL", 3.4e38),
                                     ("DOUBLE", 1.7e308)])
def test_declared_float_columns_take_events_both_ways(api, typ, top):
    client, ws, ways = api
    stream = f"t_{typ.lower()}"
    assert client.put(f"/v1/events/{stream}", json={"columns": {"v": typ}}).status_code == 201
    if top > 1e100:  # (an exponent past events_max_number_digits: rejected either way)
        answers = _push_both_ways(client, ways, stream, [1, 2, top, 3, top], prefix="x")
        assert [s for s, _ in answers] == ["accepted"] * 2 + ["rejected", "accepted",
                                                              "rejected"], answers
        ws.settings.set("events_max_number_digits", 400)
    good = [0.5, -2, top, "1.25", 1e-30, 3]
    answers = _push_both_ways(client, ways, stream, good)
    assert [s for s, _ in answers] == ["accepted"] * 6, answers
    bad = [1, top * 10, "lots", True]
    answers = _push_both_ways(client, ways, stream, bad, prefix="b")
    assert [s for s, _ in answers] == ["accepted"] + ["rejected"] * 3, answers
    python = ws.events.ingest(stream, [{"id": "p0", "timestamp": T, "customer_id": "c",
                                        "v": 0.25},
                                       {"id": "p1", "timestamp": T, "customer_id": "c",
                                        "v": float("nan")}])
    assert [o.status for o in python] == ["accepted", "rejected"]
    assert "not a finite number" in python[1].reason
    rows = dict(ws.query(f"SELECT id, v FROM local.events.{stream}").rows())
    assert rows["v0"] == 0.5 and rows["v3"] == 1.25 and rows["v1"] == -2 and rows["p0"] == 0.25
    assert not (ws.home / "events.unapplied.log").exists()


def test_declared_decimal_date_and_time_columns_are_checked_exactly(api):
    client, ws, ways = api
    assert client.put("/v1/events/d", json={"columns": {
        "v": "DECIMAL(4,1)", "day": "DATE", "at": "TIMESTAMP"}}).status_code == 201
    answers = _push_both_ways(client, ways, "d", [999.9, -999.9, "12.5", 1, 1000, 1.25,
                                                  12345.6])
    assert [s for s, _ in answers] == ["accepted"] * 4 + ["rejected"] * 3, answers
    assert "too large for DECIMAL(4,1)" in answers[4][1]
    assert "more than 1 decimal places" in answers[5][1]
    r = post(client, "d", head("x", b'"day": "2026-05-01", "at": "2026-05-01T10:00:00"'),
             "application/json")
    assert r.json()["accepted"] == 1
    r = post(client, "d", head("y", b'"day": "May 1st"'), "application/json")
    assert "not an ISO 8601 date" in r.json()["results"][0]["reason"]


def test_a_decimal_too_large_once_scaled_is_rejected_both_ways(api):
    """Arrow's reader checks a decimal's digits as written: 12345.6 (6 digits) was read into
    a DECIMAL(6,2) as 12345.60 and stored so (found by tests/test_event_checks.py)."""
    client, ws, ways = api
    assert client.put("/v1/events/dd", json={"columns": {"v": "DECIMAL(6,2)"}}).status_code == 201
    answers = _push_both_ways(client, ways, "dd", [1, 9999.99, 12345.6, -9999.99, "12345.6"])
    assert [s for s, _ in answers] == ["accepted"] * 2 + ["rejected", "accepted", "rejected"]
    assert all("is too large for DECIMAL(6,2)" in r for _, r in answers if r), answers
    alone = post(client, "dd", head("x", b'"v": 12345.6'), NDJSON)
    assert alone.status_code == 422, alone.text
    assert ws.query("SELECT max(v) FROM local.events.dd").rows() == [(Decimal("9999.99"),)]


@pytest.mark.parametrize("typ", ["UUID", "INTERVAL", "BLOB", "TIME", "INTEGER[]",
                                 "STRUCT(a INTEGER)", "MAP(VARCHAR, INTEGER)", "BIT",
                                 "ENUM('a', 'b')", "TIMESTAMP_NS", "UHUGEINT"])
def test_a_column_type_events_cannot_fill_is_refused_when_the_stream_is_created(api, typ):
    client, ws, _ = api
    r = client.put("/v1/events/odd", json={"columns": {"v": typ}})
    assert r.status_code == 400, r.text
    assert "events cannot fill a column of type" in r.json()["detail"]
    if typ == "UHUGEINT":  # (stored, but query results cannot carry its top half)
        assert "declare HUGEINT or DECIMAL(38,0)" in r.json()["detail"]
    else:
        assert "DECIMAL(p,s)" in r.json()["detail"]  # (the types they can fill are listed)


def test_a_required_field_cannot_be_declared_with_another_type(api):
    client, _, _ = api
    r = client.put("/v1/events/odd", json={"columns": {"id": "INTEGER"}})
    assert r.status_code == 400 and "always VARCHAR" in r.json()["detail"]


# -- over a limit: a 4xx with a reason that names the limit, never a 500 -------------------------
def _reason(r):
    assert r.status_code in (207, 422), (r.status_code, r.text[:300])
    return next(x["reason"] for x in r.json()["results"] if x["status"] == "rejected")


def test_deep_nesting_is_a_4xx_naming_the_setting(api):
    client, ws, _ = api
    assert post(client, "calls", head("a", b'"meta": {"k": 1}'), NDJSON).status_code == 200
    for levels, content_type in ((100_000, "application/json"), (100_000, NDJSON),
                                 (40, "application/json"), (40, NDJSON)):
        r = post(client, "calls", head("b", b'"meta": ' + deep(levels)), content_type)
        if levels > 500 and content_type == "application/json":
            assert r.status_code == 413, r.text  # (the parser gives up: no event told apart)
            assert "events_max_depth" in r.json()["detail"]
        else:
            assert "events_max_depth" in _reason(r), r.text
    ok = post(client, "calls", head("c", b'"meta": ' + deep(31)), "application/json")
    assert ok.json()["accepted"] == 1  # the event is level 1: a field nests 31 more
    ws.settings.set("events_max_depth", 64)
    assert post(client, "calls", head("d", b'"meta": ' + deep(40)), NDJSON).status_code == 200


def test_huge_numbers_are_rejected_naming_the_setting_and_widen_nothing(api):
    client, ws, _ = api
    assert post(client, "calls", head("a", b'"n": 1'), "application/json").status_code == 200
    for text in (b"9" * 400, b"1e999999", b"-1e999999", b"1" + b"0" * 150 + b".5"):
        for content_type in ("application/json", NDJSON):
            r = post(client, "calls", head("b", b'"n": ' + text), content_type)
            assert "events_max_number_digits" in _reason(r), r.text
    assert ws.events.stream("calls").columns["n"] == "BIGINT"  # (was widened, then a 500)
    r = post(client, "calls", head("c", b'"n": 1e20'), "application/json")
    assert r.json()["accepted"] == 1  # (within the limit: widens to DECIMAL(38,9))
    for content_type in ("application/json", NDJSON):  # past Python's 4,300 digits
        r = post(client, "calls", head("d", b'"new": ' + b"7" * 5000), content_type)
        if content_type == NDJSON:
            assert "events_max_number_digits" in _reason(r)
        else:
            assert r.status_code == 413 and "events_max_number_digits" in r.json()["detail"]
    assert "new" not in ws.events.stream("calls").columns


def test_an_amend_with_a_lone_surrogate_is_rejected(api):
    client, ws, _ = api
    assert post(client, "calls", head("a", b'"note": "x"'), "application/json").status_code == 200
    r = client.post("/v1/events/calls/a/amend", content=b'{"timestamp": "%s", "customer_id": '
                    b'"acme", "note": "\\ud800"}' % T.encode(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "lone UTF-16 surrogate" in r.json()["reason"]
    deep_amend = client.post("/v1/events/calls/a/amend", content=b'{"timestamp": "%s", '
                             b'"customer_id": "acme", "meta": %s}' % (T.encode(), deep(40)),
                             headers={"Content-Type": "application/json"})
    assert deep_amend.status_code == 422 and "events_max_depth" in deep_amend.json()["reason"]
    assert ws.query("SELECT note FROM local.events.calls").rows() == [("x",)]


def test_fields_per_event_and_columns_per_stream_are_limited(api):
    client, ws, ways = api
    wide = b", ".join(b'"f%d": %d' % (i, i) for i in range(250))
    for content_type in ("application/json", NDJSON):
        r = post(client, "calls", head("a", wide), content_type)
        assert "the event has 253 fields; at most 200" in _reason(r)
        assert "events_max_fields" in _reason(r)
    assert not ws.events.streams() or "f0" not in ws.events.stream("calls").columns
    ws.settings.set("events_max_columns", 10)
    assert post(client, "calls", head("b", b'"a": 1, "b": 2'), "application/json"
                ).status_code == 200  # 5 columns
    r = post(client, "calls", head("c", b", ".join(b'"g%d": 1' % i for i in range(6))),
             NDJSON)
    assert "would give the stream 11 columns; it may have 10" in _reason(r)
    assert "events_max_columns" in _reason(r)
    assert post(client, "calls", head("d", b", ".join(b'"g%d": 1' % i for i in range(5))),
                NDJSON).status_code == 200  # exactly 10
    # a declared stream with more columns than the limit is refused when it is created
    r = client.put("/v1/events/big", json={"columns": {f"c{i}": "BIGINT" for i in range(20)}})
    assert r.status_code == 413 and "events_max_columns" in r.json()["detail"]
    # a stream with more columns than one event may fill: both ways count the fields
    ws.settings.set("events_max_columns", 500)
    ws.settings.set("events_max_fields", 12)
    full = head("e", b'"a": 1, "b": 2, ' + b", ".join(b'"g%d": 1' % i for i in range(5)))
    for i, content_type in enumerate(("application/json", NDJSON)):
        r = post(client, "calls", full.replace(b'"e"', b'"e%d"' % i), content_type)
        assert "the event has 10 fields" not in r.text and r.status_code == 200
    ws.settings.set("events_max_fields", 8)
    for i, content_type in enumerate(("application/json", NDJSON)):
        r = post(client, "calls", full.replace(b'"e"', b'"f%d"' % i), content_type)
        assert "the event has 10 fields; at most 8" in _reason(r)


# -- retries stay duplicates -------------------------------------------------------------------
def test_an_identical_retry_after_its_column_was_widened_is_a_duplicate(api):
    client, ws, ways = api
    first = head("a", b'"n": 5, "qty": 1.5')
    assert post(client, "calls", first, "application/json").json()["accepted"] == 1
    ndjson_first = head("b", b'"n": 7')
    assert post(client, "calls", ndjson_first, NDJSON).json()["accepted"] == 1
    assert ws.events.stream("calls").columns["n"] == "BIGINT"
    widen = post(client, "calls", head("c", b'"n": 2.5'), "application/json")
    assert widen.json()["accepted"] == 1
    assert ws.events.stream("calls").columns["n"] == "DECIMAL(38,9)"
    for body, content_type in ((first, "application/json"), (first, NDJSON),
                               (ndjson_first, NDJSON), (b"[" + first + b"]", "application/json")):
        r = post(client, "calls", body, content_type)
        assert [x["status"] for x in r.json()["results"]] == ["duplicate"], r.text
    changed = post(client, "calls", head("a", b'"n": 5.5, "qty": 1.5'), "application/json")
    assert "different body" in changed.json()["results"][0]["reason"]
    assert ws.query("SELECT count(*) FROM local.events.calls").rows() == [(3,)]


def test_fingerprints_stored_before_are_computed_again_when_the_workspace_opens(tmp_path):
    from meterql.local.event_values import fingerprint_sql

    home = tmp_path / "home"
    event = {"id": "a", "timestamp": T, "customer_id": "c", "qty": "1.5", "n": 5}
    with meterql.connect(home) as ws:
        assert ws.events.ingest("calls", [event])[0].status == "accepted"
        ws.events.ingest("calls", [{**event, "id": "b", "n": Decimal("7.25")}])  # n: DECIMAL now
        # as a meterql before fingerprints were type-free stored them: decimals with their
        # trailing zeros, and no bookkeeping version
        columns = list(ws.events.stream("calls").columns)
        legacy = fingerprint_sql([(c, False) for c in columns])
        with ws.events._store.write() as cur:
            cur.execute(f"UPDATE local.__meterql__.event_ids SET body_hash = (SELECT {legacy} "
                        "FROM local.events.calls WHERE id = 'b') WHERE id = 'b'")
            cur.execute("DELETE FROM local.__meterql__.meta")
        retry = ws.events.ingest("calls", [{**event, "id": "b", "n": Decimal("7.25")}])
        assert retry[0].status == "rejected"
    with meterql.connect(home) as ws:
        again = ws.events.ingest("calls", [event, {**event, "id": "b", "n": Decimal("7.25")}])
        assert [o.status for o in again] == ["duplicate", "duplicate"], again
        with ws.events._store.read() as cur:
            assert cur.execute("SELECT value FROM local.__meterql__.meta WHERE key = "
                               "'schema_version'").fetchall() == [("1",)]


def test_a_new_field_alters_the_stream_once_and_backfills_follow_its_columns(tmp_path):
    with meterql.connect(tmp_path / "home") as ws:
        base = {"timestamp": T, "customer_id": "c"}
        ws.events.ingest("calls", [{**base, "id": "a", "n": 1}])
        ws.events.ingest("calls", [{**base, "id": "b", "x": "new", "n": Decimal("1.5")}])
        with ws.events._store.read() as cur:  # the staging table is not altered meanwhile
            staged = dict(cur.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = "
                "'__meterql__' AND table_name = 'staged_calls'").fetchall())
        assert "x" not in staged and "n" not in staged
        backfill = ws.events.open_backfill("calls", NOW - timedelta(days=400), NOW)
        old = (NOW - timedelta(days=100)).isoformat()
        out = ws.events.ingest("calls", [
            {**base, "id": "c", "timestamp": old, "x": "y", "n": Decimal("2.5")},
            {**base, "id": "d", "timestamp": old, "z": True}], backfill=backfill)
        assert [o.status for o in out] == ["accepted", "accepted"]
        ws.events.close_backfill(backfill)
        assert ws.query("SELECT id, x, n, z FROM local.events.calls ORDER BY id").rows() == [
            ("a", None, Decimal(1), None), ("b", "new", Decimal("1.5"), None),
            ("c", "y", Decimal("2.5"), None), ("d", None, None, True)]
