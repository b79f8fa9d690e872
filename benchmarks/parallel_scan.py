"""Benchmark: is a large PostgreSQL scan faster split across connections by ctid range?

Reads what meterql's full-scan fragment reads (``customer_id, ts, quantity::text``) of a
PostgreSQL ``events`` table into Arrow, (1) over one connection and (2) split into N ctid
ranges read concurrently over N connections that share one exported snapshot (so together they
see exactly the rows one connection would). Medians of --runs after a warm-up; the rows are
checked to be the same.

    .venv/bin/python -m benchmarks.parallel_scan [--rows 10000000] [--runs 5] [--streams 2]

Writes benchmarks/results/parallel_scan.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import threading
import time

import adbc_driver_postgresql.dbapi as adbc_pg
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.common import RESULTS, machine
from benchmarks.planner import load_postgres
from devtools.pgcluster import PostgresCluster

COLUMNS = (
    'SELECT "customer_id", "ts", CAST("quantity" AS TEXT) AS "quantity" FROM "public"."events"'
)


def _no_copy(cur) -> None:
    cur.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})


def read_single(uri: str) -> pa.Table:
    with contextlib.closing(adbc_pg.connect(uri, autocommit=True)) as conn:
        with contextlib.closing(conn.cursor()) as cur:
            cur.execute(COLUMNS)
            return cur.fetch_arrow_table()


def read_split(uri: str, streams: int) -> pa.Table:
    conns = [adbc_pg.connect(uri, autocommit=True) for _ in range(streams)]
    try:
        leader = conns[0].cursor()
        _no_copy(leader)
        leader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        leader.execute("SELECT pg_export_snapshot(), pg_relation_size('public.events') / 8192")
        snapshot, pages = leader.fetchone()
        cursors = [leader]
        for conn in conns[1:]:
            cur = conn.cursor()
            _no_copy(cur)
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cur.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            cursors.append(cur)
        step = pages // streams + 1
        parts: list[pa.Table | None] = [None] * streams

        def read(i: int) -> None:
            cur = conns[i].cursor()
            lo, hi = i * step, (i + 1) * step
            cur.execute(f"{COLUMNS} WHERE ctid >= '({lo},0)'::tid AND ctid < '({hi},0)'::tid")
            parts[i] = cur.fetch_arrow_table()
            cur.close()

        threads = [threading.Thread(target=read, args=(i,)) for i in range(streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for cur in cursors:
            cur.execute("COMMIT")
            cur.close()
        return pa.concat_tables(parts)
    finally:
        for conn in conns:
            conn.close()


def timed(fn, runs: int) -> tuple[dict, pa.Table]:
    result = fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "runs_s": times}, result


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.parallel_scan",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--streams", type=int, default=2)
    args = ap.parse_args()
    with PostgresCluster() as pg:
        print(f"loading {args.rows:,} rows ...", flush=True)
        load_postgres(pg, args.rows)
        uri = pg.uri("bench")
        single, one = timed(lambda: read_single(uri), args.runs)
        split, many = timed(lambda: read_split(uri, args.streams), args.runs)
        key = pc.sort_indices(one, [("ts", "ascending"), ("customer_id", "ascending")])
        key2 = pc.sort_indices(many, [("ts", "ascending"), ("customer_id", "ascending")])
        assert one.take(key).equals(many.take(key2)), "split scan returned other rows"
        ratio = single["median_s"] / split["median_s"]
        print(f"rows {one.num_rows:,}")
        print(f"one connection: {single['median_s']:.2f} s median "
              f"({one.num_rows / single['median_s'] / 1e6:.2f} M rows/s)")
        print(f"{args.streams} ctid ranges: {split['median_s']:.2f} s median "
              f"({one.num_rows / split['median_s'] / 1e6:.2f} M rows/s): {ratio:.2f}x")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "parallel_scan.json").write_text(json.dumps({
            "machine": machine(), "rows": one.num_rows, "streams": args.streams,
            "single": single, "split": split, "speedup": ratio,
        }, indent=2))


if __name__ == "__main__":
    main()
