"""Benchmark: event ingestion over HTTP (``POST /v1/events/{stream}``), batches and single events.

Run from the repo root (about 1-3 minutes with the defaults on 2 cores):

    .venv/bin/python -m benchmarks.ingest [--events 200000] [--batch-size 1000]
                                          [--batch-concurrency 4] [--single 5000]
                                          [--single-concurrency 16] [--runs 3]
                                          [--profile-phase auto|batch|single] [--no-profile]

Setup: an empty workspace in a temp folder with an ``ingest`` key; the workspace is closed and
``meterql serve --no-sync --log-level warning`` (the real CLI) starts as a subprocess on a free
loopback port. After /v1/health answers:

(a) batches: ``--events`` events per run as NDJSON bodies of ``--batch-size`` events
    (``Content-Type: application/x-ndjson``) into stream ``bench_batch``, sent over
    ``--batch-concurrency`` connections.
(b) single events: ``--single`` requests of one JSON object each into stream ``bench_single``,
    over ``--single-concurrency`` connections.
(c) client ceiling: ``--single`` requests of ``GET /v1/health`` over ``--single-concurrency``
    connections, in requests/s: what the client and the HTTP stack allow with no work behind.

The client (``bounded_load`` in ``http_load.py``) is a lean asyncio loop (uvloop) in this process:
one keep-alive HTTP/1.1 connection per unit of concurrency, each with one request in flight at
a time (no pipelining), requests encoded up front, responses parsed by httptools; the
connections are opened (and each sends one ``GET /v1/health``) before the timed window.

Each event: ``id`` (unique per run), ``timestamp`` (ISO 8601, UTC, within the last minute),
``customer_id`` (1,000 customers), ``meter`` (string) and ``qty`` (decimal number). Request bodies
are built and encoded before the timed window (the client's JSON encoding is not measured);
responses are kept and checked after it (nor is the client's JSON decoding). Phases (a) and (b)
have a warm-up (which also creates the stream and its columns), then each phase has ``--runs``
timed runs; the figures are medians over the runs. A run reports events/s (accepted events /
wall time), request latency p50/p99 (client side, request sent to whole response read) and CPU
cores used (this process + server).

Checks after every run: every response was HTTP 200 with all of its events accepted (no
duplicate, no rejected), and the stream's ``count(*)`` and ``count(DISTINCT id)`` (through
``POST /v1/query``) equal the number of events accepted so far (no loss, no doubles).

Targets (from the issue, on this 2-core machine): (a) at least 100,000 events/s, (b) at least
2,000 events/s. If one is missed (and unless ``--no-profile``), the server is started again,
on a fresh workspace, under cProfile (every thread: the event loop and the thread pool that
runs ``EventStreams.ingest``; cProfile alone sees only the main thread) for one warm-up and one
run of the first missed phase (or ``--profile-phase``); the merged profile's top functions by
cumulative time go to ``benchmarks/results/ingest.profile.txt``. Cumulative times are summed
over threads, so the event loop's and the workers' shares of a function add up.

Writes ``benchmarks/results/ingest.json`` (machine, versions, every run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import pstats
import shutil
import signal
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httptools
import httpx

import meterql
from benchmarks.common import RESULTS, ROOT, CpuWatch, dist_version, finish_report, git, machine
from benchmarks.http_load import (
    bounded_load,
    free_port,
    http_request,
    latency_summary,
    med,
    meterql_cmd,
    serve_args,
    uvloop,
    wait_healthy,
)
from benchmarks.http_load import serve as http_serve
from meterql.access.keys import create_key

CUSTOMERS = 1_000
TARGETS = {"batch_events_per_s": 100_000.0, "single_events_per_s": 2_000.0}
BATCH_STREAM = "bench_batch"
SINGLE_STREAM = "bench_single"
LOG_LEVEL = "warning"
HOST = "127.0.0.1"

# The server under cProfile, every thread profiled; stats merged and dumped at exit.
PROFILED_SERVER = """
import cProfile, pstats, sys, threading
out = sys.argv[1]
profiles = []
lock = threading.Lock()
def _start(frame, event, arg):
    p = cProfile.Profile()
    with lock:
        profiles.append(p)
    p.enable()  # replaces this hook for this thread
