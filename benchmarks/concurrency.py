"""Benchmark: concurrency inside the server: a fast query's latency beside a slow query and
beside a sync, and concurrent manual row inserts (``meterql serve``, over HTTP).

Run from the repo root (about 3-5 minutes with the defaults on 2 cores):

    .venv/bin/python -m benchmarks.concurrency [--rows 10000000] [--customers 1000] [--runs 3]
                                               [--slow duckdb,postgres] [--slow-seconds 10]
                                               [--idle-queries 200] [--writers 8]
                                               [--writes 400]

Setup: a throwaway PostgreSQL (devtools/pgcluster.py) with a database ``conc``: ``events``
(``--rows`` rows: id, customer_id 0..``--customers``-1 in id order, ts, quantity NUMERIC(18,4))
and ``customers`` (``--customers`` rows). The workspace (a temp folder) registers that database
twice: ``pg`` in sync mode (its replica is what the fast query reads; synced once before the
server starts, strategy ``full`` so every sync copies the whole table again) and ``pgd`` in
direct mode (the PostgreSQL slow query). It also has a manual table ``local.manual.credits``
and three keys (read, ingest, admin). The workspace is closed and ``meterql serve --no-sync
--log-level warning`` (the real CLI) starts as a subprocess on a free loopback port.

The fast query (``POST /v1/query``, read key, one keep-alive connection, one request at a time,
a different customer each time; every answer checked against the known count)::

    SELECT count(*) AS n, sum(quantity) AS q FROM pg.public.events WHERE customer_id = :c

Each run measures, in this order (so every ratio has its baseline from the same run):

(a) idle: ``--idle-queries`` fast queries, nothing else running; p50 and p90.
(b) beside a slow query, for each kind in ``--slow``: the slow query is sent on its own
    connection; once it is in flight (0.3 s later), fast queries are sent one after another
    until it answers; p50/p90 of those. Kinds: ``duckdb``, a nested-loop join of the replica
    run in the server's DuckDB; ``postgres``, the same join on ``pgd``, pushed whole to
    PostgreSQL. The slow query's size (``f.id <= :k``: ``--rows`` x k pairs) is calibrated
    once before the runs so it takes about ``--slow-seconds`` when alone::

        SELECT count(*) AS n FROM <src>.public.events e JOIN <src>.public.events f
          ON (e.id + f.id) % 7 = 0 WHERE f.id <= :k

(c) beside a sync: ``POST /v1/sync {"sources": ["pg"]}`` (admin key) copies the whole source
    again while fast queries run (they read the last committed replica); p50/p90 of those,
    and the sync's own time.
(d) writes: ``--writes`` ``POST /v1/tables/credits/rows`` (ingest key), unique ids, first over
    one connection, then over ``--writers`` connections (one request in flight on each); every
    answer must be 201 and the table's count must grow by exactly the rows sent; rows/s.

Ratios: (b) p50 / (a) p50 and (c) p50 / (a) p50, per run, then the median over the runs;
target: within 2x. Writes: throughput at ``--writers`` connections / over one.

Reference (after the server stops, unless ``--no-native``; ``duckdb`` in ``--slow``): the same
two queries in DuckDB itself, in this process, on the replica file (attached read-only as
``pg``), each run: ``--idle-queries`` fast queries on one cursor, then fast queries on it while
the slow query (same ``k``) runs on another cursor in a thread. What DuckDB's own scheduling and
the two cores allow, without HTTP and without meterql; compared by the milliseconds the slow
query adds to the fast one's p50 as well as by the ratio.

Writes ``benchmarks/results/concurrency.json`` (machine, versions, every run).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

import meterql
from benchmarks.common import (
    RESULTS,
    CpuWatch,
    finish_report,
    machine,
    postmaster_pid,
    versions,
)
from benchmarks.http_load import (
    bounded_load,
    free_port,
    http_request,
    med,
    meterql_cmd,
    serve,
    serve_args,
    wait_healthy,
)
from devtools.pgcluster import PostgresCluster
from meterql.access.keys import create_key
from meterql.sync.replica import replica_path

DB = "conc"
HOST = "127.0.0.1"
LOG_LEVEL = "warning"
TARGET_RATIO = 2.0
FAST_SQL = ("SELECT count(*) AS n, sum(quantity) AS q FROM pg.public.events "
            "WHERE customer_id = :c")
SLOW_SQL = ("SELECT count(*) AS n FROM {src}.public.events e JOIN {src}.public.events f "
            "ON (e.id + f.id) % 7 = 0 WHERE f.id <= :k")
SLOW_SOURCE = {"duckdb": "pg", "postgres": "pgd"}


class Watch(CpuWatch):
    """CpuWatch whose "ours" is this process, PostgreSQL's processes and the server."""

    def __init__(self, postmaster: int | None, server: int) -> None:
        super().__init__(postmaster)
        self.server = server

    def _sample_ours(self) -> None:
        super()._sample_ours()
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{self.server}/stat").read_text()
            rest = stat[stat.rindex(")") + 2 :].split()
            self._ours[self.server] = int(rest[11]) + int(rest[12])


