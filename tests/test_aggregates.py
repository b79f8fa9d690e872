"""Aggregates: definitions, validation, versions, and evaluation at the edges of billing periods
(time zones, daylight saving, customers without usage, exact decimals). Expected values are
computed independently by DuckDB over the same rows (its ICU time zones, not meterql's)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from click.testing import CliRunner

import meterql
from meterql.aggregates import parse_definition
from meterql.cli import main
from meterql.errors import InvalidAggregateError, UnknownAggregateError

SQL = """SELECT customer_id, sum(qty) AS quantity
FROM dk.main.events
WHERE ts >= :period_start AND ts < :period_end
GROUP BY customer_id"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("agg")
    path = root / "usage.duckdb"
    rng = random.Random(7)
    rows = []
    # Every hour from mid-September to mid-December, plus instants right at the edges of the
    # local midnights that start October, November and December in the zones under test.
    start = datetime(2026, 9, 15, tzinfo=UTC)
    for hour in range(24 * 92):
        at = start + timedelta(hours=hour, minutes=rng.randrange(60))
        rows.append((f"c{rng.randrange(4)}", at, Decimal(rng.randrange(1, 10**6)) / 10**6))
    edges = ["2026-09-30 22:00:00+00", "2026-09-30 21:59:59.999999+00", "2026-10-01 04:00:00+00",
             "2026-10-01 03:59:59.999999+00", "2026-10-31 23:00:00+00",
             "2026-10-31 22:59:59.999999+00", "2026-11-01 04:00:00+00",
             "2026-11-01 03:59:59.999999+00", "2026-11-30 18:30:00+00",
             "2026-11-30 18:29:59.999999+00", "2026-10-24 22:00:00+00",
             "2026-10-25 22:59:59.999999+00", "2026-10-25 23:00:00+00"]
    for i, edge in enumerate(edges):
        rows.append((f"c{i % 4}", datetime.fromisoformat(edge), Decimal("0.0000000001") * (i + 1)))
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE events (customer_id VARCHAR, ts TIMESTAMPTZ, qty DECIMAL(38,10))")
    con.executemany("INSERT INTO events VALUES (?, ?, ?)", rows)
    con.close()
    ws = meterql.connect(root / "home")
    ws.sources.add("dk", f"duckdb://{path}")
    ws.aggregates.save("usage", SQL, unit="unit", description="metered quantity")
    yield ws, path
    ws.close()


def expected(path, tz: str, start: str, end: str, grain: str | None = None) -> dict:
    """DuckDB's own answer: local wall-clock periods via ICU."""
    con = duckdb.connect(str(path), read_only=True)
    con.execute(f"SET TimeZone = '{tz}'")
    key = f"date_trunc('{grain}', ts)::TIMESTAMP" if grain else "NULL"
    rows = con.execute(
        f"SELECT {key} AS w, customer_id, sum(qty) FROM events "
        "WHERE ts >= ?::TIMESTAMP::TIMESTAMPTZ AND ts < ?::TIMESTAMP::TIMESTAMPTZ "
        "GROUP BY ALL", [start, end]).fetchall()
    con.close()
    return {(w, c): q for w, c, q in rows}


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_month_boundaries_in_time_zones(data, tz):
    ws, path = data
    ev = ws.aggregates.evaluate("usage", date(2026, 10, 1), date(2026, 11, 1), tz=tz)
    got = {(None, r["customer_id"]): r["quantity"] for r in ev.rows()}
    assert got == expected(path, tz, "2026-10-01", "2026-11-01")
    start = ev.rows()[0]["period_start"]
    # October starts at local midnight: 22:00 UTC the day before in Berlin (CEST), 04:00 UTC in
    # New York (EDT), 18:30 UTC in Kolkata.
    assert start.astimezone(UTC).strftime("%m-%d %H:%M") == {
        "UTC": "10-01 00:00", "Europe/Berlin": "09-30 22:00",
        "America/New_York": "10-01 04:00", "Asia/Kolkata": "09-30 18:30"}[tz]


