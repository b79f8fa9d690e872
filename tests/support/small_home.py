"""A small workspace for CLI tests: a SQLite ``crm`` source (customers Ann and Bob) and a
DuckDB ``usage`` source (two events, one each side of midnight UTC)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb

import meterql


def small_home(root: Path) -> Path:
    """Make the sources under ``root`` and a workspace ``root/home`` registering them."""
    lite = root / "crm.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", [(1, "Ann"), (2, "Bob")])
    con.commit()
    con.close()
    dk = root / "usage.duckdb"
    dcon = duckdb.connect(str(dk))
    dcon.execute("CREATE TABLE events (customer_id BIGINT, qty DECIMAL(18,6), ts TIMESTAMPTZ)")
    dcon.execute("INSERT INTO events VALUES (1, 1.5, '2024-01-01 23:30:00+00'), "
                 "(2, 2, '2024-01-02 00:30:00+00')")
    dcon.close()
    with meterql.connect(root / "home") as ws:
        ws.sources.add("crm", f"sqlite://{lite}")
        ws.sources.add("usage", f"duckdb://{dk}")
    return root / "home"
