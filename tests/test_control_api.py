"""The control plane's endpoints for the CLI's remaining commands: ``POST /v1/explain``,
``GET /v1/streams``, manual tables (create, audit), ``POST /v1/aggregates/apply``, and the
NDJSON progress of ``POST /v1/sync``. Each answers what the library call answers (the CLI's
output comes from the same call)."""

from __future__ import annotations

import json
import sqlite3

import duckdb
import pytest
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.encoders import json_value
from meterql.errors import InvalidAggregateError, SourceUnavailableError
from meterql.server.app import create_app
from meterql.sync.runner import SyncReport


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("control")
    con = duckdb.connect(str(root / "usage.duckdb"))
    con.execute("CREATE TABLE events (customer_id VARCHAR, ts TIMESTAMPTZ, qty DECIMAL(18,6))")
    con.execute("INSERT INTO events VALUES ('acme', '2026-10-05 10:00:00+00', 1.5), "
                "('bolt', '2026-10-10 00:00:00+00', 0.5)")
    con.close()
    ws = meterql.connect(root / "home")
    ws.sources.add("dk", f"duckdb://{root / 'usage.duckdb'}")
    keys = {scope: create_key(ws.keys, scope, f"{scope} key")[1]
            for scope in ("read", "ingest", "admin")}
    with TestClient(create_app(ws)) as client:
        yield client, keys, ws
    ws.close()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- explain -----------------------------------------------------------------------------------


def test_explain_answers_the_plan_the_cli_prints(server):
    client, keys, ws = server
    sql = "SELECT customer_id, sum(qty) AS q FROM dk.main.events WHERE qty > 1 GROUP BY 1"
    answer = client.post("/v1/explain", json={"sql": sql}, headers=auth(keys["read"]))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"plan": str(ws.explain(sql)), "params": []}
    assert "fragment f1 on source 'dk'" in answer.json()["plan"]

    pg_style = client.post("/v1/explain", headers=auth(keys["read"]), json={
        "sql": "SELECT customer_id::text AS c FROM dk.main.events", "dialect": "postgres"})
    assert pg_style.json() == {"plan": str(ws.explain(
        "SELECT customer_id::text AS c FROM dk.main.events", "postgres")), "params": []}
    with_params = client.post("/v1/explain", headers=auth(keys["read"]), json={
        "sql": "SELECT * FROM dk.main.events WHERE customer_id = :c AND qty > :q"})
    assert with_params.json()["params"] == ["c", "q"]

    assert client.post("/v1/explain", json={"sql": sql}).status_code == 401
    unknown = client.post("/v1/explain", headers=auth(keys["read"]),
                          json={"sql": "SELECT * FROM dk.main.evnts"})
    assert unknown.status_code == 400 and unknown.json()["title"] == "UnknownTableError"
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "did you mean" in unknown.json()["hint"]
    not_a_select = client.post("/v1/explain", headers=auth(keys["read"]),
                               json={"sql": "DELETE FROM dk.main.events"})
    assert not_a_select.status_code == 400
    extra = client.post("/v1/explain", headers=auth(keys["read"]),
                        json={"sql": sql, "params": {}})
    assert extra.status_code == 422 and extra.json()["title"] == "InvalidRequest"


# -- event streams -----------------------------------------------------------------------------


def test_streams_are_created_listed_and_shown(server):
    client, keys, ws = server
    made = client.put("/v1/events/calls", headers=auth(keys["ingest"]), json={
        "id_field": "event_id", "customer_field": "account",
        "columns": {"event_id": "VARCHAR", "timestamp": "TIMESTAMPTZ", "account": "VARCHAR",
                    "qty": "DECIMAL(18,2)"}})
    assert made.status_code == 201, made.text
    config = ws.events.stream("calls")
    expected = {"stream": "calls", "id_field": "event_id", "timestamp_field": "timestamp",
                "customer_field": "account", "declared": True,
                "columns": dict(config.columns)}
    assert made.json() == expected
    assert list(expected["columns"]) == ["event_id", "timestamp", "account", "qty"]

    shown = client.get("/v1/streams/calls", headers=auth(keys["read"]))
    assert shown.status_code == 200 and shown.json() == expected
    listed = client.get("/v1/streams", headers=auth(keys["read"]))
    assert listed.status_code == 200
    assert [s["stream"] for s in listed.json()] == [c.name for c in ws.events.streams()]
    assert expected in listed.json()

    unknown = client.get("/v1/streams/cals", headers=auth(keys["read"]))
    assert unknown.status_code == 404 and unknown.json()["title"] == "UnknownStreamError"
    assert client.get("/v1/streams").status_code == 401
    assert client.put("/v1/events/other", headers=auth(keys["read"]),
                      json={}).status_code == 403


