"""The request guard (meterql/server/guard.py): every route's key, scope and body size are
checked before a byte of the body is read.

The app is driven as an ASGI server drives it, with a ``receive`` that counts what the app
reads: a refused request must not have read anything."""

from __future__ import annotations

import asyncio
import gzip
import json

import duckdb
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import SCOPES, create_key
from meterql.catalog.settings import SETTINGS
from meterql.server.app import create_app
from meterql.server.guard import Access, route_policies

MB = 1 << 20


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")
    con = duckdb.connect(str(root / "usage.duckdb"))
    con.execute("CREATE TABLE events AS SELECT 'acme' AS customer_id, 1 AS qty")
    con.close()
    ws = meterql.connect(root / "home")
    ws.sources.add("dk", f"duckdb://{root / 'usage.duckdb'}")
    keys = {scope: create_key(ws.keys, scope)[1] for scope in SCOPES}
    app = create_app(ws)
    yield app, keys, ws
    ws.close()


class Exchange:
    """One request through the app as a server would send it: ``chunks`` are the body's
    messages; ``read`` counts the bytes the app took from ``receive``."""

    def __init__(self, app, method: str, path: str, headers: dict[str, str],
                 chunks: list[bytes]) -> None:
        self.read = self.receives = 0
        self.messages: list[dict] = []
        body = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)] or [{"type": "http.request", "body": b""}]
        path, _, query = path.partition("?")

        async def receive() -> dict:
            self.receives += 1
            if body:
                message = body.pop(0)
                self.read += len(message["body"])
                return message
            await asyncio.Event().wait()  # (a server's receive waits for a disconnect)

        async def send(message: dict) -> None:
            self.messages.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "root_path": "", "server": ("test", 80),
                 "client": ("127.0.0.1", 5000),
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
        asyncio.run(app(scope, receive, send))

    @property
    def status(self) -> int:
        return self.messages[0]["status"]

    def json(self) -> dict:
        return json.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def guarded(app) -> list[tuple[str, str, str]]:
    """(method, concrete path, scope) of every route that needs a key."""
    return [(p.method, p.path.replace("{", "x").replace("}", ""), p.needs)
            for p in route_policies(app.routes) if p.needs is not None]


# -- every route has a scope and a limit ---------------------------------------------------------


def test_every_v1_route_but_health_has_a_scope_and_a_body_limit(served):
    app, _, _ = served
    policies = route_policies(app.routes)
    declared = {(p.method, p.path): p for p in policies}
    operations = {(method.upper(), path) for path, item in app.openapi()["paths"].items()
                  for method in item}
    assert operations <= set(declared)  # the guard knows every documented operation
    assert len(operations) >= 26
    for (method, path), policy in declared.items():
        assert policy.body_limit in SETTINGS and SETTINGS[policy.body_limit].type is int
        if path.startswith("/v1/") and path != "/v1/health":
            assert policy.needs in SCOPES, (method, path)
    assert declared[("GET", "/v1/health")].needs is None
    assert declared[("POST", "/v1/events/{stream}")].body_limit == "http_max_events_mb"
    assert declared[("POST", "/v1/tables/{name}/upload")].body_limit == "http_max_upload_mb"
    assert declared[("POST", "/v1/query")].body_limit == "http_max_body_mb"
    assert declared[("POST", "/v1/keys")].needs == "admin"


def test_a_route_without_a_scope_stops_the_server_from_starting():
    app = FastAPI()

    @app.get("/v1/forgotten")
    def forgotten() -> None: ...

    with pytest.raises(RuntimeError, match="/v1/forgotten declares 0 scopes"):
        route_policies(app.routes)
    twice = FastAPI()

    @twice.get("/v1/twice", dependencies=[Depends(Access("read")), Depends(Access("admin"))])
    def both() -> None: ...

    with pytest.raises(RuntimeError, match="declares 2 scopes"):
        route_policies(twice.routes)


# -- refused before the body ---------------------------------------------------------------------


def test_no_route_reads_a_body_without_a_valid_key(served):
    app, keys, ws = served
    revoked_id, revoked = create_key(ws.keys, "admin")
    ws.keys.revoke(revoked_id)
    body = [b'{"sql": "SELECT 1"}', b"x" * 1000]
    routes = guarded(app)
    assert len(routes) >= 25
    for method, path, _ in routes:
        for headers in ({}, bearer("mq_0000_nope"), bearer(revoked), {"Authorization": "Basic x"}):
            sent = Exchange(app, method, path, {**headers, "Content-Length": "2000"}, body)
            assert sent.receives == 0, (method, path)  # not one byte read
            if method == "GET" and not path.startswith("/v1/"):  # a navigator page: sign in
                assert sent.status == 303, (method, path, sent.messages)
                assert dict(sent.messages[0]["headers"])[b"location"].startswith(b"/signin")
                continue
            assert sent.status == 401, (method, path, sent.messages)
            assert sent.json()["title"] == "AuthenticationError"


def test_no_route_reads_a_body_for_a_key_without_the_scope(served):
    app, keys, _ = served
    for method, path, needs in guarded(app):
        for scope in SCOPES[:SCOPES.index(needs)]:
            sent = Exchange(app, method, path, bearer(keys[scope]), [b"{" * 5000, b"}"])
            assert sent.status == 403, (method, path, scope)
            assert sent.receives == 0
            assert f"needs the {needs} scope" in sent.json()["detail"]


