"""``\\sync`` in the REPL prints each table's line as ``meterql sync`` does."""

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
