"""The shell in a script: ``\\sync`` prints each table's line as ``meterql sync`` does, and the
session's time zone (``\\timezone``, ``SET TimeZone``, ``--tz``) shows TIMESTAMPTZ values in it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import meterql

METERQL = str(Path(sys.executable).parent / "meterql")


def test_sync_in_the_shell_prints_the_cli_lines(tmp_path):
    lite = tmp_path / "crm.sqlite"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'Ann')")
    con.commit()
    con.close()
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("crm", f"sqlite://{lite}", mode="sync")
    proc = subprocess.run([METERQL, "repl", "--home", str(home)], input="\\sync crm\n",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = [ln for ln in proc.stdout.splitlines() if ln.startswith("crm.main.customers:")]
    assert len(shown) == 1 and shown[0].startswith("crm.main.customers: full, 1 row copied in ")
    assert "1 rows" not in proc.stdout


def test_the_session_time_zone_in_the_shell(tmp_path):
    """``\\timezone``, ``SET TimeZone`` and ``meterql repl --tz`` show TIMESTAMPTZ values in the
    session's zone; an unknown zone is named with the closest ones."""
    import duckdb

    home = tmp_path / "home"
    path = tmp_path / "t.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT TIMESTAMPTZ '2026-01-01 12:00:00+00' AS at")
    con.close()
    with meterql.connect(home) as ws:
        ws.sources.add("dk", f"duckdb://{path}")
    script = ("\\timezone\nSELECT at FROM dk.main.t;\n\\timezone America/New_Yrok\n"
              "\\timezone America/New_York\nSELECT at FROM dk.main.t;\n"
              "SET TimeZone = 'Asia/Tokyo';\n\\timezone\nSELECT at FROM dk.main.t;\n")
    proc = subprocess.run([METERQL, "repl", "--home", str(home)], input=script,
                          capture_output=True, text=True, timeout=60)
    out = proc.stdout
    assert out.index("time zone is UTC") < out.index("2026-01-01T12:00:00+00:00")
    assert "did you mean 'America/New_York'" in out
    assert out.index("time zone is America/New_York") < out.index("2026-01-01T07:00:00-05:00")
    assert out.index("time zone is Asia/Tokyo") < out.index("2026-01-01T21:00:00+09:00")
    assert proc.returncode == 1  # the mistyped zone
    flagged = subprocess.run([METERQL, "repl", "--home", str(home), "--tz", "Europe/Berlin"],
                             input="SELECT at FROM dk.main.t;\n", capture_output=True,
                             text=True, timeout=60)
    assert flagged.returncode == 0 and "2026-01-01T13:00:00+01:00" in flagged.stdout
    bad = subprocess.run([METERQL, "repl", "--home", str(home), "--tz", "Mars/Base"],
                         input="", capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown time zone 'Mars/Base'" in bad.stderr
