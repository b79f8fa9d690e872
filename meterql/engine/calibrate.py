"""``meterql calibrate SOURCE``: the cost model's constants (``planner/costs.py``) measured on
one source and its replica by a few short probes, each run three times after a warm-up (the
median counts):

- a round trip: ``SELECT 1``;
- a sequential scan: ``count(*)`` over at most 1,000,000 rows of the source's largest table;
- the transfer of rows: at most 100,000 rows of it, read as meterql reads them (its number
  and time columns, as billing queries read; every column when it has none);
- reads through an index: the first 5,000 rows of that table in the order of its index's
  first column;
- the replica's columnar scan (when synced): a hash of every column of every row.

Each probe reads a bounded number of rows, so calibrating a large source takes about a second.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import duckdb

from meterql.catalog import Table, TableStats
from meterql.catalog.stat_values import orders_values
from meterql.connectors import Connector
from meterql.dialects import type_family
from meterql.sql_text import quote_ident, quote_qualified

SEQ_ROWS = 1_000_000
TRANSFER_ROWS = 100_000
INDEX_ROWS = 5_000
RUNS = 3


def _median_ms(run: Callable[[], Any]) -> float:
    run()  # warm-up: connections, caches
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def calibrate(
    connector: Connector, tables: list[Table], stats: dict[str, TableStats],
    duck: duckdb.DuckDBPyConnection | None = None, replica_rows: dict[str, int] | None = None,
) -> dict[str, float]:
    """The constants measured on ``connector``'s source (and on its replica through ``duck``,
    with the rows of each replica table by full name, when given).

    Returns:
        ``round_trip_ms``, and when the source has a table with rows ``seq_row_ns`` and
        ``transfer_row_ns``; ``index_row_ns`` when it has an index; ``replica_row_ns`` when
        a replica table has rows.
    """

    def read(sql: str) -> int:
        with connector.stream(sql) as reader:
            return sum(batch.num_rows for batch in reader)

    out: dict[str, float] = {}
    round_trip = _median_ms(lambda: read("SELECT 1"))
    out["round_trip_ms"] = round_trip
    candidates = [t for t in tables if t.kind == "table"]

    def rows_of(table: Table) -> int:
        entry = stats.get(table.full_name)
        return (entry.rows if entry is not None and entry.rows is not None else table.rows) or 0

    # the largest table by the statistics; its rows are counted (up to the probe's limit), as
    # an estimate may be stale or unknown (a table never analyzed)
    largest = max(candidates, key=rows_of, default=None)
    seq_rows = 0
    if largest is not None:
        name = quote_qualified(largest.schema, largest.name)
        probe = f"SELECT count(*) FROM (SELECT 1 FROM {name} LIMIT {SEQ_ROWS}) AS probe"
        with connector.stream(probe) as reader:
            seq_rows = int(reader.read_all().column(0)[0].as_py())
    if largest is not None and seq_rows > 0:
        scanned = _median_ms(lambda: read(probe))
        out["seq_row_ns"] = max(0.1, (scanned - round_trip) * 1e6 / seq_rows)
        moved_rows = min(seq_rows, TRANSFER_ROWS)
        typical = [c for c in largest.columns if orders_values(type_family(c.type))]
        listed = ", ".join(quote_ident(c.name) for c in typical or largest.columns)
        moved = _median_ms(lambda: read(f"SELECT {listed} FROM {name} LIMIT {moved_rows}"))
        out["transfer_row_ns"] = max(
            0.1, (moved - round_trip) * 1e6 / moved_rows - out["seq_row_ns"])
        entry = stats.get(largest.full_name)
        indexes = sorted(entry.indexes if entry is not None else (), key=lambda i: i.unique)
        if indexes:  # a non-unique one first: it reads like a lookup
            limit = min(seq_rows, INDEX_ROWS)
            through = _median_ms(lambda: read(
                f"SELECT * FROM {name} ORDER BY {quote_ident(indexes[0].columns[0])} "
                f"LIMIT {limit}"))
            out["index_row_ns"] = max(
                out["seq_row_ns"],
                (through - round_trip) * 1e6 / limit - out["transfer_row_ns"])
    if duck is not None and replica_rows:
        full_name, rows = max(replica_rows.items(), key=lambda item: item[1])
        replica = next((t for t in tables if t.full_name == full_name), None)
        if replica is not None and rows > 0:
            source, schema, name = full_name.split(".", 2)
            target = quote_qualified(source, schema, name)
            columns = ", ".join(quote_ident(c.name) for c in replica.columns)
            with duck.cursor() as cur:
                scanned = _median_ms(lambda: cur.execute(
                    f"SELECT sum(hash({columns})) FROM {target}").fetchall())
            out["replica_row_ns"] = max(0.01, scanned * 1e6 / rows)
    return out