# -- data ------------------------------------------------------------------------------------


def load_postgres(pg: PostgresCluster, rows: int, customers: int) -> float:
    t0 = time.perf_counter()
    pg.create_database(DB)
    per = rows // customers
    pg.run_sql(f"""
        CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
        INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(0, {customers - 1}) g;
        CREATE TABLE events (id bigint NOT NULL, customer_id int NOT NULL,
                             ts timestamptz NOT NULL, quantity numeric(18,4) NOT NULL);
        INSERT INTO events
        SELECT g, (g - 1) / {per}, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second',
               ((g * 7919) % 100000) / 100.0
        FROM generate_series(1::bigint, {per * customers}) g;
        ANALYZE;
    """, dbname=DB)
    return time.perf_counter() - t0


def prepare_workspace(home: Path, pg: PostgresCluster) -> dict:
    """Sources, the manual table and the keys; the replica synced once (timed)."""
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg.uri(DB), mode="sync")
        ws.sources.add("pgd", pg.uri(DB))
        t0 = time.perf_counter()
        reports = ws.sync("pg")
        first_sync = time.perf_counter() - t0
        for report in reports:
            if report.error is not None:
                raise RuntimeError(f"first sync failed: {report.error}")
        ws.manual.create("credits", {"id": "VARCHAR", "customer_id": "INTEGER",
                                     "amount": "DECIMAL(18,2)"}, ["id"])
        keys = {scope: create_key(ws.keys, scope, f"concurrency bench ({scope})")[1]
                for scope in ("read", "ingest", "admin")}
    return {"keys": keys, "first_sync_s": first_sync, "sync_rows": sum(r.rows for r in reports)}


# -- queries ---------------------------------------------------------------------------------


class FastQueries:
    """The fast query on one keep-alive connection; answers checked."""

    def __init__(self, base: str, key: str, customers: int, per_customer: int) -> None:
        self.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                                   timeout=120)
        self.customers = itertools.cycle(range(0, customers, 7))
        self.per_customer = per_customer
        self.wrong: list[str] = []

    def one(self) -> float:
        c = next(self.customers)
        t0 = time.perf_counter()
        response = self.client.post("/v1/query", json={"sql": FAST_SQL, "params": {"c": c}})
        elapsed = time.perf_counter() - t0
        if response.status_code != 200:
            self.wrong.append(f"customer {c}: HTTP {response.status_code} {response.text[:200]}")
        else:
            n = response.json()["rows"][0][0]
            if int(n) != self.per_customer:
                self.wrong.append(f"customer {c}: count {n}, expected {self.per_customer}")
        return elapsed

    def many(self, n: int) -> list[float]:
        return [self.one() for _ in range(n)]

    def until(self, done: threading.Event, max_s: float = 600) -> list[float]:
        out: list[float] = []
        t0 = time.perf_counter()
        while not done.is_set() and time.perf_counter() - t0 < max_s:
            out.append(self.one())
        return out

    def close(self) -> None:
        self.client.close()


