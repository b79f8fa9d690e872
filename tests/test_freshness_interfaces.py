"""The freshness bound through the interfaces that read for a person: the REPL's ``\\freshness``
(alone and through a server), aggregate evaluation and dry runs (Python, CLI, HTTP, the remote
client) with the precedence argument > header ``-- freshness:`` > setting ``max_staleness``,
and the route, watermark and staleness of each table read kept in the evaluation's provenance
and its log. Against a real PostgreSQL: an ``auto`` source synced with 100 rows, to which one
row (quantity 1000) was added after the sync, so a live read and a replica read differ."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pexpect
import pytest

import meterql
from meterql.aggregates import parse_definition
from meterql.errors import InvalidAggregateError, QueryError
from tests.support.routing import prefer_replica
from tests.support.terminal import terminal_env

METERQL = str(Path(sys.executable).parent / "meterql")
SETUP = """
CREATE TABLE usage (id bigint PRIMARY KEY, customer_id text, ts timestamptz, qty numeric(12,3));
INSERT INTO usage SELECT g, 'c' || (g % 3), timestamptz '2026-10-01 00:00+00' + g * interval '1h',
       g FROM generate_series(1, 100) AS g;
"""
SQL = ("SELECT customer_id, sum(qty) AS quantity FROM pg.public.usage "
       "WHERE ts >= :period_start AND ts < :period_end GROUP BY customer_id")
#: the total before the sync's later row (1 + ... + 100) and with it
REPLICA, LIVE = Decimal(5050), Decimal(6050)
OCTOBER = (date(2026, 10, 1), date(2026, 11, 1))
COUNT = "SELECT count(*) AS n FROM pg.public.usage"


@pytest.fixture()
def stale(pg_cluster, pg_database, tmp_path):
    """The workspace folder (closed): ``pg`` in auto mode synced with 100 rows, the source
    holding 101 since; the aggregate ``usage`` saved without a header bound."""
    db = pg_database("fresh", SETUP)
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg_cluster.uri(db), mode="auto")
        prefer_replica(ws)
        ws.sync("pg")
        ws.aggregates.save("usage", SQL, unit="unit")
    pg_cluster.run_sql("INSERT INTO usage VALUES (101, 'c1', '2026-10-10 00:00+00', 1000)",
                       dbname=db)
    return home


def total(rows) -> Decimal:
    return sum((Decimal(str(r["quantity"])) for r in rows), Decimal(0))  # (JSON: text)


def read(provenance) -> dict[str, dict]:
    return {m["table"]: m for m in provenance["watermarks"]}


# -- the header ----------------------------------------------------------------------------------

def test_the_freshness_header_is_read_normalised_and_checked():
    text = "-- name: calls\n-- unit: call\n-- freshness: 90m\n" + SQL
    assert parse_definition(text).freshness == "1h30m"
    assert parse_definition(text.replace("90m", "0")).freshness == "0s"
    assert parse_definition(text.replace("90m", "NONE")).freshness == "none"
    assert parse_definition(text.replace("-- freshness: 90m\n", "")).freshness is None
    # the navigator's editor writes a version back as a file with its bound
    from meterql.server.navigator.pages.aggregates import definition_text

    assert parse_definition(definition_text(parse_definition(text))).freshness == "1h30m"
    # a changed bound is a changed definition (a new version)
    assert (parse_definition(text).content()
            != parse_definition(text.replace("90m", "1h")).content())
    with pytest.raises(InvalidAggregateError) as bad:
        parse_definition("-- name: calls\n-- unit: call\n-- freshness: soon\n" + SQL,
                         origin="aggregates/calls.sql")
    err = bad.value
    assert err.message == "aggregates/calls.sql: the freshness 'soon' is not a duration or none"
    assert (err.line, err.column) == (3, 15) and "-- freshness: 1h" in err.hint
    assert err.caret() == "-- freshness: soon\n              ^"


# -- Python ------------------------------------------------------------------------------------

def test_precedence_argument_header_setting_and_the_provenance(stale):
    with meterql.connect(stale) as ws:
        ev = ws.aggregates.evaluate("usage", *OCTOBER)  # setting: none (any age)
        assert total(ev.rows()) == REPLICA
        assert ev.provenance["freshness"] == {"max_staleness": "none", "from": "setting"}
        mark = read(ev.provenance)["pg.public.usage"]
        assert mark["route"] == "replica"
        age = (datetime.fromisoformat(ev.provenance["evaluated_at"])
               - datetime.fromisoformat(mark["synced_at"])).total_seconds()
        assert mark["staleness"] == round(age, 3) and mark["staleness"] > 0

        live = ws.aggregates.evaluate("usage", *OCTOBER, max_staleness=0)
        assert total(live.rows()) == LIVE
        assert live.provenance["freshness"] == {"max_staleness": "0s", "from": "argument"}
        mark = read(live.provenance)["pg.public.usage"]
        assert (mark["route"], mark["synced_at"], mark["staleness"]) == ("source", None, 0.0)

        # the header over the setting, the argument over the header
        saved, new = ws.aggregates.save("usage", SQL, unit="unit", freshness="0")
        assert new and saved.version == 2 and saved.freshness == "0s"
        ev = ws.aggregates.evaluate("usage", *OCTOBER)
        assert total(ev.rows()) == LIVE
        assert ev.provenance["freshness"] == {"max_staleness": "0s", "from": "header"}
        ev = ws.aggregates.evaluate("usage", *OCTOBER, max_staleness="1h")
        assert total(ev.rows()) == REPLICA
        assert ev.provenance["freshness"] == {"max_staleness": "1h", "from": "argument"}
        # version 1 has no header: the setting, now live
        ws.settings.set("max_staleness", "0")
        ev = ws.aggregates.evaluate("usage", *OCTOBER, version=1)
        assert total(ev.rows()) == LIVE
        assert ev.provenance["freshness"] == {"max_staleness": "0s", "from": "setting"}
        ws.aggregates.save("usage", SQL, unit="unit", freshness="none")
        ev = ws.aggregates.evaluate("usage", *OCTOBER)  # the header 'none' over the setting 0
        assert total(ev.rows()) == REPLICA

        # the log keeps the bound and each table's route, watermark and staleness
        logged = {e["id"]: e["provenance"] for e in ws.aggregates.log("usage")}
        assert logged[live.id]["freshness"] == live.provenance["freshness"]
        assert logged[live.id]["watermarks"] == live.provenance["watermarks"]
        assert read(logged[ev.id])["pg.public.usage"]["route"] == "replica"

        with pytest.raises(QueryError, match="max_staleness takes a duration"):
            ws.aggregates.evaluate("usage", *OCTOBER, max_staleness="soon")
        with pytest.raises(InvalidAggregateError, match="the freshness 'soon'"):
            ws.aggregates.save("usage", SQL, freshness="soon")
        assert [a.freshness for a in ws.aggregates.versions("usage")] == [None, "0s", "none"]
    with meterql.connect(stale) as ws:  # kept with each version
        assert [a.freshness for a in ws.aggregates.versions("usage")] == [None, "0s", "none"]


def test_dry_run_takes_the_bound(stale):
    with meterql.connect(stale) as ws:
        draft = parse_definition("-- name: usage\n-- unit: unit\n-- freshness: 0\n" + SQL)
        out = ws.aggregates.dry_run(draft, *OCTOBER)  # the draft's header: live
        assert total(out["draft"].rows()) == LIVE and out["current_version"] == 1
        assert out["diff"]["summary"]["changed"] == 1  # c1: the later row
        out = ws.aggregates.dry_run(draft, *OCTOBER, max_staleness="1h")
        assert total(out["draft"].rows()) == REPLICA
        assert out["diff"]["summary"]["changed"] == 0
        assert read(out["draft"].provenance)["pg.public.usage"]["route"] == "replica"
        with pytest.raises(QueryError):
            ws.aggregates.dry_run(draft, *OCTOBER, max_staleness="-1")


# -- CLI ---------------------------------------------------------------------------------------

def test_the_bound_through_the_cli(stale, tmp_path):
    from click.testing import CliRunner

    from meterql.cli import main

    def cli(*args, ok=True):
        out = CliRunner().invoke(main, [*args, "--home", str(stale)])
        assert (out.exit_code == 0) == ok, out.output
        return out.output

    period = ("--from", "2026-10-01", "--to", "2026-11-01")
    doc = json.loads(cli("aggregate", "evaluate", "usage", *period, "--format", "json",
                         "--max-staleness", "0"))
    assert total(doc["rows"]) == LIVE
    prov = doc["evaluation"]["provenance"]
    assert prov["freshness"] == {"max_staleness": "0s", "from": "argument"}
    assert read(prov)["pg.public.usage"]["route"] == "source"
    text = cli("aggregate", "evaluate", "usage", *period, "--max-staleness", "1h")
    assert "freshness bound 1h (argument)" in text
    assert "read pg.public.usage: replica, synced 20" in text and " old" in text
    text = cli("aggregate", "evaluate", "usage", *period, "--max-staleness", "0")
    assert "read pg.public.usage: source, live" in text
    assert "max_staleness" in cli("aggregate", "evaluate", "usage", *period,
                                  "--max-staleness", "soon", ok=False)

    folder = tmp_path / "aggs"
    folder.mkdir()
    (folder / "usage.sql").write_text("-- name: usage\n-- unit: unit\n-- freshness: 0\n" + SQL)
    dry = json.loads(cli("aggregate", "dry-run", str(folder / "usage.sql"), *period,
                         "--format", "json"))
    assert total(dry["rows"]) == LIVE
    dry = json.loads(cli("aggregate", "dry-run", str(folder / "usage.sql"), *period,
                         "--format", "json", "--max-staleness", "none"))
    assert total(dry["rows"]) == REPLICA
    assert "usage: version 2 (new version)" in cli("aggregate", "apply", str(folder))
    assert "-- freshness: 0s" in cli("aggregate", "show", "usage")
    doc = json.loads(cli("aggregate", "evaluate", "usage", *period, "--format", "json"))
    assert total(doc["rows"]) == LIVE
    assert doc["evaluation"]["provenance"]["freshness"]["from"] == "header"

    (folder / "usage.sql").write_text("-- name: usage\n-- freshness: 5 minutes\n" + SQL)
    out = cli("aggregate", "apply", str(folder), ok=False)
    assert "usage.sql: the freshness '5 minutes' is not a duration or none" in out
    assert "line 2" in out and "-- freshness: 1h" in out


# -- HTTP and the remote client ------------------------------------------------------------------

def test_the_bound_through_http(stale):
    from fastapi.testclient import TestClient

    from meterql.access.keys import create_key
    from meterql.server.app import create_app

    ws = meterql.connect(stale)
    try:
        read_key = create_key(ws.keys, "read", "read key")[1]
        admin_key = create_key(ws.keys, "admin", "admin key")[1]
        headers = {"Authorization": f"Bearer {read_key}"}
        period = {"from": "2026-10-01", "to": "2026-11-01"}
        with TestClient(create_app(ws)) as client:
            def evaluate(**body):
                return client.post("/v1/aggregates/usage/evaluate", json={**period, **body},
                                   headers=headers)

            live = evaluate(max_staleness="0").json()
            assert total(live["rows"]) == LIVE
            prov = live["evaluation"]["provenance"]
            assert read(prov)["pg.public.usage"]["route"] == "source"
            assert prov["freshness"] == {"max_staleness": "0s", "from": "argument"}
            cached = evaluate(max_staleness=3600).json()
            assert total(cached["rows"]) == REPLICA
            mark = read(cached["evaluation"]["provenance"])["pg.public.usage"]
            assert mark["route"] == "replica" and mark["staleness"] > 0 and mark["synced_at"]
            bad = evaluate(max_staleness="soon")
            assert bad.status_code == 400 and "max_staleness" in bad.text

            log = client.get("/v1/evaluations", params={"aggregate": "usage"},
                             headers=headers).json()
            assert [read(e["provenance"])["pg.public.usage"]["route"] for e in log[:2]] == [
                "replica", "source"]

            dry = client.post("/v1/aggregates/usage/dry-run", headers=headers, json={
                **period, "sql": SQL, "freshness": "0"}).json()
            assert total(dry["rows"]) == LIVE
            assert dry["evaluation"]["provenance"]["freshness"]["from"] == "header"
            dry = client.post("/v1/aggregates/usage/dry-run", headers=headers, json={
                **period, "sql": SQL, "freshness": "0", "max_staleness": "none"}).json()
            assert total(dry["rows"]) == REPLICA

            saved = client.post("/v1/aggregates", json={"name": "usage", "sql": SQL,
                                                        "freshness": "0"},
                                headers={"Authorization": f"Bearer {admin_key}"})
            assert saved.status_code == 201 and saved.json()["freshness"] == "0s"
            assert total(evaluate().json()["rows"]) == LIVE
            bad = client.post("/v1/aggregates", json={"name": "usage", "sql": SQL,
                                                      "freshness": "soon"},
                              headers={"Authorization": f"Bearer {admin_key}"})
            assert bad.status_code == 400 and "freshness" in bad.text
    finally:
        ws.close()


def test_the_bound_through_the_remote_client(stale):
    from tests.support.served import new_key, serve

    key = new_key(stale, "read")
    with serve(stale) as served, meterql.connect(served.base, key=key) as client:
        ev = client.aggregates.evaluate("usage", *OCTOBER, max_staleness=0)
        assert total(ev.rows()) == LIVE
        assert read(ev.provenance)["pg.public.usage"]["route"] == "source"
        ev = client.aggregates.evaluate("usage", *OCTOBER, max_staleness="1h")
        assert total(ev.rows()) == REPLICA
        assert ev.provenance["freshness"] == {"max_staleness": "1h", "from": "argument"}
        draft = parse_definition("-- name: usage\n-- freshness: 0\n" + SQL)
        assert total(client.aggregates.dry_run(draft, *OCTOBER)["draft"].rows()) == LIVE
        assert total(client.aggregates.dry_run(draft, *OCTOBER, max_staleness="none")[
            "draft"].rows()) == REPLICA
        assert client.aggregates.log("usage")[0]["provenance"]["freshness"]["from"] == (
            "argument")


# -- the REPL ------------------------------------------------------------------------------------

@pytest.fixture(params=["alone", "through a server"])
def shell(request, stale, tmp_path):
    from meterql.server.presence import read_presence
    from tests.support.served import serve
    from tests.support.waiting import wait_until

    with contextlib.ExitStack() as stack:
        if request.param != "alone":
            stack.enter_context(serve(stale))
            assert wait_until(lambda: read_presence(stale) is not None, timeout=10)
        child = pexpect.spawn(METERQL, ["repl", "--home", str(stale)], encoding="utf-8",
                              timeout=30, dimensions=(40, 200),
                              env=terminal_env(tmp_path))
        child.logfile_read = open(tmp_path / "pty.log", "w")  # read on failure
        child.expect("meterql>")
        yield child
        if child.isalive():
            child.terminate(force=True)


def count_is(child, n: int) -> None:
    child.send(COUNT + ";\r")
    child.expect(r"1 row in")
    numbers = [int(x) for x in child.before.split() if x.isdigit()]
    assert n in numbers and ({100, 101} - {n}).isdisjoint(numbers), child.before
    child.expect("meterql>")


def test_the_session_bound_reaches_every_query(shell):
    child = shell
    child.send("\\freshness\r")
    child.expect(r"freshness bound is the setting max_staleness \(none\)")
    child.expect("meterql>")
    count_is(child, 100)  # the replica, synced before the 101st row
    child.send("\\freshness 0\r")
    child.expect(r"freshness bound is 0s \(live\)")
    child.expect("meterql>")
    count_is(child, 101)  # the source
    child.send("\\explain " + COUNT + "\r")
    child.expect("route: pg.public.usage -> source")
    child.expect("meterql>")
    child.send("\\eval usage 2026-10-01 2026-11-01 c1\r")  # \eval runs under it too
    child.expect("usage v1")
    live_c1 = sum(range(1, 101, 3)) + 1000  # c1: ids 1, 4, ..., 100, and the later row
    assert f"{live_c1}.000" in child.before, child.before
    child.expect("meterql>")
    child.send("\\freshness none\r")
    child.expect("freshness bound is none")
    child.expect("meterql>")
    count_is(child, 100)
    child.send("\\freshness 5m\r")
    child.expect("freshness bound is 5m")
    child.expect("meterql>")
    count_is(child, 100)  # synced moments ago: within 5 minutes
    child.send("\\freshness soon\r")
    child.expect(r"freshness takes a duration or none, not 'soon'")
    child.expect("meterql>")
    child.send("\\freshness\r")
    child.expect("freshness bound is 5m")  # unchanged by the wrong one
    child.expect("meterql>")
    child.send("\\freshness default\r")
    child.expect(r"the setting max_staleness \(none\)")
    child.expect("meterql>")
    child.send("\\help\r")
    child.expect(r"\\freshness \[DURATION\|none\|default\]")
    child.expect("meterql>")
    child.send("\\q\r")
    child.expect(pexpect.EOF)
