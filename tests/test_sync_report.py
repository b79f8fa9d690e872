"""A sync run reports table by table: one table's problem is named (table, column, value and
the fix) and the other tables are synced and committed, against a real PostgreSQL; and the
small things a person reads while syncing (counts, durations, the --watch lines)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import meterql
from meterql.access.keys import create_key
from meterql.cli import main
from meterql.errors import SourceQueryError
from meterql.wording import format_duration, parse_duration

SETUP = """
CREATE TABLE a_customers (id int PRIMARY KEY, name text);
INSERT INTO a_customers VALUES (1, 'Ann'), (2, 'Bob');
CREATE TABLE b_rates (id int PRIMARY KEY, rate numeric);
INSERT INTO b_rates VALUES (1, 1.5), (2, 0.123456789012), (3, 2);
CREATE TABLE c_locked (id int PRIMARY KEY);
INSERT INTO c_locked VALUES (1);
CREATE TABLE d_usage (id int PRIMARY KEY, qty numeric(12,3));
INSERT INTO d_usage SELECT g, g / 4.0 FROM generate_series(1, 50) AS g;
"""


@contextlib.contextmanager
def locked(uri: str, table: str):
    """Another session holding an exclusive lock on ``table`` (reads of it wait)."""
    import adbc_driver_postgresql.dbapi as pg

    conn = pg.connect(uri)  # (not autocommit: the lock lasts until the rollback)
    cur = conn.cursor()
    cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        cur.close()
        conn.close()


@pytest.fixture()
def bad_source(pg_cluster, pg_database):
    return pg_cluster.uri(pg_database("tables", SETUP))


def test_one_bad_table_is_named_and_the_others_are_synced(bad_source, tmp_path):
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", bad_source, mode="sync", options={"statement_timeout_ms": 500})
        with locked(bad_source, "c_locked"):  # a read the source itself fails (a timeout)
            [report] = ws.sync("pg")
        by_table = {t.table: t for t in report.tables}
        assert list(by_table) == ["pg.public.a_customers", "pg.public.b_rates",
                                  "pg.public.c_locked", "pg.public.d_usage"]
        # the good tables, before and after the failed ones, are synced and committed
        assert ws.query("SELECT * FROM pg.public.a_customers ORDER BY id").rows() == [
            (1, "Ann"), (2, "Bob")]
        assert ws.query("SELECT count(*), sum(qty) FROM pg.public.d_usage").rows()[0][0] == 50
        assert by_table["pg.public.a_customers"].error is None
        assert by_table["pg.public.d_usage"].error is None and report.rows == 2 + 50
        # the bad one: table, column, value and the fix
        rates = by_table["pg.public.b_rates"].error
        assert isinstance(rates, SourceQueryError) and rates.table == "pg.public.b_rates"
        text = str(rates)
        assert "pg.public.b_rates" in text and "'rate'" in text and "0.123456789012" in text
        assert "meterql source set pg --option numeric_scale=12" in text
        assert "TransactionContext" not in text
        locked_error = by_table["pg.public.c_locked"].error
        assert locked_error is not None and "pg.public.c_locked" in str(locked_error)
        assert "statement timeout" in str(locked_error)
        # the run's error names both failed tables; never synced, they are not readable yet
        assert report.error is not None and "2 of 4 tables" in report.error.message
        assert "pg.public.b_rates" in report.error.message
        assert "pg.public.c_locked" in report.error.message
        # the fix works
        ws.sources.set_options("pg", {"numeric_scale": 12})
        [again] = ws.sync("pg")
        assert again.error is None, again.error
        assert str(ws.query("SELECT rate FROM pg.public.b_rates WHERE id = 2")
                   .to_arrow().column(0)[0].as_py()) == "0.123456789012"


def cli(home: Path, *args: str):
    return CliRunner().invoke(main, [*args, "--home", str(home)])


def test_the_cli_prints_a_line_per_table_and_fails(bad_source, tmp_path):
    home = tmp_path / "home"
    assert cli(home, "source", "add", "pg", bad_source, "--mode", "sync").exit_code == 0
    out = cli(home, "sync", "pg")
    assert out.exit_code == 1
    lines = out.stdout.splitlines()
    assert re.fullmatch(r"pg\.public\.a_customers: full, 2 rows copied in \S+s", lines[0])
    assert lines[1] == "pg.public.b_rates: full, not synced (its replica keeps its last state)"
    assert re.fullmatch(r"pg\.public\.c_locked: full, 1 row copied in \S+s", lines[2])
    assert re.fullmatch(r"pg\.public\.d_usage: full, 50 rows copied in \S+s", lines[3])
    assert "0.123456789012" in out.stderr and "numeric_scale=12" in out.stderr
    assert "TransactionContext" not in out.stderr
    fixed = cli(home, "source", "set", "pg", "--option", "numeric_scale=12")
    assert fixed.exit_code == 0
    again = cli(home, "sync", "pg")
    assert again.exit_code == 0, again.output
    assert re.search(r"pg\.public\.b_rates: full, 3 rows copied", again.stdout)
    tables = cli(home, "tables", "pg")
    assert tables.exit_code == 0 and "pg.public.b_rates" in tables.output
    assert "sync_state" not in tables.output


def test_the_http_answer_reports_each_table(bad_source, tmp_path):
    from fastapi.testclient import TestClient

    from meterql.server.app import create_app

    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", bad_source, mode="sync")
        key = create_key(ws.keys, "admin", "admin key")[1]
        with TestClient(create_app(ws)) as http:
            answer = http.post("/v1/sync", json={"sources": ["pg"]},
                               headers={"Authorization": f"Bearer {key}"})
            listed = http.get("/v1/tables", params={"source": "pg"},
                              headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 207
    [report] = answer.json()["reports"]
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["pg.public.a_customers"]["error"] is None
    assert tables["pg.public.a_customers"]["rows"] == 2
    bad = tables["pg.public.b_rates"]["error"]
    assert bad["table"] == "pg.public.b_rates" and "0.123456789012" in bad["detail"]
    assert "numeric_scale=12" in bad["hint"]
    assert report["error"]["table"] == "pg.public.b_rates"
    # the replica's bookkeeping is not one of the source's tables
    names = str(listed.json())
    assert listed.status_code == 200 and "pg.public.a_customers" in names
    assert "sync_state" not in names


def test_durations_are_read_and_written_one_way():
    assert [parse_duration(t) for t in ("15m", "1h30m", "90", "2.5s", "1d")] == [
        900, 5400, 90, 2.5, 86400]
    for wrong in ("m", "1m1h", "1h1h", "15x", ""):
        with pytest.raises(ValueError, match="1h30m"):
            parse_duration(wrong)
    assert [format_duration(s) for s in (900, 5400, 2, 0.25, 3661)] == [
        "15m", "1h30m", "2s", "0.25s", "1h1m1s"]
    for seconds in (1, 59, 60, 900, 5400, 86399, 90061):
        assert parse_duration(format_duration(seconds)) == seconds


def test_every_and_sync_every_take_durations(tmp_path):
    home = tmp_path / "home"
    bad = cli(home, "sync", "--watch", "--every", "soon")
    assert bad.exit_code == 2 and "1h30m" in bad.output
    serve = CliRunner().invoke(main, ["serve", "--sync-every", "soon"])
    assert serve.exit_code == 2 and "1h30m" in serve.output
    helped = CliRunner().invoke(main, ["serve", "--help"])
    assert "15m" in helped.output


def test_watch_prints_the_time_of_each_run_and_the_next(capsys):
    from meterql.cli.sync import printer
    from meterql.sync.runner import SyncReport, TableSyncReport
    from meterql.sync.schedule import SyncAttempt

    report = SyncReport("pg", [TableSyncReport("pg.public.t", "append", 0, 0.5, read=1)],
                        seconds=0.5)
    printer(watch=True)(SyncAttempt(report, 1, None, 5400.0))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "pg.public.t: append, 0 new rows (1 row read) in 0.50s"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d pg: 1 table synced, 0 rows in 0.50s; "
                        r"next run at \d\d:\d\d:\d\d \(in 1h30m\)", lines[1]), lines[1]
    printer(watch=False)(SyncAttempt(report, 1, None, 5400.0))
    assert "next run" not in capsys.readouterr().out