def percentiles(seconds: list[float]) -> dict:
    ms = sorted(x * 1000 for x in seconds)
    if not ms:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "max_ms": None}
    if len(ms) == 1:
        return {"n": 1, "p50_ms": ms[0], "p90_ms": ms[0], "max_ms": ms[0]}
    q = statistics.quantiles(ms, n=10, method="inclusive")
    return {"n": len(ms), "p50_ms": statistics.median(ms), "p90_ms": q[8], "max_ms": ms[-1]}


def post_json(base: str, key: str, path: str, body: dict, timeout: float = 600) -> httpx.Response:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                      timeout=timeout) as client:
        return client.post(path, json=body)


def beside(fast: FastQueries, background, settle: float = 0.3) -> tuple[list[float], dict]:
    """Fast queries one after another while ``background()`` (an HTTP call) runs in a thread,
    from ``settle`` s after it was sent until it answers. Returns (latencies, its outcome)."""
    done = threading.Event()
    outcome: dict = {}

    def run() -> None:
        t0 = time.perf_counter()
        try:
            response = background()
            outcome["status"] = response.status_code
            outcome["body"] = response.text[:2000]
        except Exception as exc:  # reported, and the run fails below
            outcome["error"] = repr(exc)
        finally:
            outcome["seconds"] = time.perf_counter() - t0
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    done.wait(settle)
    latencies = fast.until(done)
    thread.join()
    return latencies, outcome


def slow_query(base: str, key: str, kind: str, k: int):
    body = {"sql": SLOW_SQL.format(src=SLOW_SOURCE[kind]), "params": {"k": k}, "timeout_s": 600}
    return lambda: post_json(base, key, "/v1/query", body)


def calibrate(base: str, key: str, kind: str, seconds: float, rows: int) -> dict:
    """The ``k`` that makes the slow query take about ``seconds`` alone (it grows linearly)."""
    k, took = 2, 0.0
    while True:
        t0 = time.perf_counter()
        response = slow_query(base, key, kind, k)()
        took = time.perf_counter() - t0
        if response.status_code != 200:
            raise RuntimeError(f"slow query ({kind}): HTTP {response.status_code} "
                               f"{response.text[:500]}")
        if took >= seconds / 4 or k >= rows:
            break
        k = min(rows, k * 3)
    target = max(1, min(rows, round(k * seconds / took)))
    print(f"calibrated the {kind} slow query: k={k} took {took:.2f} s -> k={target}", flush=True)
    return {"k": target, "probe_k": k, "probe_s": took}


def native_runs(home: Path, args, k: int, per_customer: int) -> list[dict]:
    """The reference: the fast query beside the slow one in DuckDB directly (see the module
    docstring)."""
    import duckdb

    fast_sql = FAST_SQL.replace(":c", "?")
    slow_sql = SLOW_SQL.format(src="pg").replace(":k", "?")
    duck = duckdb.connect()
    duck.execute(f"ATTACH '{replica_path(home, 'pg')}' AS pg (READ_ONLY)")
    fast_cur, slow_cur = duck.cursor(), duck.cursor()
    customers = itertools.cycle(range(0, args.customers, 7))
    wrong = 0

    def one() -> float:
        nonlocal wrong
        t0 = time.perf_counter()
        n = fast_cur.execute(fast_sql, [next(customers)]).fetchall()[0][0]
        elapsed = time.perf_counter() - t0
        wrong += n != per_customer
        return elapsed

    for _ in range(20):
        one()
    runs = []
    try:
        for i in range(1, args.runs + 1):
            idle = percentiles([one() for _ in range(args.idle_queries)])
            done = threading.Event()
            took: dict = {}

            def slow(done: threading.Event, took: dict) -> None:
                t0 = time.perf_counter()
                try:
                    slow_cur.execute(slow_sql, [k]).fetchall()
                finally:
                    took["s"] = time.perf_counter() - t0
                    done.set()

            thread = threading.Thread(target=slow, args=(done, took), daemon=True)
            thread.start()
            done.wait(0.3)
            latencies = []
            while not done.is_set():
                latencies.append(one())
            thread.join()
            beside_ = percentiles(latencies)
            run = {"run": i, "idle": idle, "beside": beside_, "slow_s": took["s"],
                   "ratio_p50": beside_["p50_ms"] / idle["p50_ms"] if beside_["p50_ms"] else None,
                   "added_ms": (beside_["p50_ms"] - idle["p50_ms"]) if beside_["p50_ms"] else None}
            runs.append(run)
            print(f"native run {i}: idle p50 {idle['p50_ms']:.2f} ms; beside the slow query "
                  f"({took['s']:.1f} s) p50 {beside_['p50_ms'] or 0:.2f} ms, p90 "
                  f"{beside_['p90_ms'] or 0:.2f} ms ({beside_['n']} queries): "
                  f"{run['ratio_p50'] or 0:.2f}x", flush=True)
    finally:
        duck.close()
    if wrong:
        raise RuntimeError(f"native fast query: {wrong} wrong counts")
    return runs


