"""Cost constants that make an ``auto`` source's own reads far dearer than its replica's, for
tests that check what the replica and hybrid routes read (on test-sized tables the cost model
rightly prefers the source)."""

from __future__ import annotations

from typing import Any

#: A nanosecond figure no real source reaches: 1 ms per row scanned or read through an index.
COSTLY = {"seq_row_ns": 1e6, "index_row_ns": 1e6}


def prefer_replica(ws: Any, source: str = "pg") -> None:
    ws.catalog.set_cost_constants(source, COSTLY)


def prefer_source(ws: Any, source: str = "pg") -> None:
    """The other way round: the replica's scans made dear, so the source is the cheaper."""
    ws.catalog.set_cost_constants(source, {"replica_scan_ns": 1e6, "replica_row_ns": 1e6})
