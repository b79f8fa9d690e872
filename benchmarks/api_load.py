"""Benchmark: the HTTP API under a bounded concurrent load, against the same evaluation in process.

Run from the repo root (about 1-2 minutes with the defaults on 2 cores):

    .venv/bin/python -m benchmarks.api_load [--requests 200] [--concurrency 8] [--runs 3]
                                            [--rows 1000000] [--postgres]

Data (deterministic, hash-based so DuckDB's threads cannot change it): a DuckDB file with
``events`` (``--rows`` rows: customer_id VARCHAR 'c0'..'c999', ts TIMESTAMPTZ evenly over
2026-09-01..2026-12-01 UTC, qty DECIMAL(18,6) in [0, 1000)). With ``--postgres`` the same rows are
copied into a throwaway PostgreSQL (devtools/pgcluster.py) ``public.events`` with an index on
(customer_id, ts), and the workspace's source is that PostgreSQL instead of the DuckDB file.

Setup: a workspace in a temp folder with the source ``src``, the aggregate ``usage_qty``

    SELECT customer_id, sum(qty) AS quantity FROM src.<schema>.events
    WHERE ts >= :period_start AND ts < :period_end
      AND (:customer_id IS NULL OR customer_id = :customer_id) GROUP BY customer_id

and a read key; the workspace is closed and ``meterql serve --no-sync`` (the real CLI, log level
``--log-level``, default info as in production) starts as a subprocess on a free loopback port.
After /v1/health answers, 20 warm-up requests, then ``--runs`` load phases: ``--requests``
``POST /v1/aggregates/usage_qty/evaluate`` for October 2026 (UTC), each for one random customer
(seeded), spread over ``--concurrency`` threads each with its own keep-alive ``httpx.Client``
(the client runs in this process, so it shares the machine's cores with the server).
Every response must be 200 and its quantity must equal the one computed directly in DuckDB for
that customer (all of them are checked). A phase reports p50/p95/p99 latency (ms, client side,
request sent to body read), requests/s (requests / wall time of the phase) and CPU cores used
(this process + the server). The server is then stopped (always, also on errors).

Baselines in the same run, after the server stops: the same evaluations (same customers) in
process, ``ws.aggregates.evaluate`` on a fresh ``meterql.connect`` of the workspace, sequential,
and (DuckDB source only) the aggregate's SQL run directly in DuckDB on a warm read-only
connection. Also, once after the load phases, ``--serial`` of the same requests over one
connection (C=1): the per-request HTTP cost without queueing. Reported: median latency per
phase; the figures are medians over the runs, so the HTTP overhead is p50(HTTP, C=1 and C
concurrent) against median(in process, sequential).

Targets (ours; the issue asks for the figures only): HTTP adds under 10 ms per request over the
same evaluation in process (C=1), at least 50 requests/s at C=8 on this machine, zero wrong
answers. Latency at C=8 is not a target of its own: with 8 requests in flight on 2 cores it is
about C / throughput (Little's law), i.e. it follows from the service time.

Writes ``benchmarks/results/api_load.json`` (machine, versions, every run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx

import meterql
from benchmarks.common import (
    RESULTS,
    CpuWatch,
    dist_version,
    finish_report,
    git,
    machine,
)
from benchmarks.http_load import (
    free_port,
    latency_summary,
    med,
    meterql_cmd,
    serve,
    timed_threads,
    wait_healthy,
)
from meterql.access.keys import create_key

CUSTOMERS = 1_000
AGGREGATE = "usage_qty"
PERIOD = {"from": "2026-10-01", "to": "2026-11-01", "tz": "UTC"}
WARMUP = 20
PW_ENV = "METERQL_BENCH_PGPASSWORD"
TARGETS = {"serial_overhead_ms": 10.0, "requests_per_s": 50.0, "wrong_answers": 0}

AGG_SQL = (
    "SELECT customer_id, sum(qty) AS quantity FROM src.{schema}.events "
    "WHERE ts >= :period_start AND ts < :period_end "
    "AND (:customer_id IS NULL OR customer_id = :customer_id) GROUP BY customer_id"
)
# The same query as DuckDB runs it natively ($-parameters).
DIRECT_SQL = (
    "SELECT customer_id, sum(qty) AS quantity FROM events "
    "WHERE ts >= $period_start AND ts < $period_end "
    "AND ($customer_id IS NULL OR customer_id = $customer_id) GROUP BY customer_id"
)
EXPECTED_SQL = (
    "SELECT customer_id, sum(qty) FROM events "
    "WHERE ts >= TIMESTAMPTZ '2026-10-01 00:00:00+00' "
    "AND ts < TIMESTAMPTZ '2026-11-01 00:00:00+00' "
    "GROUP BY customer_id"
)
START = datetime(2026, 10, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)


# -- data ------------------------------------------------------------------------------------


def make_duckdb(path: Path, rows: int) -> dict[str, Decimal]:
    """The events file; returns October's expected quantity per customer (all customers)."""
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"""
            CREATE TABLE events AS
            SELECT 'c' || (hash(i) % {CUSTOMERS})::VARCHAR AS customer_id,
                   TIMESTAMPTZ '2026-09-01 00:00:00+00'
                     + to_microseconds((i * (7862400000000 // {rows}))::BIGINT) AS ts,
                   ((hash(i * 7 + 1) % 1000000000)::DECIMAL(18,0) / 1000000)::DECIMAL(18,6) AS qty
            FROM range({rows}) AS t(i)
            ORDER BY ts
            """
        )  # 7862400 s = 91 days: Sep 1 .. Dec 1
        con.execute("CHECKPOINT")
        expected = {c: Decimal(q) for c, q in con.execute(EXPECTED_SQL).fetchall()}
    finally:
        con.close()
    for i in range(CUSTOMERS):  # asked for and without usage: 0
        expected.setdefault(f"c{i}", Decimal(0))
    return expected