# -- writes ----------------------------------------------------------------------------------


def credits_count(base: str, key: str) -> int:
    response = post_json(base, key, "/v1/query",
                         {"sql": "SELECT count(*) FROM local.manual.credits"})
    response.raise_for_status()
    return int(response.json()["rows"][0][0])


def writes(port: int, keys: dict, prefix: str, n: int, concurrency: int) -> dict:
    base = f"http://{HOST}:{port}"
    headers = {"Authorization": f"Bearer {keys['ingest']}", "Content-Type": "application/json"}
    requests = [http_request("POST", HOST, port, "/v1/tables/credits/rows", headers, json.dumps(
        {"values": {"id": f"{prefix}-{i}", "customer_id": i % 1000,
                    "amount": f"{i % 500}.{i % 100:02d}"}}).encode())
        for i in range(n)]
    before = credits_count(base, keys["read"])
    latencies, answers, wall, errors = bounded_load(HOST, port, requests, concurrency)
    after = credits_count(base, keys["read"])
    created = sum(1 for a in answers if a is not None and a[0] == 201)
    for i, a in enumerate(answers):
        if a is not None and a[0] != 201 and len(errors) < 10:
            errors.append(f"request {i}: HTTP {a[0]} {a[1][:300]!r}")
    out = {"concurrency": concurrency, "rows_sent": n, "created_201": created,
           "count_before": before, "count_after": after,
           "count_ok": after - before == n == created, "wall_s": wall,
           "rows_per_s": n / wall, **percentiles([x for x in latencies if x is not None]),
           "errors": errors[:10]}
    return out


# -- one run ---------------------------------------------------------------------------------


