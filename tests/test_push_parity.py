"""The event push fast path (meterql/server/push.py) answers exactly as the FastAPI route does.

``POST /v1/events/{stream}`` without a query string is answered by the ``EventPush``
middleware, before FastAPI's routing; with one, by the route in meterql/server/ingest.py. Two
workspaces get the same requests in the same order, one through each path (a query parameter
the route ignores forces the route), and every answer must match: status, headers and body,
byte for byte."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.server import ingest, push
from meterql.server.app import create_app

T = (datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)).isoformat()
JSON, NDJSON = "application/json", "application/x-ndjson"


def event(event_id: str, **fields) -> dict:
    return {"id": event_id, "timestamp": T, "customer_id": "acme", "n": 1, **fields}


def body(value) -> bytes:
    return json.dumps(value).encode()


#: (what, stream, body, headers): sent in this order to both paths. ``key`` in the headers is
#: replaced by the workspace's key of that scope.
REQUESTS = [
    ("accepted", "calls", body(event("e1")), {"Content-Type": JSON}),
    ("a batch accepted", "calls", body([event("e2"), event("e3")]), {"Content-Type": JSON}),
    ("duplicate", "calls", body(event("e1")), {"Content-Type": JSON}),
    ("rejected: no customer", "calls", body({"id": "e4", "timestamp": T, "n": 1}),
     {"Content-Type": JSON}),
    ("mixed: 207", "calls", body([event("e6"), {"id": "e7", "timestamp": T}, event("e1")]),
     {"Content-Type": JSON}),
    ("NDJSON with a line that is not JSON", "calls",
     body(event("e8")) + b"\n{not json\n" + body(event("e9")), {"Content-Type": NDJSON}),
    ("malformed body: 400", "calls", b'{"id": "e10", ', {"Content-Type": JSON}),
    ("not UTF-8: 400", "calls", b'{"id": "\xff"}', {"Content-Type": JSON}),
    ("a stream's first push creates it", "fresh", body(event("f1")), {"Content-Type": JSON}),
    ("a stream name that cannot be one", "Bad-Name", body(event("b1")), {"Content-Type": JSON}),
    ("bad key: 401", "calls", body(event("k1")),
     {"Content-Type": JSON, "Authorization": "Bearer mq_0000_nope"}),
    ("no key: 401", "calls", body(event("k2")), {"Content-Type": JSON, "Authorization": ""}),
    ("wrong scope: 403", "calls", body(event("k3")),
     {"Content-Type": JSON, "Authorization": "read"}),
    ("too large: 413 from Content-Length", "calls", b" " * (1 << 20) + body(event("l1")),
     {"Content-Type": JSON}),
    ("gzip", "calls", gzip.compress(body([event("g1"), event("g2")])),
     {"Content-Type": JSON, "Content-Encoding": "gzip"}),
    ("gzip that does not decompress: 400", "calls", b"\x1f\x8b not gzip",
     {"Content-Type": JSON, "Content-Encoding": "gzip"}),
    ("gzip too large once decompressed: 413", "calls",
     gzip.compress(b" " * (2 << 20) + body(event("g3"))),
     {"Content-Type": JSON, "Content-Encoding": "gzip"}),
    ("CloudEvents", "calls",
     body({"specversion": "1.0", "id": "c1", "source": "billing", "type": "usage", "time": T,
           "subject": "acme", "data": {"n": 2}}),
     {"Content-Type": "application/cloudevents+json"}),
]


#: Answered by the request guard, before either path.
GUARDED = {"bad key: 401", "no key: 401", "wrong scope: 403",
           "too large: 413 from Content-Length"}


@pytest.fixture()
def paths(tmp_path):
    """(client, keys) for the fast path's workspace and for the route's."""
    root = tmp_path
    opened = []
    for name in ("fast", "route"):
        ws = meterql.connect(root / name)
        ws.settings.set("http_max_events_mb", 1)
        keys = {scope: create_key(ws.keys, scope)[1] for scope in ("read", "ingest")}
        client = TestClient(create_app(ws), raise_server_exceptions=False)
        client.__enter__()
        opened.append((ws, client, keys))
    yield {"fast": opened[0][1:], "route": opened[1][1:]}
    for ws, client, _ in opened:
        client.__exit__(None, None, None)
        ws.close()


def send(client, keys, stream, content, headers, query=""):
    auth = headers.get("Authorization", "ingest")
    headers = {**headers, "Authorization": f"Bearer {keys[auth]}" if auth in keys else auth}
    if not headers["Authorization"]:
        del headers["Authorization"]
    return client.post(f"/v1/events/{stream}{query}", content=content, headers=headers)


def test_the_fast_path_and_the_route_answer_every_push_alike(paths, monkeypatch):
    answered_by = []

    def spy(name, original):
        async def counted(*args, **kwargs):
            answered_by.append(name)
            return await original(*args, **kwargs)
        return counted

    monkeypatch.setattr(push, "push_response", spy("fast", push.push_response))
    monkeypatch.setattr(ingest, "push_response", spy("route", ingest.push_response))
    fast_client, fast_keys = paths["fast"]
    route_client, route_keys = paths["route"]
    seen = set()
    for what, stream, content, headers in REQUESTS:
        answered_by.clear()
        fast = send(fast_client, fast_keys, stream, content, headers)
        by_fast = list(answered_by)
        answered_by.clear()
        route = send(route_client, route_keys, stream, content, headers, "?via=route")
        assert (fast.status_code, dict(fast.headers), fast.content) == \
            (route.status_code, dict(route.headers), route.content), what
        # each request was answered where it should have been (or by the guard before both)
        expected = ([], []) if what in GUARDED else (["fast"], ["route"])
        assert (by_fast, answered_by) == expected, what
        seen.add(fast.status_code)
    assert seen == {200, 207, 400, 401, 403, 413, 422}  # every kind of answer was compared
    stored = []
    for client, keys in (paths["fast"], paths["route"]):
        answer = client.post("/v1/query", headers={"Authorization": f"Bearer {keys['read']}"},
                             json={"sql": "SELECT id, customer_id, n FROM local.events.calls "
                                          "ORDER BY id"})
        stored.append(answer.json()["rows"])
    assert stored[0] == stored[1] and len(stored[0]) >= 8