# -- manual tables -----------------------------------------------------------------------------


def test_manual_tables_are_created_shown_and_audited(server):
    client, keys, ws = server
    admin, read = auth(keys["admin"]), auth(keys["read"])
    body = {"name": "credits", "columns": {"customer_id": "VARCHAR",
                                           "amount": "decimal(18, 2)", "note": "TEXT"},
            "key": ["customer_id"]}
    assert client.post("/v1/manual", headers=auth(keys["ingest"]), json=body).status_code == 403
    made = client.post("/v1/manual", headers=admin, json=body)
    assert made.status_code == 201, made.text
    expected = {"table": "local.manual.credits", "name": "credits",
                "columns": {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)",
                            "note": "VARCHAR"},
                "key": ["customer_id"]}
    assert made.json() == expected
    entry = ws.tables.get("local.manual.credits")
    assert [c.name for c in entry.columns] == list(expected["columns"])
    assert list(entry.primary_key) == ["customer_id"]

    assert client.get("/v1/manual/credits", headers=read).json() == expected
    assert expected in client.get("/v1/manual", headers=read).json()
    unknown = client.get("/v1/manual/credit", headers=read)
    assert unknown.status_code == 404 and unknown.json()["title"] == "UnknownTableError"
    assert unknown.json()["hint"] == "did you mean 'credits'?"

    again = client.post("/v1/manual", headers=admin, json=body)
    assert again.status_code == 400 and "local.manual.credits exists" in again.text
    no_key = client.post("/v1/manual", headers=admin, json={**body, "key": ["nope"]})
    assert no_key.status_code == 400 and no_key.json()["title"] == "IngestError"
    bad_type = client.post("/v1/manual", headers=admin,
                           json={**body, "name": "c2", "columns": {"a": "NOT A TYPE"},
                                 "key": ["a"]})
    assert bad_type.status_code == 400, bad_type.text
    assert client.post("/v1/manual", headers=admin,
                       json={**body, "extra": 1}).status_code == 422

    ingest = auth(keys["ingest"])
    assert client.post("/v1/tables/credits/rows", headers=ingest, json={
        "values": {"customer_id": "acme", "amount": 12.5}}).status_code == 201
    assert client.patch("/v1/tables/credits/rows", headers=ingest, json={
        "key": {"customer_id": "acme"}, "values": {"amount": 20}}).status_code == 200

    logged = client.get("/v1/audit", headers=read, params={"table": "credits"})
    assert logged.status_code == 200
    assert logged.json() == json_value(ws.manual.audit("credits"))
    assert [(e["action"], e["actor"]) for e in logged.json()] == [
        ("create", keys["admin"].split("_")[1]), ("insert", keys["ingest"].split("_")[1]),
        ("update", keys["ingest"].split("_")[1])]
    assert logged.json()[2]["before"] == {"customer_id": "acme", "amount": "12.50",
                                          "note": None}
    assert logged.json()[2]["after"]["amount"] == "20.00"
    everything = client.get("/v1/audit", headers=read).json()
    assert everything == json_value(ws.manual.audit())
    assert client.get("/v1/audit", headers=read, params={"table": "nope"}).json() == []
    assert client.get("/v1/audit").status_code == 401


# -- aggregates: a set of definitions ----------------------------------------------------------

SQL = ("SELECT customer_id, sum(qty) AS quantity\nFROM dk.main.events\n"
       "WHERE ts >= :period_start AND ts < :period_end\nGROUP BY customer_id")