@pytest.mark.parametrize("tz,grain,start,end", [
    ("Europe/Berlin", "day", "2026-10-20", "2026-10-30"),   # CEST -> CET on Oct 25
    ("America/New_York", "day", "2026-10-28", "2026-11-04"),  # EDT -> EST on Nov 1
    ("America/New_York", "month", "2026-09-01", "2026-12-01"),
])
def test_windows_follow_local_days_and_months(data, tz, grain, start, end):
    ws, path = data
    ev = ws.aggregates.evaluate("usage", date.fromisoformat(start), date.fromisoformat(end),
                                tz=tz, window=grain)
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    got = {(r["period_start"].astimezone(zone).replace(tzinfo=None), r["customer_id"]):
           r["quantity"] for r in ev.rows()}
    assert got == expected(path, tz, start, end, grain)
    lengths = {(r["period_end"] - r["period_start"]) for r in ev.rows()}
    if grain == "day":  # the day the clocks go back lasts 25 hours
        assert timedelta(hours=25) in lengths and timedelta(hours=24) in lengths


def test_customers_without_usage_get_zero_and_decimals_stay_exact(data):
    ws, path = data
    ev = ws.aggregates.evaluate("usage", date(2026, 10, 1), date(2026, 11, 1),
                                customers=["c1", "nobody"])
    rows = {r["customer_id"]: r["quantity"] for r in ev.rows()}
    assert rows["nobody"] == Decimal("0E-10")
    assert rows["c1"] == expected(path, "UTC", "2026-10-01", "2026-11-01")[(None, "c1")]
    assert str(rows["c1"]).split(".")[1].__len__() == 10  # every digit of DECIMAL(38,10)
    everyone = ws.aggregates.evaluate("usage", date(2026, 10, 1), date(2026, 11, 1))
    assert "nobody" not in {r["customer_id"] for r in everyone.rows()}


def test_evaluations_are_logged_with_provenance(data):
    ws, _ = data
    ev = ws.aggregates.evaluate("usage", date(2026, 10, 1), date(2026, 11, 1), tz="Asia/Kolkata")
    [logged] = [e for e in ws.aggregates.log("usage") if e["id"] == ev.id]
    assert logged["result_hash"] == ev.result_hash and logged["rows"] == ev.table.num_rows
    provenance = logged["provenance"]
    assert provenance["sql"] == SQL and provenance["version"] == 1
    assert provenance["parameters"]["periods"] == [["2026-09-30T18:30:00+00:00",
                                                    "2026-10-31T18:30:00+00:00"]]
    assert provenance["sources"] == [{"name": "dk", "kind": "duckdb", "mode": "direct"}]
    again = ws.aggregates.evaluate("usage", date(2026, 10, 1), date(2026, 11, 1),
                                   tz="Asia/Kolkata")
    assert again.result_hash == ev.result_hash and again.id != ev.id


def test_versions_are_immutable_and_old_ones_stay_evaluable(data):
    ws, _ = data
    ws.aggregates.save("tripled", SQL)
    same, new = ws.aggregates.save("tripled", SQL)
    assert (same.version, new) == (1, False)
    v2, new = ws.aggregates.save("tripled", SQL.replace("sum(qty)", "sum(qty) * 3"))
    assert (v2.version, new) == (2, True)
    one = ws.aggregates.evaluate("tripled", date(2026, 10, 1), date(2026, 11, 1), version=1)
    two = ws.aggregates.evaluate("tripled", date(2026, 10, 1), date(2026, 11, 1))
    assert [r["quantity"] * 3 for r in one.rows()] == [r["quantity"] for r in two.rows()]
    assert ws.aggregates.get("tripled", 1).sql == SQL
    with pytest.raises(UnknownAggregateError, match="no version 3"):
        ws.aggregates.get("tripled", 3)
    with pytest.raises(UnknownAggregateError, match="did you mean 'tripled'"):
        ws.aggregates.get("tripeld")


