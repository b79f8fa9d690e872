"""Auto mode's own cost on the queries it routes like direct mode: one customer's month (and
its daily windows) asked alternately of a direct source and of the same database in auto mode
(routed to the source by the cost model), so both see the same caches.

    .venv/bin/python -m benchmarks.auto_overhead --pg-dir /work/benchpg10 --scale 10gb

It reuses a cluster the harness loaded (``--pg-dir``); the auto source is synced first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import meterql
from benchmarks.harness.workload import sql_for
from devtools.pgcluster import PostgresCluster


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.auto_overhead")
    ap.add_argument("--pg-dir", required=True, help="a cluster the harness loaded")
    ap.add_argument("--scale", default="10gb", help="its scale (names the database)")
    ap.add_argument("--runs", type=int, default=60, help="alternating runs per mode")
    args = ap.parse_args(argv)
    cluster = PostgresCluster(keep_dir=args.pg_dir).start()
    os.environ["METERQL_BENCH_PW"] = cluster.password
    uri = (f"postgresql://{cluster.user}:env:METERQL_BENCH_PW@{cluster.host}:{cluster.port}/"
           f"bench_{args.scale}")
    try:
        with tempfile.TemporaryDirectory() as home:
            ws = meterql.connect(home)
            ws.sources.add("direct", uri, mode="direct")
            ws.sources.add("pg", uri, mode="auto")
            ws.sync.set_strategy("pg.public.events", "append", "id")
            ws.sync("pg")
            for name in ("customer_month", "daily_windows"):
                auto = sql_for(name, "meterql")
                direct = auto.replace("pg.public.", "direct.public.")
                route = ws.query(auto).plan.routes[0]
                times: dict[str, list[float]] = {"direct": [], "auto": []}
                for _ in range(5):  # warm both
                    ws.query(direct).rows(), ws.query(auto).rows()
                for _ in range(args.runs):
                    for mode, sql in (("direct", direct), ("auto", auto)):
                        t0 = time.perf_counter()
                        ws.query(sql).rows()
                        times[mode].append(time.perf_counter() - t0)
                d, a = (statistics.median(times[m]) * 1000 for m in ("direct", "auto"))
                print(f"{name}: direct {d:.2f} ms, auto {a:.2f} ms, auto/direct {a / d:.2f}x "
                      f"(median of {args.runs} alternating runs); route: {route}")
            ws.close()
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