def test_a_set_of_definitions_is_applied_all_or_nothing(server, tmp_path):
    client, keys, ws = server
    admin = auth(keys["admin"])
    qty = {"origin": "qty.sql", "text": "-- name: qty_sum\n-- unit: unit\n\n" + SQL + ";\n"}
    calls = {"origin": "calls.sql", "text": "-- name: calls_n\n" + SQL.replace(
        "sum(qty)", "count(*)")}
    bad = {"origin": "bad.sql", "text": "-- name: bad_one\n-- unit: x\n\n"
                                        + SQL.replace("sum(qty)", "sum(qtty)")}
    refused = client.post("/v1/aggregates/apply", headers=admin,
                          json={"definitions": [qty, calls, bad]})
    assert refused.status_code == 400, refused.text
    problem = refused.json()
    assert problem["title"] == "InvalidAggregateError"
    assert problem["detail"].startswith("bad.sql: ") and "qtty" in problem["detail"]
    assert (problem["line"], problem["column"]) == (4, 25)  # the line in bad.sql
    assert problem["hint"] == "did you mean 'qty'?"
    assert [a.name for a in ws.aggregates.list()
            if a.name in ("qty_sum", "calls_n", "bad_one")] == []  # nothing saved

    header = client.post("/v1/aggregates/apply", headers=admin, json={"definitions": [
        qty, {"origin": "h.sql", "text": "-- name: h\n-- units: x\n" + SQL}]})
    assert header.status_code == 400 and header.json()["detail"].startswith("h.sql: ")
    twice = client.post("/v1/aggregates/apply", headers=admin, json={"definitions": [
        qty, {**qty, "origin": "copy.sql"}]})
    assert twice.status_code == 400
    assert "copy.sql and qty.sql both define 'qty_sum'" in twice.json()["detail"]
    assert client.post("/v1/aggregates/apply", headers=admin,
                       json={"definitions": []}).status_code == 422
    assert client.post("/v1/aggregates/apply", headers=auth(keys["ingest"]),
                       json={"definitions": [qty]}).status_code == 403

    applied = client.post("/v1/aggregates/apply", headers=admin,
                          json={"definitions": [qty, calls]})
    assert applied.status_code == 200, applied.text
    assert [{k: a[k] for k in ("name", "version", "new")} for a in applied.json()] == [
        {"name": "qty_sum", "version": 1, "new": True},
        {"name": "calls_n", "version": 1, "new": True}]
    saved = ws.aggregates.get("qty_sum")
    assert (saved.unit, saved.sql) == ("unit", SQL)

    # the same files through the library's folder reader: the same definitions, unchanged
    folder = tmp_path / "aggs"
    folder.mkdir()
    for d in (qty, calls):
        (folder / d["origin"]).write_text(d["text"])
    assert [(a.name, a.version, new) for a, new in ws.aggregates.apply(folder)] == [
        ("calls_n", 1, False), ("qty_sum", 1, False)]
    changed = client.post("/v1/aggregates/apply", headers=admin, json={"definitions": [
        {**qty, "text": qty["text"].replace("unit: unit", "unit: kg")}, calls]})
    assert [{k: a[k] for k in ("name", "version", "new")} for a in changed.json()] == [
        {"name": "qty_sum", "version": 2, "new": True},
        {"name": "calls_n", "version": 1, "new": False}]

    read = auth(keys["read"])
    first = client.get("/v1/aggregates/qty_sum/versions/1", headers=read)
    assert first.status_code == 200
    assert first.json() == ws.aggregates.get("qty_sum", 1).describe()
    assert first.json()["unit"] == "unit"
    missing = client.get("/v1/aggregates/qty_sum/versions/3", headers=read)
    assert missing.status_code == 404 and "its versions are 1 to 2" in missing.json()["hint"]
    assert client.get("/v1/aggregates/qty_sum/versions/0", headers=read).status_code == 422


def test_a_folder_error_names_the_file_and_its_line(server, tmp_path):
    _, _, ws = server
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "b.sql").write_text("-- name: b_folder\n\n\n" + SQL.replace("qty)", "qtty)"))
    with pytest.raises(InvalidAggregateError) as excinfo:
        ws.aggregates.apply(folder)
    assert excinfo.value.message.startswith(f"{folder / 'b.sql'}: ")
    assert (excinfo.value.line, excinfo.value.column) == (4, 25)
    assert excinfo.value.caret().splitlines()[0] == SQL.splitlines()[0].replace("qty", "qtty")
    with pytest.raises(InvalidAggregateError, match="holds no .sql files"):
        ws.aggregates.apply(tmp_path / "broken" / "..")


# -- sync progress -----------------------------------------------------------------------------