@pytest.mark.parametrize("sql,message,position", [
    (SQL.replace("sum(qty)", "sum(qtty)"), "no column named 'qtty'", (1, 25)),
    (SQL.replace("dk.main.events", "dk.main.evnts"), "no table named 'dk.main.evnts'", None),
    (SQL.replace("AS quantity", "AS amount"), "has no output column 'quantity'", None),
    (SQL.replace("sum(qty)", "sum(qty)::DOUBLE"),
     "quantity is double, which is not an exact number",
     None),
    (SQL.replace(":period_end", ":until"), "uses :until, which the engine does not supply",
     (3, 36)),
    ("SELECT customer_id, sum(qty) AS quantity FROM dk.main.events GROUP BY 1",
     "does not use :period_start", None),
    ("DELETE FROM dk.main.events", "only SELECT", None),
    ("SELECT customer_id, sum(qty AS quantity FROM dk.main.events", "", (1, None)),
])
def test_invalid_definitions_are_refused_with_the_problem_named(data, sql, message, position):
    ws, _ = data
    with pytest.raises(InvalidAggregateError) as excinfo:
        ws.aggregates.save("broken", sql)
    assert message in str(excinfo.value)
    if position is not None:
        line, column = position
        assert excinfo.value.line == line
        if column is not None:
            assert excinfo.value.column == column
    with pytest.raises(UnknownAggregateError):
        ws.aggregates.get("broken")  # nothing saved


def test_definition_files_and_their_header(data, tmp_path):
    ws, _ = data
    folder = tmp_path / "aggs"
    folder.mkdir()
    (folder / "calls.sql").write_text(
        "-- name: calls\n-- description: events counted\n-- unit: call\n"
        "-- customer: customer_id\n\n" + SQL.replace("sum(qty)", "count(*)") + ";\n")
    (folder / "bad.sql").write_text("-- name: bad\n-- units: x\n" + SQL)
    with pytest.raises(InvalidAggregateError, match="unknown header key 'units'.*did you mean"):
        ws.aggregates.apply(folder)
    with pytest.raises(UnknownAggregateError):
        ws.aggregates.get("calls")  # all or nothing
    (folder / "bad.sql").unlink()
    [(saved, new)] = ws.aggregates.apply(folder)
    assert (saved.name, saved.unit, saved.description, new) == ("calls", "call",
                                                               "events counted", True)
    assert ws.aggregates.apply(folder)[0][1] is False  # unchanged files make no new version
    with pytest.raises(InvalidAggregateError) as excinfo:
        parse_definition("-- name: x\n--: nothing\nSELECT 1")
    assert excinfo.value.line == 2


def test_the_aggregate_commands(data, tmp_path):
    ws, _ = data
    home = str(ws.home)
    folder = tmp_path / "cli_aggs"
    folder.mkdir()
    (folder / "qty.sql").write_text("-- name: qty_cli\n-- unit: unit\n" + SQL)
    ws.close()  # the commands open the workspace themselves
    try:
        runner = CliRunner()
        applied = runner.invoke(main, ["aggregate", "apply", str(folder), "--home", home])
        assert applied.exit_code == 0 and "qty_cli: version 1 (new version)" in applied.output
        evaluated = runner.invoke(main, ["aggregate", "evaluate", "qty_cli", "--from",
                                         "2026-10-01", "--to", "2026-11-01", "--customer",
                                         "nobody", "--format", "json", "--home", home])
        assert evaluated.exit_code == 0, evaluated.output
        assert '"quantity": "0.0000000000"' in evaluated.output
        assert '"result_hash"' in evaluated.output
        shown = runner.invoke(main, ["aggregate", "show", "qty_cli", "--home", home])
        assert "-- version: 1 of 1" in shown.output and "sum(qty)" in shown.output
        bad = runner.invoke(main, ["aggregate", "evaluate", "qty_cli", "--from", "2026-10-01",
                                   "--to", "2026-11-01", "--tz", "Mars/Olympus", "--home", home])
        assert bad.exit_code == 1 and "unknown time zone 'Mars/Olympus'" in bad.stderr
        key = runner.invoke(main, ["apikey", "create", "--scope", "read", "--home", home])
        assert key.exit_code == 0 and key.stdout.strip().splitlines()[-1].startswith("mq_")
    finally:
        reopened = meterql.connect(home)
        data_ws = data[0]
        data_ws.__dict__.update(reopened.__dict__)  # the module fixture's workspace, reopened