threading.setprofile(_start)
main_prof = cProfile.Profile()
sys.argv = ['meterql'] + sys.argv[2:]
from meterql.cli import main
main_prof.enable()
try:
    main(standalone_mode=False)
finally:
    main_prof.disable()
    threading.setprofile(None)
    stats = pstats.Stats(main_prof)
    with lock:
        for p in profiles:
            try:
                stats.add(p)
            except Exception as exc:
                print('profile of a thread skipped:', exc, file=sys.stderr)
    stats.dump_stats(out)
"""


# -- server ----------------------------------------------------------------------------------


@contextlib.contextmanager
def serve(home: Path, port: int, log_path: Path, profile_to: Path | None = None):
    """``meterql serve`` as a subprocess (under cProfile if ``profile_to``); always stopped."""
    command = None if profile_to is None else [sys.executable, "-c", PROFILED_SERVER,
                                               str(profile_to)]
    with http_serve(home, port, log_path, LOG_LEVEL, command=command,
                    stop_timeout=60 if profile_to else 15) as proc:
        yield proc


# -- request bodies --------------------------------------------------------------------------


def event_line(prefix: str, i: int, ts: str) -> str:
    # qty always has a fraction, so the first event makes the column DECIMAL.
    return (f'{{"id":"{prefix}-{i}","timestamp":"{ts}","customer_id":"c{i % CUSTOMERS}",'
            f'"meter":"api_calls","qty":{i % 1000}.{i % 97:02d}5}}')


def batch_bodies(prefix: str, events: int, size: int) -> list[tuple[bytes, int]]:
    """NDJSON bodies of ``size`` events (the last may be shorter): (body, events in it)."""
    now = datetime.now(UTC)
    bodies = []
    for start in range(0, events, size):
        n = min(size, events - start)
        lines = [
            event_line(prefix, i, (now - timedelta(milliseconds=i % 60_000)).isoformat())
            for i in range(start, start + n)
        ]
        bodies.append((("\n".join(lines) + "\n").encode(), n))
    return bodies


def single_bodies(prefix: str, requests: int) -> list[tuple[bytes, int]]:
    now = datetime.now(UTC)
    return [
        (event_line(prefix, i, (now - timedelta(milliseconds=i % 60_000)).isoformat()).encode(), 1)
        for i in range(requests)
    ]


# -- load ------------------------------------------------------------------------------------


def load_phase(port: int, key: str, stream: str, bodies: list[tuple[bytes, int]],
               content_type: str, concurrency: int, watch: CpuWatch | None) -> dict:
    """Send all ``bodies`` over ``concurrency`` connections; check the answers after the timing."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
    requests = [http_request("POST", HOST, port, f"/v1/events/{stream}", headers, body)
                for body, _ in bodies]
    out: dict = {}
    latencies, answers, wall, errors = bounded_load(
        HOST, port, requests, concurrency, watch.watch(out) if watch else None)

    # Checks, outside the timed window.
    sent = sum(n for _, n in bodies)
    accepted = not_ok = 0
    for i, answer in enumerate(answers):
        if answer is None:  # its error is in ``errors``
            not_ok += 1
            continue
        status, body = answer
        try:
            counts = json.loads(body)
        except ValueError:
            counts = {}
        good = (status == 200 and counts.get("accepted") == bodies[i][1]
                and counts.get("duplicate") == 0 and counts.get("rejected") == 0)
        accepted += counts.get("accepted", 0) if status in (200, 207) else 0
        if not good:
            not_ok += 1
            if len(errors) < 10:
                errors.append(f"request {i}: HTTP {status} {body[:300]!r}")
    out.update(latency_summary([x for x in latencies if x is not None]))
    out.update({
        "requests": len(bodies),
        "events_sent": sent,
        "events_accepted": accepted,
        "concurrency": concurrency,
        "wall_s": wall,
        "events_per_s": accepted / wall,
        "requests_per_s": len(bodies) / wall,
        "requests_not_ok": not_ok,
        "errors": errors[:10],
    })
    return out


