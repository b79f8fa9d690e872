"""The logged way of event pushes: the event log (eventlog.py), the id index (idindex.py), and
what they promise together: an answered push is durable, seen by the next query, never counted
twice, and survives a crash."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

import meterql
from meterql.local import idindex
from meterql.local.eventlog import EventLog, body_payload, rows_payload
from meterql.local.events import Accepted, group_commit
from meterql.local.events.logged_path import LoggedPath

NOW = datetime.now(UTC).replace(microsecond=0)
T = (NOW - timedelta(hours=1)).isoformat()
AT = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def ndjson(*events) -> bytes:
    return ("\n".join(json.dumps(e) for e in events) + "\n").encode()


def event(i, **fields):
    return {"id": f"e{i}", "timestamp": T, "customer_id": "acme", "qty": 1.5, **fields}


@pytest.fixture()
def ws(tmp_path):
    with meterql.connect(tmp_path / "home") as workspace:
        workspace.events.ingest_body("calls", ndjson(event(0)), "application/x-ndjson")
        yield workspace


def push(ws, body: bytes, content_type: str = "application/x-ndjson"):
    return asyncio.run(ws.events.ingest_body_async("calls", body, content_type))


# -- the log file ------------------------------------------------------------------------------
def test_the_log_reads_back_its_records_and_cuts_a_torn_tail(tmp_path):
    path = tmp_path / "events.log"
    rows = pa.table({"id": ["a", "b"], "qty": pa.array([1, 2], pa.int64())})
    log = EventLog(path)
    assert log.recover(0) == []
    assert log.append([rows_payload("calls", rows), body_payload("calls", "application/json",
                                                                 b'{"id": "c"}')], AT) == [1, 2]
    log.close()
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"MQE2\x03\x00\x00")  # a record cut short by a crash

    log = EventLog(path)
    first, second = log.recover(0)
    assert (first.seq, first.stream, first.at, first.rows) == (1, "calls", AT, rows)
    assert (second.seq, second.body, second.content_type) == (2, b'{"id": "c"}',
                                                              "application/json")
    assert path.stat().st_size == good  # the torn record is cut off
    assert log.append([body_payload("calls", "application/json", b"{}")], AT) == [3]
    log.close()

    log = EventLog(path)
    assert [r.seq for r in log.recover(2)] == [3]  # records up to 2 were applied
    log.close()


def test_a_record_whose_checksum_fails_ends_the_log(tmp_path):
    path = tmp_path / "events.log"
    log = EventLog(path)
    log.append([body_payload("calls", "application/json", b'{"id": "a"}')], AT)
    size = path.stat().st_size
    log.append([body_payload("calls", "application/json", b'{"id": "b"}')], AT)
    log.close()
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF  # one flipped bit in the second record's payload
    path.write_bytes(bytes(data))
    log = EventLog(path)
    assert [r.body for r in log.recover(0)] == [b'{"id": "a"}']
    assert path.stat().st_size == size
    assert log.append([body_payload("calls", "application/json", b"{}")], AT) == [2]


def test_the_log_is_emptied_only_once_its_last_record_is_applied(tmp_path):
    log = EventLog(tmp_path / "events.log")
    log.recover(0)
    log.append([body_payload("s", "application/json", b"{}")] * 3, AT)
    assert not log.reset(2)  # record 3 is not applied yet
    assert (tmp_path / "events.log").stat().st_size > 0
    assert log.reset(3)
    assert (tmp_path / "events.log").stat().st_size == 0
    assert log.append([body_payload("s", "application/json", b"{}")], AT) == [4]


# -- the id index ------------------------------------------------------------------------------
def test_the_id_index_finds_every_taken_id_before_and_after_merges(monkeypatch):
    monkeypatch.setattr(idindex, "_MERGE_AT", 5)
    index = idindex.IdIndex([f"old{i}" for i in range(100)])
    assert len(index) == 100
    for i in range(0, 100, 7):
        assert index.any_taken(idindex.hashes([f"old{i}"]))
    assert not index.any_taken(idindex.hashes([f"new{i}" for i in range(50)]))
    for start in range(0, 40, 4):  # merged into the sorted array every 5
        index.add(idindex.hashes([f"new{i}" for i in range(start, start + 4)]))
    assert len(index) == 140
    for i in range(40):
        assert index.any_taken(idindex.hashes([f"new{i}"]))
        assert index.any_taken(idindex.hashes([f"x{j}" for j in range(20)] + [f"new{i}"]))
    assert not index.any_taken(idindex.hashes([f"new{i}" for i in range(40, 80)]))
    index.add(idindex.hashes(["failed"]))
    index.discard(idindex.hashes(["failed"]))  # its write failed: the id is free again
    assert not index.any_taken(idindex.hashes(["failed"]))


# -- the logged way in a workspace -------------------------------------------------------------
def test_answered_pushes_are_seen_by_every_next_query_while_the_log_is_applied(ws, monkeypatch):
    monkeypatch.setattr(group_commit, "APPLY_ROWS", 10)  # each push is applied at once,
    apply = LoggedPath._apply_records

    def slowly(*args, **kwargs):  # and slowly: a query comes while one is under way
        time.sleep(0.05)
        return apply(*args, **kwargs)

    monkeypatch.setattr(LoggedPath, "_apply_records", slowly)

    async def scenario():
        total = 1
        for n in range(25):
            out = await ws.events.ingest_body_async(
                "calls", ndjson(*(event(f"{n}-{i}") for i in range(20))),
                "application/x-ndjson")
            assert isinstance(out, Accepted) and len(out) == 20  # (the logged way)
            total += 20
            await asyncio.sleep(0.01)  # (the writer may be applying now)
            seen = await asyncio.to_thread(
                lambda: ws.query("SELECT count(*), count(DISTINCT id) FROM "
                                 "local.events.calls").rows())
            assert seen == [(total, total)], n

    asyncio.run(scenario())


def test_the_log_is_applied_by_an_explicit_step_before_a_query_reads_an_event_stream(
        ws, monkeypatch):
    flushes = []
    flush = ws.events.flush
    monkeypatch.setattr(ws.events, "flush", lambda: flushes.append(1) or flush())
    ws._local.before_read("events", ws.events.flush)  # (the workspace registered the original)
    ws.uploads.load(b"plan,price\nstarter,10\n", "plans")
    ws.query("SELECT count(*) FROM local.uploads.plans")
    ws.explain("SELECT count(*) FROM local.events.calls")
    ws.query("EXPLAIN SELECT count(*) FROM local.events.calls")
    assert flushes == []  # nothing read an event stream
    assert ws._watermark("local.events.calls")["kind"] == "local" and flushes == []
    ws.query("SELECT count(*) FROM local.events.calls")
    ws.submit("SELECT count(*) FROM local.events.calls "
              "JOIN local.uploads.plans ON true").result()
    ws.query("EXPLAIN ANALYZE SELECT count(*) FROM local.events.calls")
    assert flushes == [1, 1, 1]  # once per query, before it ran
    ws._local.prepare_read(["local.events.calls", "local.events.other", "pg.public.events"])
    assert flushes == [1, 1, 1, 1]


def test_a_retry_of_an_event_still_in_the_log_is_a_duplicate_and_a_new_body_is_refused(
        ws, monkeypatch):
    monkeypatch.setattr(group_commit, "APPLY_S", 3600.0)  # nothing applied meanwhile
    first = push(ws, json.dumps(event(1)).encode(), "application/json")
    assert isinstance(first, Accepted)
    assert ws.events._logged._pending  # still only in the log
    again = push(ws, json.dumps(event(1)).encode(), "application/json")
    assert [(o.status, o.reason) for o in again] == [("duplicate", "already stored")]
    changed = push(ws, ndjson(event(1, qty=2.5), event(2)))
    assert [o.status for o in changed] == ["rejected", "accepted"]
    assert "stored before with a different body" in changed[0].reason
    assert ws.query("SELECT id, qty FROM local.events.calls ORDER BY id").rows() == [
        ("e0", Decimal("1.5")), ("e1", Decimal("1.5")), ("e2", Decimal("1.5"))]


def test_a_push_waits_behind_a_queued_request_of_its_stream(ws):
    async def scenario():
        with ws._local._lock:  # the writer cannot write: requests queue behind it
            first = asyncio.create_task(ws.events.ingest_body_async(
                "calls", json.dumps(event(1, region="eu")).encode(),  # a new column
                "application/json"))
            await asyncio.sleep(0.1)
            second = asyncio.create_task(ws.events.ingest_body_async(
                "calls", json.dumps(event(2)).encode(), "application/json"))
            await asyncio.sleep(0.3)
            # It fits the stream and its id is new, but the stream has a request queued for
            # the writer: it is written after that one, not answered from the log before it.
            assert not second.done()
        return await first, await second

    first, second = asyncio.run(scenario())
    assert [o.status for o in first] == [o.status for o in second] == ["accepted"]
    assert ws.query("SELECT id, region FROM local.events.calls ORDER BY id").rows() == [
        ("e0", None), ("e1", "eu"), ("e2", None)]


CRASH = textwrap.dedent("""
    import asyncio, json, os, sys
    import meterql
    from meterql.local.events import group_commit
    group_commit.APPLY_S = 3600.0  # nothing leaves the log before the crash
    ws = meterql.connect(sys.argv[1])
    ws.events.ingest_body("calls", sys.argv[2].encode(), "application/x-ndjson")
    async def main():
        answered = []
        for n in range(5):
            body = "\\n".join(json.dumps({"id": f"k{n}-{i}", "timestamp": sys.argv[3],
                                          "customer_id": "acme", "qty": 1.5})
                              for i in range(100)).encode()
            out = await ws.events.ingest_body_async("calls", body, "application/x-ndjson")
            answered += [o.id for o in out if o.status == "accepted"]
        single = json.dumps({"id": "one", "timestamp": sys.argv[3], "customer_id": "acme",
                             "qty": "2.5"}).encode()
        out = await ws.events.ingest_body_async("calls", single, "application/json")
        answered += [o.id for o in out if o.status == "accepted"]
        return answered
    print(json.dumps(asyncio.run(main())), flush=True)
    os._exit(0)  # no close: as if killed
