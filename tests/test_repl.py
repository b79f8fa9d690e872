"""The REPL driven in a real pseudo-terminal (pexpect): a query, multi-line input, completion
of a column after an alias, meta-commands, a parse error, Ctrl-C during a slow PostgreSQL query
(the backend is gone afterwards), a 400,000-row result (its count at once, 40 rows shown),
Ctrl-C while a result prints (back at the prompt, parameters kept), Ctrl-D; and a script piped
in. The shell's tests run twice:
on the workspace itself, and through a real ``meterql serve`` that holds it."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

import meterql
from meterql.repl.commands import COMMANDS, Copy, parse_command, parse_copy, relation_pattern
from meterql.repl.session import split_script, trailing_command
from meterql.server.presence import read_presence
from tests.support.served import serve
from tests.support.terminal import terminal_env
from tests.support.waiting import sleeping_backends, wait_until

METERQL = str(Path(sys.executable).parent / "meterql")
SETUP = (
    "CREATE TABLE usage (id int PRIMARY KEY, customer_id text, amount numeric(12,2));"
    "INSERT INTO usage SELECT g, 'c' || (g % 3), g FROM generate_series(1, 10) g;"
    "CREATE VIEW slow AS SELECT 1 AS x FROM pg_sleep(30);"
    "CREATE TABLE big AS SELECT g AS id, 'c' || (g % 100) AS customer_id "
    "FROM generate_series(1, 400000) g;"
)


@pytest.fixture(params=["alone", "through a server"])
def shell(request, pg_cluster, pg_database, tmp_path):
    db = pg_database("repl", SETUP)
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg_cluster.uri(db))
    with contextlib.ExitStack() as stack:
        if request.param != "alone":
            stack.enter_context(serve(home))
            assert wait_until(lambda: read_presence(home) is not None, timeout=10)
        # \\e and Ctrl-X Ctrl-E run this "editor": it renames a column and ends the SQL with ;
        editor = tmp_path / "editor.sh"
        editor.write_text("#!/bin/sh\nsed -i -e 's/ AS n / AS edited_n /' -e 's/;*$/;/' \"$1\"\n")
        editor.chmod(0o755)
        child = pexpect.spawn(METERQL, ["repl", "--home", str(home)], encoding="utf-8",
                              timeout=30, dimensions=(40, 200),
                              env=terminal_env(tmp_path, EDITOR=str(editor)))
        child.logfile_read = open(tmp_path / "pty.log", "w")  # read on failure
        child.expect("meterql>")
        yield child, db, home
        if child.isalive():
            child.terminate(force=True)


def test_queries_commands_errors_and_completion(shell):
    child, _, home = shell
    child.send("SELECT count(*) AS n FROM pg.public.usage;\r")
    child.expect(r"1 row in [\d.]+ ms")
    assert "10" in child.before
    child.expect("meterql>")
    # multi-line: Enter before the ; continues the statement
    child.send("SELECT sum(amount) AS total\r")
    child.expect(r"\.\.>")
    child.send("FROM pg.public.usage;\r")
    child.expect(r"1 row in")
    assert "55.00" in child.before
    child.expect("meterql>")
    # completion of a column after its alias (the alias is defined before the cursor)
    # (the one candidate is written in place: "u.amo" + "unt"; u.amo alone would not bind)
    child.send("SELECT u.id FROM pg.public.usage u WHERE u.amo\t")
    child.expect("unt")
    child.send(" > 9;\r")
    child.expect(r"1 row in")
    assert "error" not in child.before
    child.expect("meterql>")
    # a meta-command
    child.send("\\d pg.public.usage\r")
    child.expect(r"numeric\(12,2\)")
    child.expect("meterql>")
    # a parse error: one line, a caret, no traceback, the shell goes on
    child.send("SELEC 1;\r")
    child.expect(r"error:.*cannot parse the SQL")
    child.expect(r"\^")
    child.expect("meterql>")
    assert "Traceback" not in child.before
    child.send("\\format vertical\r")
    child.expect("format is vertical")
    child.send("SELECT id, customer_id FROM pg.public.usage WHERE id = 2;\r")
    child.expect(r"customer_id \| c2")
    child.expect("meterql>")
    time.sleep(0.3)  # the prompt is drawn before it reads keys
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    assert (home / "repl_history").read_text().count("SELECT count(*) AS n") == 1


def test_ctrl_c_stops_the_query_at_the_source(shell, pg_cluster):
    child, db, _ = shell
    child.send("SELECT x FROM pg.public.slow;\r")
    assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 1, timeout=10), (
        "the slow query never started")
    t0 = time.monotonic()
    child.sendcontrol("c")
    child.expect("query cancelled")
    assert time.monotonic() - t0 < 5
    assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 0, timeout=5)
    child.expect("meterql>")
    child.send("SELECT count(*) AS n FROM pg.public.usage;\r")  # the shell is still usable
    child.expect(r"1 row in")
    child.send("\\q\r")
    child.expect(pexpect.EOF)


def test_a_large_result_shows_its_count_at_once_and_ctrl_c_keeps_the_shell(shell):
    child, _, _ = shell
    child.send("\\param top 5\r")
    child.expect(":top = 5")
    child.expect("meterql>")
    t0 = time.monotonic()
    child.send("SELECT * FROM pg.public.big ORDER BY id;\r")
    child.expect(r"400,000 rows \(40 shown\) in [\d.]+ ms", timeout=60)
    # the rows are read in about a second; drawing every one of them took minutes and 1 GB
    assert time.monotonic() - t0 < 20
    drawn = [[cell.strip() for cell in line.split("│")[1:-1]]
             for line in child.before.splitlines() if line.startswith("│")]
    assert drawn == ([[str(i), f"c{i % 100}"] for i in range(1, 21)] + [["⋮", "⋮"]]
                     + [[str(i), f"c{i % 100}"] for i in range(399_981, 400_001)])
    child.expect("meterql>")
    if child.pid is not None:  # the shell's own process (through a server, it holds rows too)
        peak = Path(f"/proc/{child.pid}/status").read_text().split("VmHWM:")[1].split()[0]
        assert int(peak) < 1_000_000, f"the shell peaked at {peak} kB"
    # Ctrl-C while a result prints (every row as CSV): back at the prompt, parameters kept
    child.send("\\format csv\r")
    child.expect("format is csv")
    child.expect("meterql>")
    child.send("SELECT * FROM pg.public.big ORDER BY id;\r")
    child.expect("\r\n5000,c0\r\n", timeout=60)  # printing has begun
    child.sendcontrol("c")
    child.expect("interrupted", timeout=30)
    child.expect("meterql>")
    assert "Aborted" not in child.before and child.isalive()
    time.sleep(0.3)
    child.send("\\params\r")
    child.expect(":top = 5")
    child.expect("meterql>")
    child.send("SELECT count(*) AS n FROM pg.public.big WHERE id < :top;\r")
    child.expect("\r\n4\r\n")
    child.expect("1 row")


def test_psql_listing_expanded_display_copy_output_file_and_include(shell, tmp_path):
    child, _, _ = shell
    # \\dt lists tables only, by a psql pattern; \\d alone lists every relation
    child.send("\\dt us*\r")
    child.expect(r"1 row")
    assert "usage" in child.before and "slow" not in child.before
    child.expect("meterql>")
    child.send("\\dt pg.public.?low\r")  # the view is no table
    child.expect(r"0 rows")
    child.expect("meterql>")
    child.send("\\d\r")
    child.expect(r"3 rows")  # big, slow, usage
    assert "slow" in child.before and "view" in child.before and "big" in child.before
    child.send("\\dn\r")
    child.expect(r"public\s+.\s+3\s")
    child.expect("meterql>")
    child.send("\\l\r")
    child.expect(r"1 row")
    assert "pg" in child.before and "direct" in child.before
    # \\x on: one 'column | value' line per field, records between -[ RECORD n ]- lines
    child.send("\\x on\r")
    child.expect("expanded display is on")
    child.send("SELECT id, customer_id FROM pg.public.usage WHERE id <= 2 ORDER BY id;\r")
    child.expect(r"2 rows")
    lines = [line.rstrip() for line in re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "",
                                              child.before).splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("-[ RECORD 1 ]"))
    assert lines[start + 1:start + 6] == ["id          | 1", "customer_id | c1"] + [
        lines[start + 3]] + ["id          | 2", "customer_id | c2"]
    assert lines[start + 3].startswith("-[ RECORD 2 ]-")
    child.send("\\x auto\r")  # a narrow table fits: boxes again
    child.expect("expanded display is used automatically")
    child.send("SELECT id FROM pg.public.usage WHERE id = 2;\r")
    child.expect(r"1 row")
    assert "RECORD" not in child.before and "\u2502" in child.before  # a box's side
    # \\copy: client side, CSV unless the format (or the suffix) says otherwise
    out_csv, out_parquet = tmp_path / "out.csv", tmp_path / "out dir.parquet"
    child.send(f"\\copy (SELECT id, amount FROM pg.public.usage WHERE id <= 3 ORDER BY id) "
               f"TO {out_csv}\r")
    child.expect(r"wrote 3 rows to .*out\.csv \(csv\)")
    assert out_csv.read_text().splitlines() == ["id,amount", "1,1.00", "2,2.00", "3,3.00"]
    child.send(f"\\copy (SELECT customer_id, sum(amount) AS total FROM pg.public.usage "
               f"GROUP BY 1 ORDER BY 1) TO '{out_parquet}' WITH (FORMAT parquet)\r")
    child.expect(r"wrote 3 rows to .* \(parquet\)")
    from decimal import Decimal

    import pyarrow.parquet as pq
    assert pq.read_table(out_parquet).to_pylist() == [
        {"customer_id": "c0", "total": Decimal("18.00")},
        {"customer_id": "c1", "total": Decimal("22.00")},
        {"customer_id": "c2", "total": Decimal("15.00")}]
    out_json = tmp_path / "usage.json"  # psql's table form: the whole table
    child.send(f"\\copy pg.public.usage TO {out_json}\r")
    child.expect(r"wrote 10 rows to .*usage\.json \(json\)")
    assert sorted(r["id"] for r in json.loads(out_json.read_text())) == list(range(1, 11))
    child.send("\\copy pg.public.usage FROM x.csv\r")
    child.expect("never writes to one")
    # \\o FILE: results go to the file, messages stay on screen; \\o alone: the screen again
    results = tmp_path / "results.txt"
    child.send(f"\\o {results}\r")
    child.expect("results go to")
    child.send("SELECT sum(amount) AS total_to_file FROM pg.public.usage;\r")
    child.expect("meterql>")
    assert "total_to_file" not in child.before
    child.send("\\o\r")
    child.expect("results go to the screen")
    child.send("SELECT 7 * count(*) AS on_screen FROM pg.public.usage;\r")
    child.expect(r"1 row")
    assert "70" in child.before
    written = results.read_text()
    assert "total_to_file" in written and "55.00" in written and "on_screen" not in written
    assert "\x1b[" not in written  # no colours in a file
    # \\i FILE runs its statements and commands in order
    script = tmp_path / "script.sql"
    script.write_text("\\x off\nSELECT max(id) AS top\n  FROM pg.public.usage;\n")
    child.send(f"\\i {script}\r")
    child.expect("expanded display is off")
    child.expect(r"1 row")
    assert "top" in child.before and "10" in child.before
    child.send(f"\\i {tmp_path / 'missing.sql'}\r")
    child.expect("cannot read .*missing.sql: No such file")
    child.send("\\q\r")
    child.expect(pexpect.EOF)


def test_edit_in_editor_reset_and_watch(shell):
    child, _, _ = shell
    child.send("SELECT count(*) AS n FROM pg.public.usage;\r")
    child.expect(r"1 row in")
    child.expect("meterql>")
    # \\e: the last query in $EDITOR (which renames the column), then run
    child.send("\\e\r")
    child.expect(r"edited_n")
    child.expect(r"1 row in")
    assert "10" in child.before
    child.expect("meterql>")
    # Ctrl-X Ctrl-E: the text being typed, in $EDITOR; run as it ends with ; now
    time.sleep(0.3)
    child.send("SELECT 2 * count(*) AS n FROM pg.public.usage")
    child.sendcontrol("x")
    child.sendcontrol("e")
    child.expect(r"1 row in")
    assert "edited_n" in child.before and "20" in child.before
    child.expect("meterql>")
    # \\r on a line after an unfinished statement drops it
    child.send("SELECT 'dropped' AS gone\r")
    child.expect(r"\.\.>")
    child.send("\\r\r")
    child.expect("query buffer reset")
    child.expect("meterql>")
    # \\watch: the last query again and again until Ctrl-C, which returns to the prompt
    child.send("SELECT 3 * count(*) AS watched FROM pg.public.usage;\r")
    child.expect(r"1 row in")
    child.expect("meterql>")
    child.send("\\watch 0.5\r")
    t0 = time.monotonic()
    for _ in range(3):
        child.expect(r"every 0\.5 s")
        child.expect(r"1 row in")
        assert "30" in child.before
    assert time.monotonic() - t0 >= 1.0  # three runs, half a second apart
    child.sendcontrol("c")
    child.expect(r"watch stopped|query cancelled")
    child.expect("meterql>")
    assert "dropped" not in child.before
    child.send("SELECT count(*) AS after_watch FROM pg.public.usage;\r")
    child.expect(r"1 row in")
    assert "after_watch" in child.before
    child.send("\\q\r")
    child.expect(pexpect.EOF)


def test_a_script_piped_in(tmp_path):
    import duckdb

    path = tmp_path / "d.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT range AS i, range * 1.5 AS v FROM range(4)")
    con.close()
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("dk", f"duckdb://{path}")
    script = ("-- a comment line\nSELECT i, v\n  FROM dk.main.t WHERE i < :top ORDER BY i;\n"
              "\\param top 2\nSELECT i FROM dk.main.t WHERE i < :top ORDER BY i;\n"
              f"\\save {tmp_path / 'out.csv'}\nSELECT * FROM dk.main.nope;\n")
    proc = subprocess.run([METERQL, "repl", "--home", str(home)], input=script,
                          capture_output=True, text=True, timeout=60)
    lines = proc.stdout.splitlines()
    assert "missing value for parameter :top" in proc.stdout
    assert lines[lines.index(":top = 2") + 1:lines.index(":top = 2") + 4] == ["i", "0", "1"]
    assert (tmp_path / "out.csv").read_text().splitlines() == ["i", "0", "1"]
    assert "no table named 'dk.main.nope'" in proc.stdout
    assert proc.returncode == 1  # two statements failed
    assert "\x1b[" not in proc.stdout  # plain output


def test_meta_command_grammar_and_script_splitting():
    assert parse_command("\\eval calls 2026-10-01 2026-11-01 'acme corp'").args == (
        "calls", "2026-10-01", "2026-11-01", "acme corp")
    with pytest.raises(meterql.errors.ParameterError, match="did you mean \\\\tables"):
        parse_command("\\tabels")
    assert set(COMMANDS) >= {"sources", "tables", "d", "explain", "timing", "format", "param",
                             "sync", "aggregates", "eval", "save", "help", "q", "x", "dt", "dn",
                             "l", "e", "i", "o", "copy", "watch", "r"}
    assert parse_command("\\?").name == "help"
    assert parse_copy("(SELECT 'a) TO b' AS t) TO \"x y.json\" FORMAT json") == Copy(
        "SELECT 'a) TO b' AS t", "x y.json", "json")
    assert parse_copy('pg."My Schema".t TO f.csv') == Copy(
        'SELECT * FROM "pg"."My Schema"."t"', "f.csv", None)
    with pytest.raises(meterql.errors.ParameterError, match="cannot read the \\\\copy command"):
        parse_copy('pg."a"";DROP".t TO f.csv')  # (names are quoted, never spliced)
    with pytest.raises(meterql.errors.ParameterError, match="cannot read the \\\\copy options"):
        parse_copy("(SELECT 1) TO f.csv WITH (HEADER)")
    match = relation_pattern('pg."Usage*"')
    assert [match(("x", "pg", n)) for n in ("Usage*", "usage*", "Usage_x")] == [True, False,
                                                                                 False]
    assert trailing_command("SELECT 1\nFROM t\n\\e") == ("SELECT 1\nFROM t", "\\e")
    assert trailing_command("\\e") == ("\\e", None)
    pieces = split_script("SELECT 'a;b'\nFROM t;\n\\timing on\n\nSELECT 2;")
    assert pieces == ["SELECT 'a;b'\nFROM t;", "\\timing on", "SELECT 2;"]


def test_meterql_alone_in_a_terminal_opens_the_shell(tmp_path):
    home = tmp_path / "home"
    meterql.connect(home).close()
    child = pexpect.spawn(METERQL, [], encoding="utf-8", timeout=30, dimensions=(40, 200),
                          env=terminal_env(tmp_path, METERQL_HOME=str(home)))
    child.expect("meterql>")
    time.sleep(0.3)
    child.send("\\sources\r")
    child.expect("0 rows")
    child.send("\\q\r")
    child.expect(pexpect.EOF)
    # not a terminal: the help, not a shell waiting for input
    help_text = subprocess.run([METERQL], capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL).stdout
    assert "Commands:" in help_text and "repl" in help_text


def test_eval_takes_a_time_zone_and_shows_the_periods_in_it(tmp_path):
    import duckdb

    path = tmp_path / "u.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE events (customer_id VARCHAR, ts TIMESTAMPTZ, qty DECIMAL(10,2))")
    # 23:00 UTC on 30 September is 1 October in Paris: in Paris's October, not in UTC's
    con.execute("INSERT INTO events VALUES ('c1', '2026-09-30 23:00:00+00', 1.25), "
                "('c2', '2026-10-15 12:00:00+00', 2.50)")
    con.close()
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("dk", f"duckdb://{path}")
        ws.aggregates.save("usage", "SELECT customer_id, sum(qty) AS quantity FROM "
                           "dk.main.events WHERE ts >= :period_start AND ts < :period_end "
                           "GROUP BY customer_id")
    script = ("\\eval usage 2026-10-01 2026-11-01 Europe/Paris\n"
              "\\eval usage 2026-10-01 2026-11-01 c1 UTC\n"
              "\\eval usage 2026-10-01 2026-11-01 - America/New_York\n"
              "\\eval usage 2026-10-01 2026-11-01 c1 Mars/Base\n"
              "SELECT count(*) AS n FROM dk.main.events;\n\\watch 0.2 c=3\n\\watch 1\n")
    proc = subprocess.run([METERQL, "repl", "--home", str(home)], input=script,
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("usage v1")]
    assert "usage v1 (Europe/Paris); sha256:" in proc.stdout
    header = "period_start,period_end,customer_id,quantity"
    assert lines[:3] == [header, "2026-10-01T00:00:00+02:00,2026-11-01T00:00:00+01:00,c1,1.25",
                         "2026-10-01T00:00:00+02:00,2026-11-01T00:00:00+01:00,c2,2.50"]
    assert lines[3:5] == [header, "2026-10-01T00:00:00+00:00,2026-11-01T00:00:00+00:00,c1,0.00"]
    assert lines[5:7] == [header, "2026-10-01T00:00:00-04:00,2026-11-01T00:00:00-04:00,c2,2.50"]
    assert "unknown time zone 'Mars/Base'" in proc.stdout
    # \\watch in a script: a count of runs, as psql's c=N; without one it is refused
    assert lines[lines.index("n"):].count("n") == 4 and lines.count("2") == 4
    assert lines[-1].startswith("error: \\watch runs until Ctrl-C, which a script cannot send")