def stream_counts(base: str, key: str, stream: str) -> tuple[int, int]:
    """(count(*), count(DISTINCT id)) of the stream, through the API."""
    response = httpx.post(
        f"{base}/v1/query",
        headers={"Authorization": f"Bearer {key}"},
        json={"sql": f"SELECT count(*), count(DISTINCT id) FROM local.events.{stream}"},
        timeout=120,
    )
    response.raise_for_status()
    n, distinct = response.json()["rows"][0]
    return int(n), int(distinct)


def run_phase(name: str, port: int, key: str, stream: str, make_bodies, content_type: str,
              concurrency: int, runs: int, watch: CpuWatch | None, wait_idle: float,
              warmup_bodies: list[tuple[bytes, int]], tag: str) -> dict:
    """Warm-up, then ``runs`` timed runs, each checked against the stream's count."""
    base = f"http://{HOST}:{port}"
    total = 0  # events accepted into the stream so far

    def check(run: dict) -> None:
        nonlocal total
        total += run["events_accepted"]
        n, distinct = stream_counts(base, key, stream)
        run["stream_count"], run["stream_distinct_ids"], run["expected_count"] = n, distinct, total
        run["count_ok"] = n == distinct == total
        run["all_accepted"] = (run["requests_not_ok"] == 0
                               and run["events_accepted"] == run["events_sent"])

    warm = load_phase(port, key, stream, warmup_bodies, content_type, concurrency, None)
    check(warm)
    if not (warm["count_ok"] and warm["all_accepted"]):
        raise RuntimeError(f"{name} warm-up failed: {warm['errors']} counts "
                           f"{warm['stream_count']}/{warm['stream_distinct_ids']}/{total}")
    out = {"warmup": warm, "runs": []}
    for i in range(1, runs + 1):
        bodies = make_bodies(f"{tag}{i}")
        if watch and wait_idle:
            watch.wait_idle(wait_idle)
        run = load_phase(port, key, stream, bodies, content_type, concurrency, watch)
        check(run)
        out["runs"].append(run)
        cpu = run.get("cpu_cores", {}).get("ours")
        print(
            f"{name} run {i}: {run['events_per_s']:,.0f} events/s, "
            f"{run['requests_per_s']:,.0f} req/s, p50 {run['p50_ms']:.1f} ms, "
            f"p99 {run['p99_ms']:.1f} ms"
            + (f", cpu ours {cpu:.2f} cores" if cpu is not None else "")
            + f", not ok {run['requests_not_ok']}, count {run['stream_count']:,} "
            f"(expected {total:,}, distinct {run['stream_distinct_ids']:,})",
            flush=True,
        )
    return out


def client_ceiling(port: int, requests: int, concurrency: int, runs: int,
                   watch: CpuWatch | None, wait_idle: float) -> dict:
    """What the client and the HTTP stack allow: the same client sending ``GET /v1/health``
    (no auth, no work behind it) ``requests`` times over ``concurrency`` connections."""
    raw = [http_request("GET", HOST, port, "/v1/health")] * requests
    out: dict = {"runs": []}
    for i in range(1, runs + 1):
        if watch and wait_idle:
            watch.wait_idle(wait_idle)
        run: dict = {}
        latencies, answers, wall, errors = bounded_load(
            HOST, port, raw, concurrency, watch.watch(run) if watch else None)
        run.update(latency_summary([x for x in latencies if x is not None]))
        run.update({
            "requests": requests,
            "concurrency": concurrency,
            "wall_s": wall,
            "requests_per_s": requests / wall,
            "requests_not_ok": sum(a is None or a[0] != 200 for a in answers),
            "errors": errors[:10],
        })
        out["runs"].append(run)
        cpu = run.get("cpu_cores", {}).get("ours")
        print(f"client ceiling run {i}: {run['requests_per_s']:,.0f} req/s (GET /v1/health), "
              f"p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms"
              + (f", cpu ours {cpu:.2f} cores" if cpu is not None else "")
              + f", not ok {run['requests_not_ok']}", flush=True)
    return out