def load_postgres(pg, duck_path: Path, work: Path) -> dict[str, float]:
    csv = work / "events.csv"
    t0 = time.perf_counter()
    con = duckdb.connect(str(duck_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY (SELECT customer_id, strftime(ts, '%Y-%m-%d %H:%M:%S.%f+00'), qty "
            f"FROM events) TO '{csv}' (HEADER false)"
        )
    finally:
        con.close()
    csv.chmod(0o644)
    out = {"export_csv": time.perf_counter() - t0}
    pg.create_database("bench")
    t0 = time.perf_counter()
    pg.run_sql(
        "CREATE TABLE public.events (customer_id varchar NOT NULL, "
        "ts timestamptz NOT NULL, qty numeric(18,6) NOT NULL)",
        dbname="bench",
    )
    pg.copy_in("bench", "public.events", csv, header=False)
    out["copy"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pg.run_sql(
        "CREATE INDEX events_customer_ts_idx ON public.events (customer_id, ts); "
        "VACUUM ANALYZE public.events; CHECKPOINT;",
        dbname="bench",
    )
    out["index_vacuum_analyze"] = time.perf_counter() - t0
    csv.unlink()
    return out


# -- server ----------------------------------------------------------------------------------


# -- load ------------------------------------------------------------------------------------


def load_phase(
    base: str,
    key: str,
    customers: list[str],
    concurrency: int,
    expected: dict[str, Decimal],
    watch: CpuWatch | None,
) -> dict:
    """All ``customers`` requests over ``concurrency`` threads; latencies and checks."""
    url = f"{base}/v1/aggregates/{AGGREGATE}/evaluate"
    headers = {"Authorization": f"Bearer {key}"}
    lock = threading.Lock()
    todo = iter(range(len(customers)))
    latencies: list[float] = [0.0] * len(customers)
    errors: list[str] = []
    wrong = 0
    clients = [httpx.Client(headers=headers, timeout=60) for _ in range(concurrency)]
    for client in clients:  # open the keep-alive connection outside the timed window
        client.get(f"{base}/v1/health").raise_for_status()
    start = threading.Barrier(concurrency + 1)

    def worker(client: httpx.Client) -> None:
        nonlocal wrong
        start.wait()
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            customer = customers[i]
            t0 = time.perf_counter()
            try:
                response = client.post(url, json={**PERIOD, "customers": [customer]})
                body = response.content
            except httpx.HTTPError as exc:
                with lock:
                    errors.append(f"{customer}: {exc!r}")
                continue
            latencies[i] = time.perf_counter() - t0
            problem = None
            if response.status_code != 200:
                problem = f"{customer}: HTTP {response.status_code} {body[:300]!r}"
            else:
                rows = response.json()["rows"]
                got = [(r["customer_id"], Decimal(str(r["quantity"]))) for r in rows]
                if got != [(customer, expected[customer])]:
                    problem = f"{customer}: got {got}, expected {expected[customer]}"
            if problem:
                with lock:
                    wrong += 1
                    errors.append(problem)

    out, wall = timed_threads(clients, worker, start, watch)
    ok = [x for x, c in zip(latencies, customers, strict=True) if x > 0]
    out.update(latency_summary(ok))
    out.update(
        {
            "requests": len(customers),
            "concurrency": concurrency,
            "wall_s": wall,
            "requests_per_s": len(customers) / wall,
            "wrong_or_failed": wrong + (len(customers) - len(ok)),
            "errors": errors[:10],
        }
    )
    return out


# -- baselines -------------------------------------------------------------------------------


def in_process(home: Path, runs: list[list[str]], expected: dict[str, Decimal]) -> list[dict]:
    out = []
    with meterql.connect(home) as ws:
        for c in runs[0][:WARMUP]:
            ws.aggregates.evaluate(AGGREGATE, START, END, customers=[c])
        for customers in runs:
            times, wrong = [], 0
            for c in customers:
                t0 = time.perf_counter()
                ev = ws.aggregates.evaluate(AGGREGATE, START, END, customers=[c], tz="UTC")
                times.append(time.perf_counter() - t0)
                rows = ev.rows()
                if [(r["customer_id"], Decimal(r["quantity"])) for r in rows] != [(c, expected[c])]:
                    wrong += 1
            out.append(
                {
                    "median_ms": statistics.median(times) * 1000,
                    **latency_summary(times),
                    "calls": len(times),
                    "wrong": wrong,
                }
            )
    return out


def direct_duckdb(path: Path, runs: list[list[str]], expected: dict[str, Decimal]) -> list[dict]:
    out = []
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")

        def one(c: str) -> list:
            return con.execute(
                DIRECT_SQL, {"period_start": START, "period_end": END, "customer_id": c}
            ).fetchall()

        for c in runs[0][:WARMUP]:
            one(c)
        for customers in runs:
            times, wrong = [], 0
            for c in customers:
                t0 = time.perf_counter()
                rows = one(c)
                times.append(time.perf_counter() - t0)
                want = [(c, expected[c])] if expected[c] else []
                if [(a, Decimal(b)) for a, b in rows] != want:
                    wrong += 1
            out.append(
                {
                    "median_ms": statistics.median(times) * 1000,
                    **latency_summary(times),
                    "calls": len(times),
                    "wrong": wrong,
                }
            )
    finally:
        con.close()
    return out


# -- report ----------------------------------------------------------------------------------


def bench_versions(pg) -> dict:
    import fastapi
    import pyarrow as pa
    import sqlglot
    import uvicorn

    out = {
        "python": sys.version.split()[0],
        "meterql": dist_version("meterql"),
        "duckdb": duckdb.__version__,
        "pyarrow": pa.__version__,
        "sqlglot": sqlglot.__version__,
        "fastapi": fastapi.__version__,
        "starlette": dist_version("starlette"),
        "uvicorn": uvicorn.__version__,
        "httpx": httpx.__version__,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "meterql_tree_dirty": bool(git("status", "--porcelain", "--", "meterql")),
    }
    if pg is not None:
        import adbc_driver_postgresql

        out["adbc_driver_postgresql"] = adbc_driver_postgresql.__version__
        out["postgresql"] = pg.run_sql("SHOW server_version", tuples_only=True).strip()
    return out


def print_report(report: dict) -> None:
    s = report["summary"]
    print(
        f"\nsource {report['params']['source']}, {report['params']['rows']:,} rows; "
        f"{report['params']['requests']} requests x C={report['params']['concurrency']}, "
        f"{report['params']['runs']} runs (medians)"
    )
    print(
        f"  HTTP      p50 {s['http_p50_ms']:.1f} ms  p95 {s['http_p95_ms']:.1f} ms  "
        f"p99 {s['http_p99_ms']:.1f} ms  {s['requests_per_s']:.1f} req/s  "
        f"wrong/failed {s['wrong_or_failed']}"
    )
    print(f"  in process (ws.aggregates.evaluate, sequential) median {s['in_process_ms']:.2f} ms")
    print(
        f"  HTTP, one connection (C=1) p50 {s['http_serial_p50_ms']:.1f} ms: "
        f"{s['http_serial_overhead_ms']:.1f} ms over in process"
    )
    if s.get("direct_duckdb_ms") is not None:
        print(f"  direct DuckDB SQL (sequential) median {s['direct_duckdb_ms']:.2f} ms")
    print(
        f"  HTTP p50 - in-process median: {s['http_overhead_p50_ms']:.1f} ms; "
        f"service time at C: {s['service_ms_per_request']:.1f} ms/request "
        f"(1000 / req/s)"
    )
    for name, ok in report["target_met"].items():
        print(f"  target {name}: {'met' if ok else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.api_load",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=200, help="requests per load phase")
    ap.add_argument("--concurrency", type=int, default=8, help="concurrent connections")
    ap.add_argument("--runs", type=int, default=3, help="load phases (after the warm-up)")
    ap.add_argument(
        "--serial",
        type=int,
        default=50,
        help="requests of the one-connection phase after the load phases",
    )
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--postgres", action="store_true", help="PostgreSQL source, not DuckDB")
    ap.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the server's log level (info logs every request, as in production)",
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=10,
        metavar="S",
        help="before each phase wait up to S s for the machine to go quiet; 0 skips",
    )
    ap.add_argument("--output", default=str(RESULTS / "api_load.json"))
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    # SIGTERM runs the finally blocks too (the server is stopped).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    rng = random.Random(args.seed)
    phases = [
        [f"c{rng.randrange(CUSTOMERS)}" for _ in range(args.requests)] for _ in range(args.runs)
    ]
    warm = [f"c{rng.randrange(CUSTOMERS)}" for _ in range(WARMUP)]
    report: dict = {
        "benchmark": "api_load",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "-m", "benchmarks.api_load", *sys.argv[1:]]),
        "machine": machine(),
        "params": {
            "rows": args.rows,
            "customers": CUSTOMERS,
            "requests": args.requests,
            "concurrency": args.concurrency,
            "runs": args.runs,
            "seed": args.seed,
            "warmup_requests": WARMUP,
            "serial_requests": args.serial,
            "period": PERIOD,
            "log_level": args.log_level,
            "source": "postgresql" if args.postgres else "duckdb",
            "wait_idle_s": args.wait_idle,
        },
        "targets": TARGETS,
        "results": {},
    }
    m = report["machine"]
    print(f"machine: {m['nproc']} cores, {m['cpu']}; load average {m['loadavg_start']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="meterql-bench-api-"))
    os.chmod(work, 0o755)  # the PostgreSQL OS user reads the CSV from here when run as root
    pg = None
    try:
        with contextlib.ExitStack() as stack:
            duck_path = work / "usage.duckdb"
            t0 = time.perf_counter()
            expected = make_duckdb(duck_path, args.rows)
            report["setup_s"] = {"duckdb_file": time.perf_counter() - t0}
            env = dict(os.environ)
            if args.postgres:
                from devtools.pgcluster import PostgresCluster

                pg = stack.enter_context(PostgresCluster())
                report["setup_s"].update(load_postgres(pg, duck_path, work))
                env[PW_ENV] = os.environ[PW_ENV] = pg.password
                uri, schema = (
                    f"postgresql://{pg.user}:env:{PW_ENV}@{pg.host}:{pg.port}/bench",
                    "public",
                )
            else:
                uri, schema = f"duckdb://{duck_path}", "main"
            report["versions"] = bench_versions(pg)
            print(
                "setup: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["setup_s"].items()),
                flush=True,
            )

            home = work / "home"
            with meterql.connect(home) as ws:
                ws.sources.add("src", uri)
                ws.aggregates.save(AGGREGATE, AGG_SQL.format(schema=schema), unit="unit")
                _, key = create_key(ws.keys, "read", "api_load bench")

            port = free_port()
            base = f"http://127.0.0.1:{port}"
            log_path = work / "server.log"
            results = report["results"]
            with serve(home, port, log_path, args.log_level, env) as proc:
                report["server"] = {
                    "command": " ".join(
                        [
                            *meterql_cmd(),
                            "serve",
                            "--home",
                            "<tmp>",
                            "--host",
                            "127.0.0.1",
                            "--port",
                            str(port),
                            "--no-sync",
                            "--log-level",
                            args.log_level,
                        ]
                    ),
                    "ready_s": wait_healthy(proc, base, log_path),
                }
                print(
                    f"server pid {proc.pid} on {base}, ready in "
                    f"{report['server']['ready_s']:.1f} s",
                    flush=True,
                )
                watch = CpuWatch(proc.pid)
                warmup = load_phase(base, key, warm, args.concurrency, expected, None)
                if warmup["wrong_or_failed"]:
                    raise RuntimeError(f"warm-up failed: {warmup['errors']}")
                results["http"] = []
                for i, customers in enumerate(phases, 1):
                    if args.wait_idle:
                        watch.wait_idle(args.wait_idle)
                    run = load_phase(base, key, customers, args.concurrency, expected, watch)
                    results["http"].append(run)
                    print(
                        f"run {i}: p50 {run['p50_ms']:.1f} ms, p95 {run['p95_ms']:.1f} ms, "
                        f"p99 {run['p99_ms']:.1f} ms, {run['requests_per_s']:.1f} req/s, "
                        f"cpu ours {run['cpu_cores']['ours']:.2f} cores, "
                        f"wrong/failed {run['wrong_or_failed']}",
                        flush=True,
                    )
                # The same requests over one connection, one at a time: the per-request HTTP
                # cost without queueing.
                if args.wait_idle:
                    watch.wait_idle(args.wait_idle)
                serial = load_phase(base, key, phases[0][: args.serial], 1, expected, watch)
                results["http_serial"] = serial
                print(
                    f"serial (C=1, {args.serial} requests): p50 {serial['p50_ms']:.1f} ms, "
                    f"{serial['requests_per_s']:.1f} req/s, wrong/failed "
                    f"{serial['wrong_or_failed']}",
                    flush=True,
                )
                server_alive = proc.poll() is None
            report["server"]["alive_after_load"] = server_alive
            report["server"]["exit_code"] = proc.returncode
            report["server"]["log_lines"] = len(log_path.read_text(errors="replace").splitlines())

            print("baseline: in process ...", flush=True)
            results["in_process"] = in_process(home, phases, expected)
            if not args.postgres:
                print("baseline: direct DuckDB ...", flush=True)
                results["direct_duckdb"] = direct_duckdb(duck_path, phases, expected)

            http = results["http"]
            s = {
                "http_p50_ms": med(http, "p50_ms"),
                "http_p95_ms": med(http, "p95_ms"),
                "http_p99_ms": med(http, "p99_ms"),
                "requests_per_s": med(http, "requests_per_s"),
                "wrong_or_failed": sum(r["wrong_or_failed"] for r in http)
                + results["http_serial"]["wrong_or_failed"],
                "http_serial_p50_ms": results["http_serial"]["p50_ms"],
                "in_process_ms": med(results["in_process"], "median_ms"),
                "in_process_wrong": sum(r["wrong"] for r in results["in_process"]),
            }
            if "direct_duckdb" in results:
                s["direct_duckdb_ms"] = med(results["direct_duckdb"], "median_ms")
                s["direct_duckdb_wrong"] = sum(r["wrong"] for r in results["direct_duckdb"])
            s["http_overhead_p50_ms"] = s["http_p50_ms"] - s["in_process_ms"]
            s["http_serial_overhead_ms"] = s["http_serial_p50_ms"] - s["in_process_ms"]
            s["service_ms_per_request"] = 1000 / s["requests_per_s"]
            report["summary"] = s
            report["target_met"] = {
                "serial_overhead_ms": s["http_serial_overhead_ms"] < TARGETS["serial_overhead_ms"],
                "requests_per_s": s["requests_per_s"] >= TARGETS["requests_per_s"],
                "wrong_answers": s["wrong_or_failed"] == 0 and s["in_process_wrong"] == 0,
            }
        finish_report(report, args.output, print_report)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