def one_run(i: int, args, base: str, port: int, keys: dict, fast: FastQueries, slow_k: dict,
            watch: CpuWatch, token: str) -> dict:
    run: dict = {"run": i}
    if args.wait_idle:
        watch.wait_idle(args.wait_idle)
    idle: dict = {}
    with watch.watch(idle):
        idle.update(percentiles(fast.many(args.idle_queries)))
    run["idle"] = idle
    print(f"run {i} (a) idle: p50 {idle['p50_ms']:.1f} ms, p90 {idle['p90_ms']:.1f} ms "
          f"({idle['n']} queries)", flush=True)

    for kind in args.slow:
        if args.wait_idle:
            watch.wait_idle(args.wait_idle)
        phase: dict = {}
        with watch.watch(phase):
            latencies, outcome = beside(fast, slow_query(base, keys["read"], kind,
                                                         slow_k[kind]["k"]))
        phase.update(percentiles(latencies))
        phase["slow_s"] = outcome["seconds"]
        phase["slow_status"] = outcome.get("status")
        phase["slow_error"] = outcome.get("error")
        if outcome.get("status") != 200:
            phase["slow_body"] = outcome.get("body")
        phase["ratio_p50"] = (phase["p50_ms"] / idle["p50_ms"]) if phase["p50_ms"] else None
        run[f"slow_{kind}"] = phase
        print(f"run {i} (b) beside the {kind} slow query ({phase['slow_s']:.1f} s, HTTP "
              f"{phase['slow_status']}): p50 {phase['p50_ms'] or 0:.1f} ms, p90 "
              f"{phase['p90_ms'] or 0:.1f} ms, max {phase['max_ms'] or 0:.0f} ms "
              f"({phase['n']} queries); {phase['ratio_p50'] or 0:.2f}x idle; cpu "
              f"{phase['cpu_cores']['ours']:.2f} cores (server, PostgreSQL, client)", flush=True)

    if args.wait_idle:
        watch.wait_idle(args.wait_idle)
    phase = {}
    with watch.watch(phase):
        latencies, outcome = beside(fast, lambda: post_json(base, keys["admin"], "/v1/sync",
                                                            {"sources": ["pg"]}))
    phase.update(percentiles(latencies))
    phase["sync_s"] = outcome["seconds"]
    phase["sync_status"] = outcome.get("status")
    phase["sync_error"] = outcome.get("error")
    try:
        phase["sync_rows"] = sum(r["rows"] for r in json.loads(outcome["body"])["reports"])
    except (KeyError, TypeError, ValueError):
        phase["sync_rows"] = None
        phase["sync_body"] = outcome.get("body")
    phase["ratio_p50"] = (phase["p50_ms"] / idle["p50_ms"]) if phase["p50_ms"] else None
    run["sync"] = phase
    print(f"run {i} (c) beside a sync ({phase['sync_s']:.1f} s, {phase['sync_rows'] or 0:,} rows, "
          f"HTTP {phase['sync_status']}): p50 {phase['p50_ms'] or 0:.1f} ms, p90 "
          f"{phase['p90_ms'] or 0:.1f} ms, max {phase['max_ms'] or 0:.0f} ms ({phase['n']} "
          f"queries); {phase['ratio_p50'] or 0:.2f}x idle; cpu "
          f"{phase['cpu_cores']['ours']:.2f} cores (server, PostgreSQL, client)", flush=True)

    run["writes"] = {}
    for concurrency in (1, args.writers):
        if args.wait_idle:
            watch.wait_idle(args.wait_idle)
        w = writes(port, keys, f"{token}-r{i}-c{concurrency}", args.writes, concurrency)
        run["writes"][f"c{concurrency}"] = w
        print(f"run {i} (d) {w['rows_sent']} row inserts over {concurrency} connection(s): "
              f"{w['rows_per_s']:,.0f} rows/s, p50 {w['p50_ms']:.1f} ms, 201s {w['created_201']}"
              f", count +{w['count_after'] - w['count_before']} "
              f"({'ok' if w['count_ok'] else 'WRONG'})", flush=True)
    run["writes"]["speedup"] = (run["writes"][f"c{args.writers}"]["rows_per_s"]
                                / run["writes"]["c1"]["rows_per_s"])
    return run


# -- report ----------------------------------------------------------------------------------


def summarize(runs: list[dict], args, native: list[dict] | None) -> dict:
    s: dict = {"idle": {"p50_ms": med([r["idle"] for r in runs], "p50_ms"),
                        "p90_ms": med([r["idle"] for r in runs], "p90_ms")}}
    for name in [f"slow_{k}" for k in args.slow] + ["sync"]:
        phases = [r[name] for r in runs]
        s[name] = {"p50_ms": med(phases, "p50_ms"), "p90_ms": med(phases, "p90_ms"),
                   "ratio_p50": med(phases, "ratio_p50"),
                   "queries": sum(p["n"] for p in phases),
                   "seconds": med(phases, "slow_s" if name != "sync" else "sync_s")}
    for c in ("c1", f"c{args.writers}"):
        s[f"writes_{c}"] = {"rows_per_s": med([r["writes"][c] for r in runs], "rows_per_s"),
                            "p50_ms": med([r["writes"][c] for r in runs], "p50_ms"),
                            "counts_ok": all(r["writes"][c]["count_ok"] for r in runs)}
    s["writes_speedup"] = statistics.median(r["writes"]["speedup"] for r in runs)
    for name in [f"slow_{k}" for k in args.slow] + ["sync"]:
        s[name]["added_ms"] = statistics.median(
            r[name]["p50_ms"] - r["idle"]["p50_ms"] for r in runs if r[name]["p50_ms"])
    if native:
        s["native"] = {"idle_p50_ms": med([r["idle"] for r in native], "p50_ms"),
                       "beside_p50_ms": med([r["beside"] for r in native], "p50_ms"),
                       "beside_p90_ms": med([r["beside"] for r in native], "p90_ms"),
                       "ratio_p50": med(native, "ratio_p50"),
                       "added_ms": med(native, "added_ms"),
                       "slow_s": med(native, "slow_s")}
    return s