# -- profile ---------------------------------------------------------------------------------


def profile_text(prof_file: Path, phase: str, top: int = 15) -> tuple[str, list[dict]]:
    buf = io.StringIO()
    stats = pstats.Stats(str(prof_file), stream=buf)
    stats.sort_stats("cumulative")
    rows = []
    for (path, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        if "/meterql/" in path and "/.venv/" not in path:
            rel = path[path.rindex("/meterql/") + 1 :]
            rows.append({"function": f"{rel}:{line}({func})", "calls": nc,
                         "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3)})
    rows.sort(key=lambda r: -r["cumtime_s"])
    rows = rows[:top]
    head = [
        f"meterql ingest benchmark: server profile of phase {phase} (cProfile, every thread,",
        "merged; cumulative times summed over threads; profiling overhead inflates them)",
        "",
        f"Top {top} functions from meterql/ by cumulative time:",
        f"{'cumtime s':>10} {'tottime s':>10} {'calls':>9}  function",
    ]
    head += [f"{r['cumtime_s']:>10.3f} {r['tottime_s']:>10.3f} {r['calls']:>9}  {r['function']}"
             for r in rows]
    head += ["", "(ingest's cumulative time includes the callers waiting for the group commit's",
             "leader; cli.py serve is the main thread's whole uvicorn run.)", "",
             "All functions, top 40 by cumulative time:", ""]
    stats.print_stats(40)
    print("All functions, top 25 by own (total) time:", file=buf)
    stats.sort_stats("tottime").print_stats(25)
    return "\n".join(head) + "\n" + buf.getvalue(), rows


def server_home(home: Path, key_name: str) -> tuple[Path, str, int, str]:
    """A workspace with an ingest key, and a free port: (home, key, port, base URL)."""
    with meterql.connect(home) as ws:
        _, key = create_key(ws.keys, "ingest", key_name)
    port = free_port()
    return home, key, port, f"http://{HOST}:{port}"


def profile_phase(phase: str, args, work: Path, make_batch, make_single) -> dict:
    home, key, port, base = server_home(work / "home_profile", "ingest bench (profile)")
    prof_file = work / "server.prof"
    log_path = work / "server_profile.log"
    with serve(home, port, log_path, profile_to=prof_file) as proc:
        wait_healthy(proc, base, log_path, timeout=120)
        if phase == "batch":
            result = run_phase("profiled batch", port, key, BATCH_STREAM, make_batch,
                               "application/x-ndjson", args.batch_concurrency, 1, None, 0,
                               batch_bodies("pw", args.warmup_events, args.batch_size), "p")
        else:
            result = run_phase("profiled single", port, key, SINGLE_STREAM, make_single,
                               "application/json", args.single_concurrency, 1, None, 0,
                               single_bodies("pw", args.warmup_single), "p")
    if not prof_file.exists():
        raise RuntimeError("the profiled server wrote no profile:\n"
                           + log_path.read_text(errors="replace")[-3000:])
    text, rows = profile_text(prof_file, phase)
    out_path = Path(args.output).with_suffix(".profile.txt")
    out_path.write_text(text)
    print(f"wrote {out_path}", flush=True)
    run = result["runs"][0]
    return {"phase": phase, "file": str(out_path.relative_to(ROOT)) if out_path.is_relative_to(
        ROOT) else str(out_path), "events_per_s_under_profiler": run["events_per_s"],
        "count_ok": run["count_ok"], "all_accepted": run["all_accepted"], "top_meterql": rows}


# -- report ----------------------------------------------------------------------------------


def bench_versions() -> dict:
    import duckdb
    import fastapi
    import pyarrow as pa
    import uvicorn

    return {
        "python": sys.version.split()[0],
        "meterql": dist_version("meterql"),
        "duckdb": duckdb.__version__,
        "pyarrow": pa.__version__,
        "fastapi": fastapi.__version__,
        "starlette": dist_version("starlette"),
        "uvicorn": uvicorn.__version__,
        "httpx": httpx.__version__,
        "httptools": httptools.__version__,
        "uvloop": uvloop.__version__ if uvloop else None,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "meterql_tree_dirty": bool(git("status", "--porcelain", "--", "meterql")),
    }


def summarize(runs: list[dict]) -> dict:
    return {
        "events_per_s": med(runs, "events_per_s"),
        "requests_per_s": med(runs, "requests_per_s"),
        "p50_ms": med(runs, "p50_ms"),
        "p99_ms": med(runs, "p99_ms"),
        "cpu_cores_ours": med([r.get("cpu_cores", {}) for r in runs], "ours"),
        "requests_not_ok": sum(r["requests_not_ok"] for r in runs),
        "counts_ok": all(r["count_ok"] for r in runs),
        "all_accepted": all(r["all_accepted"] for r in runs),
    }


def print_report(report: dict) -> None:
    p, s = report["params"], report["summary"]
    print(f"\n{p['runs']} runs (medians), server log level {LOG_LEVEL}")
    for name, label in (("batch", f"(a) NDJSON x{p['batch_size']}, C={p['batch_concurrency']}, "
                                  f"{p['events']:,} events/run"),
                        ("single", f"(b) single events, C={p['single_concurrency']}, "
                                   f"{p['single']:,} requests/run")):
        x = s[name]
        print(f"  {label}: {x['events_per_s']:,.0f} events/s ({x['requests_per_s']:,.0f} req/s), "
              f"request p50 {x['p50_ms']:.1f} ms p99 {x['p99_ms']:.1f} ms, "
              f"cpu ours {x['cpu_cores_ours'] or 0:.2f} cores; not ok {x['requests_not_ok']}, "
              f"counts ok {x['counts_ok']}, all accepted {x['all_accepted']}")
    c = s["client_ceiling"]
    print(f"  client ceiling, GET /v1/health, C={p['single_concurrency']}, {p['single']:,} "
          f"requests/run: {c['requests_per_s']:,.0f} req/s, request p50 {c['p50_ms']:.1f} ms "
          f"p99 {c['p99_ms']:.1f} ms, cpu ours {c['cpu_cores_ours'] or 0:.2f} cores; "
          f"not ok {c['requests_not_ok']}")
    for name, ok in report["target_met"].items():
        bound = f" >= {report['targets'][name]:,.0f}" if name in report["targets"] else ""
        print(f"  target {name}{bound}: {'met' if ok else 'MISSED'}")
    prof = report.get("profile")
    if prof:
        print(f"  profile of phase {prof['phase']} ({prof['file']}), top meterql/ cumulative:")
        for r in prof["top_meterql"]:
            print(f"    {r['cumtime_s']:8.2f} s  {r['function']}")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ingest",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="events per batch run")
    ap.add_argument("--batch-size", type=int, default=1_000, help="events per NDJSON request")
    ap.add_argument("--batch-concurrency", type=int, default=4)
    ap.add_argument("--single", type=int, default=5_000, help="single-event requests per run")
    ap.add_argument("--single-concurrency", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per phase (after a warm-up)")
    ap.add_argument("--warmup-events", type=int, default=20_000)
    ap.add_argument("--warmup-single", type=int, default=500)
    ap.add_argument("--wait-idle", type=float, default=10, metavar="S",
                    help="before each run wait up to S s for the machine to go quiet; 0 skips")
    ap.add_argument("--no-profile", action="store_true", help="no profile even if a target is "
                    "missed")
    ap.add_argument("--profile-phase", default="auto", choices=["auto", "batch", "single"],
                    help="the phase to profile if its target is missed (auto: the first missed)")
    ap.add_argument("--output", default=str(RESULTS / "ingest.json"))
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    token = uuid.uuid4().hex[:6]  # ids unique per invocation and run

    def make_batch(tag: str) -> list[tuple[bytes, int]]:
        return batch_bodies(f"{token}{tag}", args.events, args.batch_size)

    def make_single(tag: str) -> list[tuple[bytes, int]]:
        return single_bodies(f"{token}{tag}", args.single)

    report: dict = {
        "benchmark": "ingest",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "-m", "benchmarks.ingest", *sys.argv[1:]]),
        "machine": machine(),
        "versions": bench_versions(),
        "params": {
            "events": args.events,
            "batch_size": args.batch_size,
            "batch_concurrency": args.batch_concurrency,
            "single": args.single,
            "single_concurrency": args.single_concurrency,
            "runs": args.runs,
            "warmup_events": args.warmup_events,
            "warmup_single": args.warmup_single,
            "customers": CUSTOMERS,
            "log_level": LOG_LEVEL,
            "wait_idle_s": args.wait_idle,
            "event_example": json.loads(event_line("example", 123, "2026-01-01T00:00:00+00:00")),
        },
        "targets": TARGETS,
        "results": {},
    }
    m = report["machine"]
    print(f"machine: {m['nproc']} cores, {m['cpu']}; load average {m['loadavg_start']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="meterql-bench-ingest-"))
    try:
        home, key, port, base = server_home(work / "home", "ingest bench")
        log_path = work / "server.log"
        results = report["results"]
        with serve(home, port, log_path) as proc:
            report["server"] = {
                "command": " ".join([*meterql_cmd(), *serve_args(Path("<tmp>"), port, LOG_LEVEL)]),
                "ready_s": wait_healthy(proc, base, log_path),
            }
            print(f"server pid {proc.pid} on {base}, ready in "
                  f"{report['server']['ready_s']:.1f} s", flush=True)
            watch = CpuWatch(proc.pid)
            results["batch"] = run_phase(
                "batch", port, key, BATCH_STREAM, make_batch, "application/x-ndjson",
                args.batch_concurrency, args.runs, watch, args.wait_idle,
                batch_bodies(f"{token}w", args.warmup_events, args.batch_size), "r")
            results["single"] = run_phase(
                "single", port, key, SINGLE_STREAM, make_single, "application/json",
                args.single_concurrency, args.runs, watch, args.wait_idle,
                single_bodies(f"{token}w", args.warmup_single), "r")
            results["client_ceiling"] = client_ceiling(
                port, args.single, args.single_concurrency, args.runs, watch, args.wait_idle)
            report["server"]["alive_after_load"] = proc.poll() is None
        report["server"]["exit_code"] = proc.returncode
        report["server"]["log_tail"] = log_path.read_text(errors="replace")[-2000:]

        s = {name: summarize(results[name]["runs"]) for name in ("batch", "single")}
        ceiling = results["client_ceiling"]["runs"]
        report["summary"] = {**s, "client_ceiling": {
            "requests_per_s": med(ceiling, "requests_per_s"),
            "p50_ms": med(ceiling, "p50_ms"),
            "p99_ms": med(ceiling, "p99_ms"),
            "cpu_cores_ours": med([r.get("cpu_cores", {}) for r in ceiling], "ours"),
            "requests_not_ok": sum(r["requests_not_ok"] for r in ceiling),
        }}
        report["target_met"] = {
            "batch_events_per_s": s["batch"]["events_per_s"] >= TARGETS["batch_events_per_s"],
            "single_events_per_s": s["single"]["events_per_s"] >= TARGETS["single_events_per_s"],
            "no_loss_no_doubles": all(s[n]["counts_ok"] for n in s),
            "all_2xx_all_accepted": all(s[n]["all_accepted"] for n in s),
        }
        missed = [n for n, key_ in (("batch", "batch_events_per_s"),
                                    ("single", "single_events_per_s"))
                  if not report["target_met"][key_]]
        phase = missed[0] if args.profile_phase == "auto" and missed else (
            args.profile_phase if args.profile_phase in missed else None)
        if phase and not args.no_profile:
            print(f"profiling the server during phase {phase} ...", flush=True)
            report["profile"] = profile_phase(phase, args, work, make_batch, make_single)
        finish_report(report, args.output, print_report)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
