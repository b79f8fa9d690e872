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


def auto_beside_direct(pg_cluster: Any, db: str, home: Any) -> Any:
    """A workspace with the database as ``pg`` in auto mode (replica preferred within the
    bound) and again as ``src`` in direct mode, to compare against."""
    import meterql

    ws = meterql.connect(home)
    ws.sources.add("pg", pg_cluster.uri(db), mode="auto")
    ws.sources.add("src", pg_cluster.uri(db))
    prefer_replica(ws)
    return ws


def rows(ws: Any, sql: str, source: str = "pg", **kw: Any) -> list:
    """The rows of ``sql`` with ``{s}`` naming ``source``."""
    return ws.query(sql.format(s=source), max_rows=None, **kw).rows()


def routes(result: Any) -> dict[str, str]:
    """Each auto table a result read, with its route."""
    return {m["table"]: m["route"] for m in result.watermarks if "route" in m}
