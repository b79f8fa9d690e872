"""Queries that read no table (SELECT 1, SELECT now(), VALUES), the session's time zone (SET
TimeZone, --tz, tz=), and EXPLAIN as plain text (meterql explain --analyze --param)."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

import pytest
from click.testing import CliRunner

import meterql
from meterql.cli import main
from meterql.engine.time_zone import check_time_zone, set_time_zone
from meterql.errors import ParameterError, QueryError, StatementNotAllowedError
from meterql.repl.session import Repl
from tests.support.small_home import small_home

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return small_home(tmp_path)


@pytest.fixture()
def ws(home: Path):
    workspace = meterql.connect(home)
    yield workspace
    workspace.close()


def cli(home: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--home", str(home)])


# -- queries that read no table ----------------------------------------------------------------
def test_select_without_a_table_runs_locally(ws):
    assert ws.query("SELECT 1 AS one").to_pylist() == [{"one": 1}]
    assert ws.query("SELECT 40 + :n AS x", {"n": 2}).to_pylist() == [{"x": 42}]
    assert ws.query("SELECT 1 AS a UNION ALL SELECT 2").rows() == [(1,), (2,)]
    assert ws.query("VALUES (1, 'a'), (2, 'b')").rows() == [(1, "a"), (2, "b")]
    # a VALUES reading a table through a subquery reads it
    assert ws.query("VALUES ((SELECT count(*) FROM crm.main.customers))").rows() == [(2,)]
    before = dt.datetime.now(dt.UTC)
    (now,), = ws.query("SELECT now()").rows()
    assert before - dt.timedelta(seconds=5) <= now <= dt.datetime.now(dt.UTC)
    (today,), = ws.query("SELECT current_date").rows()
    assert today in {before.date(), dt.datetime.now(dt.UTC).date()}
    plan = ws.explain("SELECT 1")
    assert plan.fragments == [] and "reads no table" in str(plan)


def test_tableless_queries_stay_locked_down(ws):
    """A query with no table runs in DuckDB, but nothing in it may reach a file."""
    for sql in ("SELECT * FROM read_csv('/etc/passwd')",
                "SELECT (SELECT count(*) FROM read_text('/etc/passwd')) AS n",
                "SELECT * FROM glob('/etc/*')",
                "SELECT * FROM duckdb_settings()"):
        with pytest.raises(QueryError, match="is not allowed"):
            ws.query(sql)
    with pytest.raises(meterql.errors.MeterqlError):
        ws.query("SELECT * FROM '/etc/passwd'")
    # they run in a DuckDB that may open no file at all, not even the workspace's own
    assert ws.query("SELECT current_setting('allowed_paths') AS p").rows() == [([],)]
    # DuckDB's own lock holds in the zoned engine too
    assert ws.query("SELECT current_setting('enable_external_access') AS x",
                    tz="Asia/Tokyo").rows() == [(False,)]
    with pytest.raises(StatementNotAllowedError):
        ws.query("SET enable_external_access = true")
    with pytest.raises(StatementNotAllowedError):
        ws.query("COPY (SELECT 1) TO '/tmp/x.csv'")


# -- the session's time zone ---------------------------------------------------------------------
def test_time_zone_names_are_checked():
    assert check_time_zone("europe/berlin") == "Europe/Berlin"
    assert check_time_zone("UTC") == "UTC"
    with pytest.raises(ParameterError, match="unknown time zone 'Europe/Berln'") as err:
        check_time_zone("Europe/Berln")
    assert "Europe/Berlin" in (err.value.hint or "")


def test_set_time_zone_statements():
    assert set_time_zone("SET TimeZone = 'Europe/Berlin'") == "Europe/Berlin"
    assert set_time_zone("SET TIME ZONE 'America/New_York';") == "America/New_York"
    assert set_time_zone("set timezone to 'utc'") == "UTC"
    assert set_time_zone("SELECT 1") is None
    with pytest.raises(StatementNotAllowedError, match="only SET TimeZone"):
        set_time_zone("SET search_path = public")
    with pytest.raises(ParameterError, match="did you mean"):
        set_time_zone("SET TimeZone = 'Europe/Berln'")


def test_set_time_zone_never_reaches_a_source(ws):
    result = ws.query("SET TimeZone = 'Europe/Berlin'")
    assert result.time_zone == "Europe/Berlin"
    assert result.to_pylist() == [{"TimeZone": "Europe/Berlin"}]
    assert result.plan is not None and result.plan.fragments == []
    # the workspace keeps no session: the next query is in UTC again
    assert ws.query("SELECT current_setting('TimeZone') AS z").rows() == [("UTC",)]
    assert ws.query("SELECT 1").time_zone is None


def test_tz_shows_timestamptz_in_the_zone(ws):
    utc = ws.query("SELECT ts FROM usage.main.events ORDER BY ts").to_arrow()
    berlin = ws.query("SELECT ts FROM usage.main.events ORDER BY ts", tz="Europe/Berlin")
    assert berlin.to_arrow().schema.field("ts").type.tz == "Europe/Berlin"
    first = berlin.rows()[0][0]
    assert first.utcoffset() == dt.timedelta(hours=1)
    assert (first.year, first.month, first.day, first.hour) == (2024, 1, 2, 0)
    # the same instants
    assert [r.timestamp() for (r,) in berlin.rows()] == [
        v.timestamp() for v in utc.column("ts").to_pylist()]
    # across sources (the residual) too
    joined = ws.query("SELECT c.name, e.ts FROM crm.main.customers c JOIN usage.main.events e "
                      "ON c.id = e.customer_id ORDER BY c.name", tz="Europe/Berlin")
    assert joined.to_arrow().schema.field("ts").type.tz == "Europe/Berlin"
    assert joined.rows()[0][1] == dt.datetime(2024, 1, 2, 0, 30, tzinfo=BERLIN)


def test_tableless_queries_evaluate_in_the_zone(ws):
    rows = ws.query("SELECT current_setting('TimeZone') AS z, now() AS n, current_date AS d, "
                    "date_trunc('day', TIMESTAMPTZ '2024-01-01 23:30:00+00') AS day",
                    tz="Pacific/Kiritimati").to_pylist()  # UTC+14: a date ahead of UTC
    (row,) = rows
    assert row["z"] == "Pacific/Kiritimati"
    zone = zoneinfo.ZoneInfo("Pacific/Kiritimati")
    assert row["d"] == dt.datetime.now(zone).date()
    assert row["n"].utcoffset() == dt.timedelta(hours=14)
    # 2024-01-01 23:30 UTC is 2024-01-02 13:30 there: its day starts at 00:00 there
    assert row["day"] == dt.datetime(2024, 1, 2, tzinfo=zone)
    with pytest.raises(ParameterError, match="did you mean 'Europe/Berlin'"):
        ws.query("SELECT 1", tz="Europe/Berln")
    with pytest.raises(ParameterError):
        ws.submit("SELECT 1", tz="Mars/Olympus")


def test_cli_tableless_and_tz(home):
    one = cli(home, "query", "SELECT 1 AS one", "--format", "csv")
    assert one.exit_code == 0, one.output
    assert one.output.splitlines() == ["one", "1"]
    values = cli(home, "query", "VALUES (1)", "--format", "csv")
    assert values.exit_code == 0 and values.output.splitlines()[1:] == ["1"]
    zoned = cli(home, "query", "SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t, "
                "current_setting('TimeZone') AS z", "--tz", "Europe/Berlin", "--format", "csv")
    assert zoned.exit_code == 0, zoned.output
    assert "2024-01-01 01:00:00+01" in zoned.output.replace("T", " ")
    assert "Europe/Berlin" in zoned.output
    bad = cli(home, "query", "SELECT 1", "--tz", "Europe/Berln")
    assert bad.exit_code != 0
    assert "unknown time zone 'Europe/Berln'" in bad.output and "Europe/Berlin" in bad.output
    setting = cli(home, "query", "SET TIME ZONE 'Asia/Tokyo'", "--format", "csv")
    assert setting.exit_code == 0 and "Asia/Tokyo" in setting.output


def test_repl_keeps_the_session_zone(ws, capsys):
    from rich.console import Console

    repl = Repl(ws, Console(width=200), interactive=False)
    repl.format = "csv"
    assert repl.handle("SET TimeZone = 'Europe/Berlin';")
    assert repl.time_zone == "Europe/Berlin"
    repl.handle("SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t;")
    assert "2024-01-01 01:00:00+01" in capsys.readouterr().out.replace("T", " ")
    assert repl.set_time_zone("utc") == "UTC"
    repl.handle("SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t;")
    out = capsys.readouterr().out.replace("T", " ")
    assert "2024-01-01 00:00:00" in out and "+01" not in out
    with pytest.raises(ParameterError):
        repl.set_time_zone("Europe/Berln")


# -- EXPLAIN as plain text -----------------------------------------------------------------------
JOIN = ("SELECT c.name, e.qty FROM crm.main.customers c JOIN usage.main.events e "
        "ON c.id = e.customer_id WHERE c.id = :id")


def test_cli_explain_analyze_with_params(home):
    done = cli(home, "explain", "--analyze", "--param", "id=1", JOIN)
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0].startswith("Plan: 2 fragment(s)")
    assert any(line.startswith("- ran in ") for line in lines)
    assert "- f1 on 'crm': 2 rows" in done.output  # (sqlite: the filter stays local)
    assert re.search(r"^- result: 1 rows?$", done.output, re.M)
    assert "┃" not in done.output and "│" not in done.output
    missing = cli(home, "explain", "--analyze", JOIN)
    assert missing.exit_code != 0 and "missing value for parameter :id" in missing.output
    plain = cli(home, "explain", JOIN)  # no run: no parameter needed
    assert plain.exit_code == 0 and "ran in" not in plain.output


def test_cli_query_prints_explain_as_text(home):
    for sql in (f"EXPLAIN {JOIN}", f"EXPLAIN ANALYZE {JOIN}"):
        done = CliRunner().invoke(main, ["query", sql, "--param", "id=2", "--home", str(home)],
                                  terminal_width=60)
        assert done.exit_code == 0, done.output
        assert "┃" not in done.output and "│" not in done.output and "plan" not in \
            done.output.splitlines()[0]
        # lines longer than the terminal are never wrapped
        assert any(len(line) > 60 for line in done.output.splitlines())
        assert "sql: SELECT c.name, e.qty FROM __fragment_f1 AS c JOIN __fragment_f2 AS e" in \
            done.output
    # as CSV it is still one line a row
    csv = cli(home, "query", f"EXPLAIN {JOIN}", "--format", "csv")
    assert csv.output.splitlines()[0] == "plan"


def test_repl_prints_explain_as_text(ws, capsys):
    from rich.console import Console

    repl = Repl(ws, Console(width=50), interactive=True)
    repl.params["id"] = 1
    repl.handle(f"EXPLAIN ANALYZE {JOIN};")
    out = capsys.readouterr().out
    assert "Plan: 2 fragment(s)" in out and re.search(r"^- result: 1 rows?$", out, re.M)
    assert "┃" not in out and "│" not in out
    assert any(len(line) > 50 for line in out.splitlines())


# -- over HTTP -----------------------------------------------------------------------------------
def test_http_time_zone_and_tableless(tmp_path):
    import pyarrow as pa
    from fastapi.testclient import TestClient

    from meterql.access.keys import create_key
    from meterql.engine.result import Result, plan_text
    from meterql.server.app import create_app

    with meterql.connect(tmp_path / "home") as ws:
        key = create_key(ws.keys, "read")[1]
        auth = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(ws)) as client:
            one = client.post("/v1/query", headers=auth, json={"sql": "SELECT 1 AS one"})
            assert one.status_code == 200 and one.json()["rows"] == [[1]]
            zoned = client.post("/v1/query", headers={**auth, "Accept": "text/csv"}, json={
                "sql": "SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t, "
                       "current_setting('TimeZone') AS z", "time_zone": "europe/berlin"})
            assert zoned.status_code == 200, zoned.text
            assert "+01" in zoned.text and "Europe/Berlin" in zoned.text
            bad = client.post("/v1/query", headers=auth,
                              json={"sql": "SELECT 1", "time_zone": "Europe/Berln"})
            assert bad.status_code == 400 and "Europe/Berlin" in bad.json()["hint"]
            # SET TimeZone's answer names the zone, in the Arrow schema too (a remote client's
            # session reads it there), and EXPLAIN's answer is marked as a plan
            setting = client.post("/v1/query", headers={
                **auth, "Accept": "application/vnd.apache.arrow.stream"},
                json={"sql": "SET TimeZone = 'Asia/Tokyo'"})
            table = pa.ipc.open_stream(setting.content).read_all()
            assert Result(table, plan=None).time_zone == "Asia/Tokyo"
            explained = client.post("/v1/query", headers={
                **auth, "Accept": "application/vnd.apache.arrow.stream"},
                json={"sql": "EXPLAIN SELECT 1"})
            text = plan_text(pa.ipc.open_stream(explained.content).read_all())
            assert text is not None and text.startswith("Plan: ")


def test_tz_over_postgresql(pg_cluster, pg_database, tmp_path):
    """A whole query sent to PostgreSQL, a query across it and a table-less one: the same
    instants, written in the session's zone."""
    db = pg_database("tz", "CREATE TABLE stamps (id int, at timestamptz); INSERT INTO stamps "
                          "VALUES (1, '2024-06-30 22:30:00+00'), (2, '2024-12-31 23:30:00+00')")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db))
        whole = ws.query("SELECT id, at FROM pg.public.stamps ORDER BY id", tz="Europe/Berlin")
        assert whole.plan is not None and whole.plan.residual is None  # sent whole
        assert whole.rows() == [
            (1, dt.datetime(2024, 7, 1, 0, 30, tzinfo=BERLIN)),
            (2, dt.datetime(2025, 1, 1, 0, 30, tzinfo=BERLIN))]
        assert [v.utcoffset() for _, v in whole.rows()] == [
            dt.timedelta(hours=2), dt.timedelta(hours=1)]
        split = ws.query("SELECT s.id, s.at, v.x FROM pg.public.stamps s "
                         "JOIN (VALUES (1, 'a')) AS v(id, x) ON s.id = v.id",
                         tz="America/New_York")
        (row,) = split.rows()
        assert row[1] == dt.datetime(2024, 6, 30, 18, 30,
                                     tzinfo=zoneinfo.ZoneInfo("America/New_York"))
        assert row[1].utcoffset() == dt.timedelta(hours=-4)
        # without a zone: UTC, as before
        assert ws.query("SELECT at FROM pg.public.stamps WHERE id = 1").rows()[0][0] == \
            dt.datetime(2024, 6, 30, 22, 30, tzinfo=dt.UTC)