def test_sync_streams_its_progress_as_ndjson_when_asked(tmp_path):
    lite = tmp_path / "lite.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE usage (id INTEGER PRIMARY KEY, qty INTEGER)")
    con.execute("CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT)")
    con.executemany("INSERT INTO usage VALUES (?, ?)", [(i, i) for i in range(1, 3001)])
    con.execute("INSERT INTO plans VALUES (1, 'starter')")
    con.commit()
    con.close()
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("lite", f"sqlite://{lite}", mode="sync")
        admin = auth(create_key(ws.keys, "admin")[1])
        told: list[tuple[str, int]] = []
        ws.sync("lite", progress=lambda table, rows: told.append((table, rows)))
        assert told  # the library reports progress for this source
        with TestClient(create_app(ws)) as client:
            answer = client.post("/v1/sync", json={"sources": ["lite"]},
                                 headers={**admin, "Accept": "application/x-ndjson"})
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "application/x-ndjson"
            lines = [json.loads(line) for line in answer.text.splitlines()]
            progress, done = lines[:-1], lines[-1]
            # a full copy again: the same progress as the library reported
            assert [(p["event"], p["source"], p["table"], p["rows"]) for p in progress] == [
                ("progress", "lite", table, rows) for table, rows in told]
            assert done["event"] == "done"
            [report] = done["reports"]
            assert (report["source"], report["rows"], report["error"]) == ("lite", 3001, None)

            plain = client.post("/v1/sync", json={"sources": ["lite"]}, headers=admin)
            assert plain.status_code == 200
            assert plain.headers["content-type"] == "application/json"
            assert set(plain.json()) == {"reports"}
            assert [{**r, "seconds": 0, "tables": [{**t, "seconds": 0} for t in r["tables"]]}
                    for r in plain.json()["reports"]] == [
                {**r, "seconds": 0, "tables": [{**t, "seconds": 0} for t in r["tables"]]}
                for r in done["reports"]]

            unknown = client.post("/v1/sync", json={"sources": ["lit"]},
                                  headers={**admin, "Accept": "application/x-ndjson"})
            assert unknown.status_code == 400
            assert unknown.headers["content-type"] == "application/problem+json"
            assert "did you mean 'lite'" in unknown.json()["hint"]


def test_a_failing_sync_streams_its_retries_and_ends_with_the_error(tmp_path, monkeypatch):
    lite = tmp_path / "lite.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE usage (id INTEGER PRIMARY KEY, qty INTEGER)")
    con.commit()
    con.close()
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("lite", f"sqlite://{lite}", mode="sync")
        admin = auth(create_key(ws.keys, "admin")[1])

        def failing(name, progress=None):  # (the source goes away mid-copy, every time)
            if progress is not None:
                progress("lite.main.usage", 10)
            return [SyncReport(name, error=SourceUnavailableError(
                "the source is down", hint="try later"))]

        monkeypatch.setattr(ws.sync, "run", failing)
        with TestClient(create_app(ws)) as client:
            answer = client.post("/v1/sync", json={},
                                 headers={**admin, "Accept": "application/x-ndjson"})
            assert answer.status_code == 200, answer.text
            lines = [json.loads(line) for line in answer.text.splitlines()]
            error = {"title": "SourceUnavailableError", "detail": "the source is down",
                     "hint": "try later"}
            progress = {"event": "progress", "source": "lite", "table": "lite.main.usage",
                        "rows": 10}
            # three attempts (the schedule's retries, 1 s then 2 s apart), then the report
            assert lines[:-1] == [
                progress, {"event": "retry", "source": "lite", "attempt": 1, "retry_in_s": 1.0,
                           "error": error},
                progress, {"event": "retry", "source": "lite", "attempt": 2, "retry_in_s": 2.0,
                           "error": error},
                progress]
            assert lines[-1]["event"] == "done"
            assert [(r["source"], r["error"]) for r in lines[-1]["reports"]] == [
                ("lite", error)]
            plain = client.post("/v1/sync", json={}, headers=admin)
            assert plain.status_code == 207
            assert plain.json()["reports"][0]["error"] == error


def test_a_query_may_be_written_in_another_dialect(server):
    client, keys, ws = server
    sql = "SELECT customer_id::text AS c FROM dk.main.events ORDER BY 1"
    answer = client.post("/v1/query", headers=auth(keys["read"]),
                         json={"sql": sql, "dialect": "postgres"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [[r["c"]] for r in ws.query(sql, dialect="postgres")
                                     .to_pylist()] == [["acme"], ["bolt"]]
    unknown = client.post("/v1/query", headers=auth(keys["read"]),
                          json={"sql": sql, "dialect": "nope"})
    assert unknown.status_code == 400, unknown.text