""")


def test_events_answered_from_the_log_survive_a_crash(tmp_path):
    home = tmp_path / "home"
    run = subprocess.run([sys.executable, "-c", CRASH, str(home), ndjson(event(0)).decode(), T],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert run.returncode == 0, run.stderr
    answered = json.loads(run.stdout)
    assert len(answered) == 501
    log = home / "events.log"
    assert log.stat().st_size > 0  # the answered events are in the log only
    with open(log, "ab") as f:
        f.write(b"MQE2 torn")  # and a write the crash cut short
    with meterql.connect(home) as ws:
        assert log.stat().st_size == 0  # applied at opening, then emptied
        rows = ws.query("SELECT count(*), count(DISTINCT id), sum(qty) FROM "
                        "local.events.calls").rows()
        assert rows == [(502, 502, Decimal("1.5") * 502 + 1)]
        ids = {r[0] for r in ws.query("SELECT id FROM local.events.calls").rows()}
        assert set(answered) <= ids
        assert ws._local.watermark("local.events.calls")["last_ingest_at"] is not None
        retry = asyncio.run(ws.events.ingest_body_async(
            "calls", json.dumps({"id": "one", "timestamp": T, "customer_id": "acme",
                                 "qty": "2.5"}).encode(), "application/json"))
        assert [o.status for o in retry] == ["duplicate"]
    with meterql.connect(home) as ws:  # and opening again applies nothing twice
        assert ws.query("SELECT count(*) FROM local.events.calls").rows() == [(502,)]


def test_the_log_keeps_only_the_media_type_and_cuts_applied_records_past_its_limit(
        tmp_path, monkeypatch):
    from meterql.local import eventlog

    monkeypatch.setattr(eventlog, "_COMPACT_AT", 200)
    path = tmp_path / "events.log"
    log = EventLog(path)
    log.recover(0)
    odd = "application/json; x=" + "\u00e9" * 200  # (a header as it arrives: latin-1)
    for i in range(10):
        log.append([body_payload("calls", odd, b'{"n": %d}' % i)], AT)
    full = path.stat().st_size
    assert log.reset(6)  # records 1-6 are applied, 7-10 are not: the head is cut
    assert path.stat().st_size < full
    assert log.append([body_payload("calls", odd, b'{"n": 10}')], AT) == [11]
    log.close()
    log = EventLog(path)
    left = log.recover(6)
    assert [r.seq for r in left] == [7, 8, 9, 10, 11]
    assert {r.content_type for r in left} == {"application/json"}
    assert [json.loads(r.body)["n"] for r in left] == [6, 7, 8, 9, 10]
    assert log.reset(11) and path.stat().st_size == 0


def test_events_no_column_can_store_are_refused_before_they_are_answered(ws):
    ws.events.ingest_body("calls", json.dumps({**event(9), "meta": {"k": 1}}).encode(),
                          "application/json")
    lone = b'{"id": "s1", "timestamp": "%s", "customer_id": "acme", "note": "\\ud800"}' % (
        T.encode())
    out = push(ws, lone, "application/json")
    assert [o.status for o in out] == ["rejected"]
    assert "lone UTF-16 surrogate" in out[0].reason
    paired = push(ws, lone.replace(b"\\ud800", b"\\ud83d\\ude00"), "application/json")
    assert [o.status for o in paired] == ["accepted"]
    text = push(ws, json.dumps({**event(10), "meta": "plain"}).encode(), "application/json")
    assert isinstance(text, Accepted)  # (the logged way: it must apply)
    assert ws.query("SELECT id, note, meta FROM local.events.calls WHERE id IN ('s1', 'e10') "
                    "ORDER BY id").rows() == [("e10", None, '"plain"'), ("s1", "\U0001F600", None)]


def test_a_logged_record_that_cannot_be_applied_is_set_aside_and_the_rest_goes_on(tmp_path):
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.events.ingest_body("calls", ndjson(event(0)), "application/x-ndjson")
    log = EventLog(home / "events.log")
    log.recover(0)
    body = json.dumps(event(1)).encode()
    log.append([body_payload("calls", "application/json", body),
                body_payload("ghost", "application/json", body),  # no such stream
                body_payload("calls", "application/json", json.dumps(event(2)).encode())], AT)
    log.close()
    with meterql.connect(home) as ws:  # opens: the bad record does not block the others
        assert ws.query("SELECT list(id ORDER BY id) FROM local.events.calls").rows() == [
            (["e0", "e1", "e2"],)]
    aside = EventLog(home / "events.unapplied.log")
    kept = aside.recover(0)
    assert [(r.seq, r.stream, r.body) for r in kept] == [(2, "ghost", body)]
    assert (home / "events.log").stat().st_size == 0


def test_close_returns_when_the_log_cannot_be_applied_and_the_events_wait_for_the_next_opening(
        tmp_path, monkeypatch):
    home = tmp_path / "home"
    ws = meterql.connect(home)
    ws.events.ingest_body("calls", ndjson(event(0)), "application/x-ndjson")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LoggedPath, "_apply_records", disk_full)
    assert isinstance(push(ws, ndjson(event(1), event(2))), Accepted)
    started = time.monotonic()
    ws.close()
    assert time.monotonic() - started < 5
    monkeypatch.undo()
    with meterql.connect(home) as ws:
        assert ws.query("SELECT count(*) FROM local.events.calls").rows() == [(3,)]


def test_logged_events_read_back_by_arrow_keep_the_fingerprint_of_every_other_way(ws):
    kolkata = ZoneInfo("Asia/Kolkata")
    rich = {"id": "r1", "timestamp": (NOW - timedelta(minutes=5)).astimezone(kolkata)
            .isoformat(), "customer_id": "zo\u00eb", "qty": 12.000000001, "ok": True,
            "n": -7, "note": 'a"b\u00e9'}
    ws.events.ingest_body("calls", json.dumps({**rich, "id": "r0"}).encode(), "application/json")
    first = push(ws, json.dumps(rich).encode(), "application/json")
    assert isinstance(first, Accepted)  # logged as the body; applied through Arrow's reader
    ws.events.flush()
    for body, content_type in ((json.dumps([rich]).encode(), "application/json"),
                               (json.dumps(rich).encode(), "application/x-ndjson"),
                               (json.dumps(rich, indent=2).encode(), "application/json")):
        again = push(ws, body, content_type)
        assert [(o.status, o.reason) for o in again] == [("duplicate", "already stored")], (
            content_type, again[0].reason)
    changed = push(ws, json.dumps({**rich, "n": -8}).encode(), "application/json")
    assert [o.status for o in changed] == ["rejected"]


def test_decimals_with_more_digits_than_they_need_are_stored_both_ways(ws):
    wide = "1.5" + "0" * 45  # exact, but 47 digits as written
    logged = push(ws, b'{"id": "d1", "timestamp": "%s", "customer_id": "acme", "qty": 0e400}'
                  % T.encode(), "application/json")
    assert isinstance(logged, Accepted)
    also = push(ws, json.dumps({**event("d2"), "qty": wide}).encode(), "application/json")
    written = ws.events.ingest("calls", [{**event("d3"), "qty": Decimal(wide)}])
    assert [o.status for o in [*also, *written]] == ["accepted", "accepted"]
    assert ws.query("SELECT id, qty FROM local.events.calls WHERE id LIKE 'ed%' OR id LIKE 'd%' "
                    "ORDER BY id").rows() == [("d1", Decimal(0)), ("ed2", Decimal("1.5")),
                                               ("ed3", Decimal("1.5"))]
    assert not (ws.home / "events.unapplied.log").exists()