def print_report(report: dict) -> None:
    p, s = report["params"], report["summary"]
    print(f"\n{p['runs']} runs (medians); fast query on the replica of {p['rows']:,} rows, "
          f"{p['customers']:,} customers")
    print(f"  (a) idle: p50 {s['idle']['p50_ms']:.2f} ms, p90 {s['idle']['p90_ms']:.2f} ms")
    for kind in p["slow"]:
        x = s[f"slow_{kind}"]
        print(f"  (b) beside the {kind} slow query ({x['seconds']:.1f} s, k={p['slow_k'][kind]}):"
              f" p50 {x['p50_ms']:.2f} ms, p90 {x['p90_ms']:.2f} ms: {x['ratio_p50']:.2f}x idle "
              f"(+{x['added_ms']:.2f} ms)")
    if "native" in s:
        x = s["native"]
        print(f"  reference, DuckDB directly in one process: idle p50 {x['idle_p50_ms']:.2f} ms, "
              f"beside the slow query ({x['slow_s']:.1f} s) p50 {x['beside_p50_ms']:.2f} ms, "
              f"p90 {x['beside_p90_ms']:.2f} ms: {x['ratio_p50']:.2f}x (+{x['added_ms']:.2f} ms)")
    x = s["sync"]
    print(f"  (c) beside a sync ({x['seconds']:.1f} s): p50 {x['p50_ms']:.2f} ms, p90 "
          f"{x['p90_ms']:.2f} ms: {x['ratio_p50']:.2f}x idle (+{x['added_ms']:.2f} ms)")
    w1, wn = s["writes_c1"], s[f"writes_c{p['writers']}"]
    print(f"  (d) row inserts: {w1['rows_per_s']:,.0f} rows/s over 1 connection, "
          f"{wn['rows_per_s']:,.0f} over {p['writers']} ({s['writes_speedup']:.2f}x); every row "
          f"landed: {w1['counts_ok'] and wn['counts_ok']}")
    print(f"  wrong fast answers: {report['wrong_answers']}")
    for name, ok in report["target_met"].items():
        print(f"  target {name}: {'met' if ok else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.concurrency",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of events")
    ap.add_argument("--customers", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slow", default="duckdb,postgres",
                    help="slow query kinds, comma-separated: duckdb, postgres")
    ap.add_argument("--slow-seconds", type=float, default=10.0,
                    help="how long the slow query takes alone (calibrated)")
    ap.add_argument("--idle-queries", type=int, default=200)
    ap.add_argument("--writers", type=int, default=8, help="connections inserting rows")
    ap.add_argument("--writes", type=int, default=400, help="row inserts per write phase")
    ap.add_argument("--wait-idle", type=float, default=10, metavar="S",
                    help="before each phase wait up to S s for the machine to go quiet; 0 skips")
    ap.add_argument("--no-native", action="store_true",
                    help="skip the reference run in DuckDB directly")
    ap.add_argument("--output", default=str(RESULTS / "concurrency.json"))
    args = ap.parse_args()
    args.slow = [k.strip() for k in args.slow.split(",") if k.strip()]
    if unknown := set(args.slow) - set(SLOW_SOURCE):
        ap.error(f"unknown slow query kind(s): {', '.join(sorted(unknown))}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    token = uuid.uuid4().hex[:6]

    report: dict = {
        "benchmark": "concurrency",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "-m", "benchmarks.concurrency", *sys.argv[1:]]),
        "machine": machine(),
        "params": {"rows": args.rows, "customers": args.customers, "runs": args.runs,
                   "slow": args.slow, "slow_seconds": args.slow_seconds,
                   "idle_queries": args.idle_queries, "writers": args.writers,
                   "writes": args.writes, "wait_idle_s": args.wait_idle,
                   "fast_sql": FAST_SQL, "slow_sql": SLOW_SQL, "log_level": LOG_LEVEL},
        "target_ratio": TARGET_RATIO,
    }
    m = report["machine"]
    print(f"machine: {m['nproc']} cores, {m['cpu']}; load average {m['loadavg_start']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="meterql-bench-concurrency-"))
    try:
        with PostgresCluster() as pg:
            report["versions"] = versions(pg)
            print(f"loading {args.rows:,} events into PostgreSQL ...", flush=True)
            report["load_s"] = load_postgres(pg, args.rows, args.customers)
            home = work / "home"
            setup = prepare_workspace(home, pg)
            keys = setup.pop("keys")
            report["setup"] = {"load_s": report["load_s"], **setup}
            print(f"loaded in {report['load_s']:.1f} s; first sync {setup['first_sync_s']:.1f} s "
                  f"({setup['sync_rows']:,} rows)", flush=True)
            port = free_port()
            base = f"http://{HOST}:{port}"
            log_path = work / "server.log"
            per_customer = args.rows // args.customers
            with serve(home, port, log_path, LOG_LEVEL) as proc:
                report["server"] = {
                    "command": " ".join([*meterql_cmd(),
                                         *serve_args(Path("<tmp>"), port, LOG_LEVEL)]),
                    "ready_s": wait_healthy(proc, base, log_path)}
                print(f"server pid {proc.pid} on {base}", flush=True)
                watch = Watch(postmaster_pid(pg), proc.pid)
                fast = FastQueries(base, keys["read"], args.customers, per_customer)
                fast.many(20)  # warm-up: plan cache, connections
                slow_k = {kind: calibrate(base, keys["read"], kind, args.slow_seconds,
                                          args.rows) for kind in args.slow}
                report["params"]["slow_k"] = {kind: v["k"] for kind, v in slow_k.items()}
                report["calibration"] = slow_k
                runs = [one_run(i, args, base, port, keys, fast, slow_k, watch, token)
                        for i in range(1, args.runs + 1)]
                fast.close()
                report["server"]["alive_after_load"] = proc.poll() is None
            report["server"]["log_tail"] = log_path.read_text(errors="replace")[-2000:]
            if "duckdb" in args.slow and not args.no_native:
                report["native"] = native_runs(home, args, slow_k["duckdb"]["k"], per_customer)
        report["runs"] = runs
        report["wrong_answers"] = len(fast.wrong)
        report["wrong_examples"] = fast.wrong[:10]
        s = report["summary"] = summarize(runs, args, report.get("native"))
        report["target_met"] = {
            **{f"slow_{k}_p50_within_2x": (s[f"slow_{k}"]["ratio_p50"] or 0) <= TARGET_RATIO
               and s[f"slow_{k}"]["queries"] > 0 for k in args.slow},
            "sync_p50_within_2x": (s["sync"]["ratio_p50"] or 0) <= TARGET_RATIO
                                  and s["sync"]["queries"] > 0,
            "all_rows_landed": all(s[f"writes_c{c}"]["counts_ok"] for c in (1, args.writers)),
            "no_wrong_answers": not fast.wrong,
            "slow_queries_and_syncs_ok": all(
                r[f"slow_{k}"]["slow_status"] == 200 for r in runs for k in args.slow)
                and all(r["sync"]["sync_status"] == 200 for r in runs),
        }
        finish_report(report, args.output, print_report)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