def test_the_result_hash_is_as_documented(data):
    """docs/aggregates.md says how result_hash is made; recomputing it that way matches."""
    import hashlib
    import json as _json

    from meterql.aggregates import result_hash

    ws, _ = data
    ev = ws.aggregates.evaluate("usage", date(2026, 10, 1), date(2026, 11, 1),
                                customers=["c1", "nobody"])
    digest = hashlib.sha256(_json.dumps(ev.table.column_names).encode())
    for row in ev.table.to_pylist():
        digest.update(_json.dumps([str(v) if isinstance(v, (Decimal, datetime, date)) else v
                                   for v in row.values()]).encode())
    assert ev.result_hash == result_hash(ev.table) == "sha256:" + digest.hexdigest()
    zero = [r for r in ev.rows() if r["customer_id"] == "nobody"]
    assert len(zero) == 1 and zero[0]["quantity"] == 0


def test_evaluate_as_csv_in_its_zone_and_the_dry_run_plan(data, tmp_path):
    """``--format csv`` writes the periods in ``--tz``; a dry run prints its summary first
    (customers changed, the totals and their delta), then the current / draft / delta rows,
    and says when it cut them; ``--format csv`` lists every change."""
    ws, path = data
    home = str(ws.home)
    period = ["--from", "2026-10-01", "--to", "2026-12-01", "--tz", "Europe/Berlin"]
    draft = tmp_path / "usage.sql"
    draft.write_text("-- name: usage\n-- unit: unit\n" + SQL.replace(
        "sum(qty) AS quantity",
        "CASE WHEN customer_id = 'c0' THEN 2 * sum(qty) ELSE sum(qty) END AS quantity"))
    ws.close()  # the commands open the workspace themselves
    try:
        runner = CliRunner()
        csv_out = runner.invoke(main, ["aggregate", "evaluate", "usage", *period, "--window",
                                       "month", "--format", "csv", "--home", home])
        assert csv_out.exit_code == 0, csv_out.output
        lines = csv_out.stdout.splitlines()
        assert lines[0] == "period_start,period_end,customer_id,quantity"
        rows = [line.split(",") for line in lines[1:]]
        assert {r[0] for r in rows} == {"2026-10-01T00:00:00+02:00", "2026-11-01T00:00:00+01:00"}
        want = expected(path, "Europe/Berlin", "2026-10-01", "2026-12-01", "month")
        assert {(datetime.fromisoformat(r[0]).replace(tzinfo=None), r[2]): Decimal(r[3])
                for r in rows} == want

        plan = runner.invoke(main, ["aggregate", "dry-run", str(draft), *period, "--window", "day",
                                    "--home", home], env={"COLUMNS": "200"})
        assert plan.exit_code == 0, plan.output
        c0_total = sum(q for (_, c), q in expected(path, "Europe/Berlin", "2026-10-01",
                                                  "2026-12-01").items() if c == "c0")
        days = len({w for w, c in expected(path, "Europe/Berlin", "2026-10-01", "2026-12-01",
                                           "day") if c == "c0"})
        text = plan.stdout
        summary = text.index(f"Plan: 1 customer changed; 0 to add, {days} to change, 0 to remove")
        assert f"(delta +{c0_total})" in text
        assert summary < text.index("current / draft / delta") < text.index("+02:00")
        assert f"(cut: 50 of {days} changes shown; --format csv or json lists them all)" in text
        listed = runner.invoke(main, ["aggregate", "dry-run", str(draft), *period, "--window",
                                      "day", "--format", "csv", "--home", home])
        lines = listed.stdout.splitlines()
        assert lines[0] == "period_start,customer_id,change,current,draft,delta"
        changes = [line.split(",") for line in lines[1:]]
        assert len(changes) == days and {c[1] for c in changes} == {"c0"}
        assert all(Decimal(c[5]) == Decimal(c[4]) - Decimal(c[3]) == Decimal(c[3])
                   for c in changes)
        assert sum(Decimal(c[5]) for c in changes) == c0_total
        same = tmp_path / "same.sql"
        same.write_text("-- name: usage\n-- unit: unit\n" + SQL)
        unchanged = runner.invoke(main, ["aggregate", "dry-run", str(same), *period,
                                         "--home", home])
        assert "No changes. The draft gives the same 4 rows as version 1." in unchanged.stdout
    finally:
        reopened = meterql.connect(home)
        data[0].__dict__.update(reopened.__dict__)  # the module fixture's workspace, reopened
