"""The HTTP API in process (httpx via Starlette's TestClient): every endpoint, every scope, the
problem+json envelope, formats, streaming, and the aggregates over HTTP."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.server.app import create_app
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    con = duckdb.connect(str(root / "usage.duckdb"))
    con.execute("CREATE TABLE events (customer_id VARCHAR, ts TIMESTAMPTZ, qty DECIMAL(18,6))")
    con.execute("INSERT INTO events VALUES ('acme', '2026-10-05 10:00:00+00', 1.000001), "
                "('acme', '2026-10-31 23:30:00+00', 2), ('bolt', '2026-10-10 00:00:00+00', 0.5)")
    con.execute("CREATE TABLE big AS SELECT range AS i, range * 2 AS j FROM range(1000000)")
    con.close()
    ws = meterql.connect(root / "home")
    ws.sources.add("dk", f"duckdb://{root / 'usage.duckdb'}")
    keys = {scope: create_key(ws.keys, scope, f"{scope} key")[1]
            for scope in ("read", "ingest", "admin")}
    revoked_id, revoked = create_key(ws.keys, "admin", "old")
    ws.keys.revoke(revoked_id)
    keys["revoked"] = revoked
    with TestClient(create_app(ws)) as client:
        yield client, keys, ws
    ws.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


AGGREGATE = {
    "name": "usage_qty",
    "sql": "SELECT customer_id, sum(qty) AS quantity FROM dk.main.events "
           "WHERE ts >= :period_start AND ts < :period_end GROUP BY customer_id",
    "unit": "unit",
}

READ_ENDPOINTS = [
    ("post", "/v1/query", {"sql": "SELECT count(*) AS n FROM dk.main.events"}),
    ("get", "/v1/aggregates", None),
    ("get", "/v1/sources", None),
    ("get", "/v1/tables", None),
    ("get", "/v1/tables/dk.main.events", None),
    ("get", "/v1/evaluations", None),
]


def call(client, method, path, body, headers=None):
    return client.request(method, path, json=body, headers=headers or {})


def test_health_needs_no_key(server):
    client, _, _ = server
    response = client.get("/v1/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize("method,path,body", READ_ENDPOINTS)
def test_every_endpoint_refuses_missing_wrong_and_revoked_keys(server, method, path, body):
    client, keys, _ = server
    for headers, detail in (({}, "needs an API key"),
                            (auth("mq_0000_nope"), "not valid"),
                            (auth(keys["revoked"]), "revoked")):
        response = call(client, method, path, body, headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert detail in response.json()["detail"]
    for scope in ("read", "ingest", "admin"):  # read is inside every scope
        assert call(client, method, path, body, auth(keys[scope])).status_code == 200, scope


def test_saving_an_aggregate_needs_the_admin_scope(server):
    client, keys, _ = server
    for scope in ("read", "ingest"):
        response = client.post("/v1/aggregates", json=AGGREGATE, headers=auth(keys[scope]))
        assert response.status_code == 403
        assert response.json()["title"] == "ScopeError"
        assert "needs the admin scope" in response.json()["detail"]


def test_query_answers_json_csv_and_arrow(server):
    client, keys, _ = server
    body = {"sql": "SELECT customer_id, qty FROM dk.main.events WHERE qty > :low ORDER BY qty",
            "params": {"low": "0.9"}}
    as_json = client.post("/v1/query", json=body, headers=auth(keys["read"]))
    payload = as_json.json()
    assert payload["rows"] == [["acme", "1.000001"], ["acme", "2.000000"]]  # exact decimals
    assert payload["columns"][1] == {"name": "qty", "type": "DECIMAL(18,6)"}
    assert payload["row_count"] == 2 and payload["truncated"] is False
    as_csv = client.post("/v1/query", json=body, headers={**auth(keys["read"]),
                                                           "Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    # decimals as their exact positional text (Arrow would write 1E-7 for 0.0000001); fields
    # quoted only where needed, as `meterql query --format csv` writes them
    assert as_csv.text.splitlines() == ["customer_id,qty", "acme,1.000001", "acme,2.000000"]
    as_arrow = client.post("/v1/query", json=body, headers={
        **auth(keys["read"]), "Accept": "application/vnd.apache.arrow.stream"})
    table = pa.ipc.open_stream(io.BytesIO(as_arrow.content)).read_all()
    assert table.column("qty").to_pylist() == [Decimal("1.000001"), Decimal("2.000000")]
    assert as_arrow.headers["x-meterql-rows"] == "2"


def test_a_million_rows_stream(server):
    client, keys, _ = server
    body = {"sql": "SELECT i, j FROM dk.main.big"}
    headers = {**auth(keys["read"]), "Accept": "application/vnd.apache.arrow.stream"}
    with client.stream("POST", "/v1/query", json=body, headers=headers) as response:
        chunks = list(response.iter_raw())
    assert len(chunks) > 10  # sent batch by batch, not as one body
    table = pa.ipc.open_stream(io.BytesIO(b"".join(chunks))).read_all()
    assert table.num_rows == 1_000_000
    assert pa.compute.sum(table.column("j")).as_py() == 2 * sum(range(1_000_000))
    as_json = client.post("/v1/query", json=body, headers=auth(keys["read"]))
    assert as_json.json()["row_count"] == 1_000_000


@pytest.mark.parametrize("body,status,title,extra", [
    ({"sql": "SELEC 1"}, 400, "SqlParseError", {"line": 1}),
    ({"sql": "SELECT * FROM dk.main.evnts"}, 400, "UnknownTableError",
     {"hint": "did you mean 'dk.main.events'?"}),
    ({"sql": "DELETE FROM dk.main.events"}, 400, "StatementNotAllowedError", {}),
    ({"sql": "SELECT qty FROM dk.main.events WHERE qty > :missing"}, 400, "ParameterError",
     {}),
    ({"params": {}}, 422, "InvalidRequest", {}),
    ({"sql": "SELECT 1", "bogus": 1}, 422, "InvalidRequest", {}),
])
def test_errors_are_problem_json(server, body, status, title, extra):
    client, keys, _ = server
    response = client.post("/v1/query", json=body, headers=auth(keys["read"]))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == title and problem["status"] == status
    assert problem["type"].startswith("/problems/") and problem["detail"]
    assert problem["instance"] == "/v1/query"
    for key, value in extra.items():
        assert problem[key] == value


def test_unknown_routes_and_tables_are_404_problems(server):
    client, keys, _ = server
    missing = client.get("/v1/nothing", headers=auth(keys["read"]))
    assert missing.status_code == 404 and missing.json()["title"] == "NotFound"
    table = client.get("/v1/tables/dk.main.evnts", headers=auth(keys["read"]))
    assert table.status_code == 404 and "did you mean" in table.json()["hint"]
    agg = client.get("/v1/aggregates/nope", headers=auth(keys["read"]))
    assert agg.status_code == 404 and agg.json()["title"] == "UnknownAggregateError"


def test_catalog_endpoints(server):
    client, keys, _ = server
    [source] = client.get("/v1/sources", headers=auth(keys["read"])).json()
    assert source["name"] == "dk" and source["kind"] == "duckdb" and source["tables"] == 2
    names = [t["name"] for t in client.get("/v1/tables", headers=auth(keys["read"])).json()]
    assert names == ["dk.main.big", "dk.main.events"]
    detail = client.get("/v1/tables/events?sample=2", headers=auth(keys["read"])).json()
    assert [c["name"] for c in detail["columns"]] == ["customer_id", "ts", "qty"]
    assert len(detail["sample"]) == 2 and detail["name"] == "dk.main.events"


def test_aggregates_over_http(server):
    client, keys, _ = server
    admin, read = auth(keys["admin"]), auth(keys["read"])
    created = client.post("/v1/aggregates", json=AGGREGATE, headers=admin)
    assert created.status_code == 201 and created.json()["version"] == 1
    again = client.post("/v1/aggregates", json=AGGREGATE, headers=admin)
    assert again.status_code == 200 and again.json() == {**created.json(), "created": False}
    period = {"from": "2026-10-01", "to": "2026-11-01", "tz": "Europe/Berlin",
              "customers": ["acme", "bolt", "cleo"]}
    v1 = client.post("/v1/aggregates/usage_qty/evaluate", json=period, headers=read).json()
    by_customer = {r["customer_id"]: r["quantity"] for r in v1["rows"]}
    # acme's 23:30 UTC event on Oct 31 is Nov 1 in Berlin: outside; cleo has no usage: zero.
    assert by_customer == {"acme": "1.000001", "bolt": "0.500000", "cleo": "0.000000"}
    assert v1["evaluation"]["provenance"]["sources"] == [
        {"name": "dk", "kind": "duckdb", "mode": "direct"}]
    doubled = {**AGGREGATE, "sql": AGGREGATE["sql"].replace("sum(qty)", "sum(qty) * 2")}
    assert client.post("/v1/aggregates", json=doubled, headers=admin).json()["version"] == 2
    v2 = client.post("/v1/aggregates/usage_qty/evaluate", json=period, headers=read).json()
    old = client.post("/v1/aggregates/usage_qty/evaluate", json={**period, "version": 1},
                      headers=read).json()
    assert old["rows"] == v1["rows"] and v2["rows"] != v1["rows"]
    assert old["evaluation"]["result_hash"] == v1["evaluation"]["result_hash"]
    versions = client.get("/v1/aggregates/usage_qty", headers=read).json()
    assert [v["version"] for v in versions] == [1, 2]
    dry = client.post("/v1/aggregates/usage_qty/dry-run", headers=read, json={
        **period, "sql": AGGREGATE["sql"].replace("sum(qty)", "sum(qty) + 1")}).json()
    assert dry["current_version"] == 2
    # cleo has no usage: 0 in both (zero-filled), the others change
    assert dry["diff"]["summary"] == {"added": 0, "removed": 0, "changed": 2, "unchanged": 1}
    log = client.get("/v1/evaluations?aggregate=usage_qty", headers=read).json()
    assert len(log) == 3  # dry runs are not logged
    assert log[0]["provenance"]["parameters"]["tz"] == "Europe/Berlin"
    invalid = client.post("/v1/aggregates", headers=admin, json={
        **AGGREGATE, "sql": AGGREGATE["sql"].replace("qty)", "qtty)")})
    assert invalid.status_code == 400 and invalid.json()["title"] == "InvalidAggregateError"
    assert invalid.json()["hint"] == "did you mean 'qty'?" and invalid.json()["column"] > 1


def test_openapi_describes_every_endpoint(server):
    client, _, _ = server
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/v1/query", "/v1/aggregates", "/v1/aggregates/{name}/evaluate",
            "/v1/aggregates/{name}/dry-run", "/v1/sources", "/v1/tables", "/v1/tables/{name}",
            "/v1/health"} <= paths
    assert "HTTPBearer" in json.dumps(spec["components"])


def test_the_row_cap_of_the_server_and_of_a_request(server):
    _, keys, ws = server
    with TestClient(create_app(ws, max_rows=5)) as capped:
        body = {"sql": "SELECT i FROM dk.main.big ORDER BY i"}
        answer = capped.post("/v1/query", json=body, headers=auth(keys["read"])).json()
        assert answer["row_count"] == 5 and answer["truncated"] is True
        asked = capped.post("/v1/query", json={**body, "max_rows": 3},
                            headers=auth(keys["read"])).json()
        assert [r[0] for r in asked["rows"]] == [0, 1, 2] and asked["truncated"] is True
        more = capped.post("/v1/query", json={**body, "max_rows": 50},
                           headers=auth(keys["read"])).json()
        assert more["row_count"] == 5  # a request cannot raise the server's cap


def test_the_server_runs_sync_schedules(tmp_path):
    import sqlite3

    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, plan TEXT)")
        con.execute("INSERT INTO accounts VALUES (1, 'starter')")
    ws = meterql.connect(tmp_path / "home")
    ws.sources.add("crm", f"sqlite:///{path}", mode="sync", options={"sync_every_s": 1})
    _, key = create_key(ws.keys, "read")
    query = {"sql": "SELECT count(*) AS n FROM crm.main.accounts"}

    def count(client):
        answer = client.post("/v1/query", json=query, headers=auth(key))
        return answer.json()["rows"][0][0] if answer.status_code == 200 else None

    try:
        with TestClient(create_app(ws, sync=True)) as client:
            # the first scheduled sync
            assert wait_until(lambda: count(client) == 1, timeout=15, interval=0.2)
            with sqlite3.connect(path) as con:
                con.execute("INSERT INTO accounts VALUES (2, 'growth')")
            # picked up by a later one
            assert wait_until(lambda: count(client) == 2, timeout=15, interval=0.2)

            def marked_rows():
                [source] = client.get("/v1/sources", headers=auth(key)).json()
                return source["watermarks"][0]["rows"]
            # The rows and the sync state commit together; the workspace reads the state into
            # its watermarks just after, so for a moment a watermark may lag the rows (never
            # lead them: a freshness bound errs towards the source).
            assert wait_until(lambda: marked_rows() == 2, timeout=5, interval=0.1)
    finally:
        ws.close()


def test_an_unexpected_error_is_a_500_problem(server, monkeypatch):
    _, keys, ws = server

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ws, "sources", broken)
    with TestClient(create_app(ws), raise_server_exceptions=False) as client:
        response = client.get("/v1/sources", headers=auth(keys["read"]))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "InternalError"
    assert "a bug" not in response.text  # (the error is in the server's log only)


def test_keys_are_made_listed_and_revoked_over_http(server):
    client, keys, ws = server
    admin = auth(keys["admin"])
    for scope in ("read", "ingest"):
        denied = client.post("/v1/keys", json={"scope": "read"}, headers=auth(keys[scope]))
        assert denied.status_code == 403 and "admin scope" in denied.json()["detail"]
    made = client.post("/v1/keys", json={"scope": "read", "name": "dashboard"}, headers=admin)
    assert made.status_code == 201, made.text
    new = made.json()
    assert new["scope"] == "read" and new["name"] == "dashboard"
    assert new["key"].startswith(f"mq_{new['id']}_")
    assert client.get("/v1/sources", headers=auth(new["key"])).status_code == 200
    assert client.post("/v1/aggregates", json=AGGREGATE,
                       headers=auth(new["key"])).status_code == 403  # only read

    listed = client.get("/v1/keys", headers=admin)
    assert listed.status_code == 200
    entry = next(k for k in listed.json() if k["id"] == new["id"])
    assert set(entry) == {"id", "name", "scope", "created_at", "revoked_at"}
    assert entry["revoked_at"] is None
    secret = new["key"].split("_", 2)[2]
    stored_hash = ws.keys.get(new["id"])[1]
    assert secret not in listed.text and stored_hash not in listed.text

    assert client.delete(f"/v1/keys/{new['id']}", headers=admin).status_code == 204
    refused = client.get("/v1/sources", headers=auth(new["key"]))  # the very next request
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert client.delete(f"/v1/keys/{new['id']}", headers=admin).status_code == 204  # again
    entry = next(k for k in client.get("/v1/keys", headers=admin).json()
                 if k["id"] == new["id"])
    assert entry["revoked_at"] is not None
    unknown = client.delete("/v1/keys/00000000", headers=admin)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["title"] == "UnknownApiKey"
    bad = client.post("/v1/keys", json={"scope": "root"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["location"] == "body.scope"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_another_origin(server, page):
    from html.parser import HTMLParser

    client, _, _ = server

    class Links(HTMLParser):
        urls: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]

    html = client.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    links = Links()
    links.urls = []
    links.feed(html.text)
    links.urls += re.findall(r"""\burl:\s*['"]([^'"]+)""", html.text)  # Swagger UI's spec
    assert len(links.urls) >= 3, links.urls
    assert "http" not in html.text.lower().replace("http-equiv", "")  # no absolute URL at all
    for url in links.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert len(answer.content) > 1000, url
    kinds = {client.get(u).headers["content-type"].split(";")[0] for u in links.urls}
    assert "application/json" in kinds and ("text/javascript" in kinds
                                            or "application/javascript" in kinds)