def test_a_declared_length_over_the_limit_is_refused_unread(served):
    app, keys, ws = served
    cases = [("POST", "/v1/query", "read", "http_max_body_mb"),
             ("POST", "/v1/aggregates/x/evaluate", "read", "http_max_body_mb"),
             ("POST", "/v1/keys", "admin", "http_max_body_mb"),
             ("POST", "/v1/explain", "read", "http_max_body_mb"),
             ("POST", "/v1/aggregates/apply", "admin", "http_max_body_mb"),
             ("POST", "/v1/manual", "admin", "http_max_body_mb"),
             ("POST", "/v1/sync", "admin", "http_max_body_mb"),
             ("POST", "/v1/events/calls", "ingest", "http_max_events_mb"),
             ("POST", "/v1/tables/t/upload", "ingest", "http_max_upload_mb")]
    for method, path, scope, setting in cases:
        limit = ws.settings()[setting] * MB
        sent = Exchange(app, method, path, {**bearer(keys[scope]),
                                            "Content-Length": str(limit + 1)}, [b"{}"])
        assert sent.status == 413 and sent.receives == 0, (path, sent.messages)
        problem = sent.json()
        assert problem["title"] == "InputLimitError" and problem["instance"] == path
        assert setting in problem["hint"]
    bogus = Exchange(app, "POST", "/v1/query", {**bearer(keys["read"]),
                                                "Content-Length": "-5"}, [b"{}"])
    assert bogus.status == 413 and bogus.receives == 0


def test_a_chunked_body_is_cut_at_the_limit(served):
    app, keys, _ = served
    chunk = b" " * (64 << 10)
    for path, scope in (("/v1/query", "read"), ("/v1/tables/t/rows", "ingest"),
                        ("/v1/keys", "admin"), ("/v1/aggregates/apply", "admin"),
                        ("/v1/explain", "read")):
        # 1 MB of JSON whitespace, then more: no Content-Length, so it is counted as it comes
        chunks = [b'{"sql": "SELECT 1"'] + [chunk] * 40 + [b"}"]
        sent = Exchange(app, "POST", path, bearer(keys[scope]), chunks)
        assert sent.status == 413, (path, sent.messages)
        assert sent.read <= MB + len(chunk)  # never more than the limit and one chunk
        assert sent.json()["title"] == "InputLimitError"
    assert [m["type"] for m in sent.messages] == ["http.response.start", "http.response.body"]
    # under the limit the same route answers normally
    small = Exchange(app, "POST", "/v1/query", bearer(keys["read"]),
                     [b'{"sql": "SELECT qty FROM dk.main.events"', chunk, b"}"])
    assert small.status == 200 and small.json()["rows"] == [[1]]


def test_event_pushes_and_uploads_have_their_own_limits(served):
    app, keys, ws = served
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    client = TestClient(app)
    event = {"id": "e1", "timestamp": "2026-01-01T00:00:00Z", "customer_id": "acme"}
    padded = json.dumps({**event, "pad": "x" * (2 * MB)})
    # 2 MB: over http_max_body_mb, under http_max_events_mb (64)
    assert client.post("/v1/events/calls", headers={**ingest, "Content-Type":
                       "application/json"}, content=padded).status_code != 413
    ws.settings.set("http_max_events_mb", 1)
    ws.settings.set("http_max_upload_mb", 1)
    try:
        over = client.post("/v1/events/calls", headers={**ingest, "Content-Type":
                           "application/json"}, content=padded)
        assert over.status_code == 413 and "http_max_events_mb" in over.json()["hint"]
        # a chunked push (the fast path in push.py) is cut too
        chunked = client.post("/v1/events/calls", headers=ingest,
                              content=(b"x" * (256 << 10) for _ in range(8)))
        assert chunked.status_code == 413, chunked.text
        # a small gzip body that decompresses past the limit
        bomb = gzip.compress(b"[" + b" " * (2 * MB) + b"]")
        assert len(bomb) < 10_000
        inflated = client.post("/v1/events/calls", content=bomb, headers={
            **ingest, "Content-Type": "application/json", "Content-Encoding": "gzip"})
        assert inflated.status_code == 413, inflated.text
        assert "once decompressed" in inflated.json()["detail"]
        csv = b"plan,price\n" + b"starter,10.5\n" * 100_000  # 1.3 MB
        upload = client.post("/v1/tables/prices/upload", headers=ingest,
                             files={"file": ("p.csv", csv, "text/csv")})
        assert upload.status_code == 413 and "http_max_upload_mb" in upload.json()["hint"]
    finally:
        ws.settings.set("http_max_events_mb", 64)
        ws.settings.set("http_max_upload_mb", 64)
    upload = client.post("/v1/tables/prices/upload", headers=ingest,
                         files={"file": ("p.csv", csv, "text/csv")})
    assert upload.status_code == 201, upload.text


def test_public_pages_need_no_key(served):
    app, _, _ = served
    client = TestClient(app)
    for path in ("/v1/health", "/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 200, path
    unknown = client.post("/v1/nothing", content=b"x" * 100)
    assert unknown.status_code == 404  # no route: FastAPI answers, nothing is read for it


def test_a_route_the_guard_never_saw_fails_closed(served):
    _, keys, ws = served
    late = create_app(ws)

    @late.get("/v1/late", dependencies=[Depends(Access("read"))])
    def added_after_startup() -> dict:
        return {"opened": True}

    with TestClient(late, raise_server_exceptions=False) as client:
        answer = client.get("/v1/late", headers={"Authorization": f"Bearer {keys['admin']}"})
    assert answer.status_code == 500 and "opened" not in answer.text
    assert answer.json()["title"] == "InternalError"
