"""The REPL driven in a real pseudo-terminal (pexpect): a query, multi-line input, completion
of a column after an alias, meta-commands, a parse error, Ctrl-C during a slow PostgreSQL query
(the backend is gone afterwards), a 400,000-row result (its count at once, 40 rows shown),
Ctrl-C while a result prints (back at the prompt, parameters kept), Ctrl-D; and a script piped
in. The shell's tests run twice:
on the workspace itself, and through a real ``meterql serve`` that holds it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

import meterql
from meterql.repl.commands import COMMANDS, parse_command
from meterql.repl.session import split_script
from meterql.server.presence import read_presence
from tests.support.served import serve
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
        child = pexpect.spawn(METERQL, ["repl", "--home", str(home)], encoding="utf-8",
                              timeout=30, dimensions=(40, 200),
                              env={"TERM": "xterm", "PATH": "/usr/bin:/bin",
                                   "HOME": str(tmp_path)})
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
    child.send("SELECT u.id FROM pg.public.usage u WHERE u.amo\t")
    child.expect("amount")
    child.send(" > 9;\r")
    child.expect(r"1 row in")
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
                             "sync", "aggregates", "eval", "save", "help", "q"}
    pieces = split_script("SELECT 'a;b'\nFROM t;\n\\timing on\n\nSELECT 2;")
    assert pieces == ["SELECT 'a;b'\nFROM t;", "\\timing on", "SELECT 2;"]


def test_meterql_alone_in_a_terminal_opens_the_shell(tmp_path):
    home = tmp_path / "home"
    meterql.connect(home).close()
    child = pexpect.spawn(METERQL, [], encoding="utf-8", timeout=30, dimensions=(40, 200),
                          env={"TERM": "xterm", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "METERQL_HOME": str(home)})
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
