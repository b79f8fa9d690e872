"""A workspace over a small DuckDB file, ``lake.main.prices`` (sku, price, note)."""

from __future__ import annotations

from pathlib import Path

import duckdb

import meterql


def lake_workspace(root: Path) -> meterql.Workspace:
    """A new workspace in ``root/home`` with the source ``lake`` registered (open: close it)."""
    con = duckdb.connect(str(root / "lake.duckdb"))
    con.execute("CREATE TABLE prices AS SELECT 'sku' || range AS sku, range AS price, "
                "'n' || range AS note FROM range(3)")
    con.close()
    ws = meterql.connect(root / "home")
    ws.sources.add("lake", f"duckdb://{root / 'lake.duckdb'}")
    return ws
