"""The navigator's pages against their 100 ms target: the demo workspace served by a real
``meterql serve``, signed in with an admin key, every page of the menu, a few pages below it
and the sign-in page requested in turn, one request at a time; medians and p90 per page over
several runs, beside ``GET /v1/health`` measured in the same runs (the floor of one request).

    .venv/bin/python -m benchmarks.navigator --runs 5 --requests 20
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx

import meterql
from benchmarks.common import finish_report, git, machine
from benchmarks.http_load import free_port, serve, wait_healthy
from meterql.access.keys import create_key
from meterql.demo import prepare_demo

TARGET_MS = 100.0
#: Pages one step below the menu on the demo workspace: a table's preview, an aggregate's
#: version, a manual table's grid and audit.
DEEPER = ["/tables/usage.main.events", "/aggregates/api_calls", "/manual/credits"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20, help="per page and run")
    parser.add_argument("--output", default="benchmarks/results/navigator.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meterql-bench-navigator-") as tmp:
        home = Path(tmp) / "home"
        with meterql.connect(home) as ws:
            prepare_demo(ws)
            _, key = create_key(ws.keys, "admin", "navigator benchmark")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with serve(home, port, Path(tmp) / "server.log") as proc:
            wait_healthy(proc, base, Path(tmp) / "server.log")
            report = measure(base, key, args.runs, args.requests)
    report["command"] = (f".venv/bin/python -m benchmarks.navigator --runs {args.runs} "
                         f"--requests {args.requests}")
    finish_report(report, args.output, print_report)


def measure(base: str, key: str, runs: int, requests: int) -> dict:
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        signed = client.post("/signin", data={"key": key, "next": "/"})
        assert signed.status_code == 303, signed.text
        home = client.get("/")
        assert home.status_code == 200, home.status_code
        pages = ["/", *dict.fromkeys(re.findall(r'<li><a href="(/[^"]*)"', home.text)), *DEEPER]
        anonymous = httpx.Client(base_url=base, timeout=30)
        times: dict[str, list[float]] = {p: [] for p in ["/v1/health", "/signin", *pages]}
        for _ in range(runs):
            for path in times:
                who = anonymous if path in ("/v1/health", "/signin") else client
                for _ in range(requests):
                    t0 = time.perf_counter()
                    answer = who.get(path)
                    times[path].append(time.perf_counter() - t0)
                    assert answer.status_code == 200, (path, answer.status_code)
        anonymous.close()
    return {
        "benchmark": "navigator", "machine": machine(), "commit": git("rev-parse", "--short",
                                                                      "HEAD"),
        "target_ms": TARGET_MS,
        "pages": {path: _summary(values) for path, values in times.items()},
    }


def _summary(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {"n": len(ms), "p50_ms": statistics.median(ms),
            "p90_ms": ms[int(0.9 * (len(ms) - 1))], "max_ms": ms[-1]}


def print_report(report: dict) -> None:
    print(f"navigator pages at {report['commit']} (medians of all requests; target "
          f"{report['target_ms']:.0f} ms)")
    for path, s in report["pages"].items():
        verdict = "" if path == "/v1/health" else (
            "met" if s["p50_ms"] < report["target_ms"] else "MISSED")
        print(f"  {path:<28} p50 {s['p50_ms']:7.1f} ms  p90 {s['p90_ms']:7.1f} ms  {verdict}")


if __name__ == "__main__":
    main()
