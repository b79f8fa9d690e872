"""What the HTTP benchmarks (api_load.py, ingest.py) share: a real ``meterql serve`` in a
subprocess, a timed run of client threads, latency percentiles and medians."""

from __future__ import annotations

import contextlib
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def meterql_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "meterql"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from meterql.cli import main; main()"]


def serve_args(home: Path, port: int, log_level: str) -> list[str]:
    return ["serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
            "--no-sync", "--log-level", log_level]


@contextlib.contextmanager
def serve(home: Path, port: int, log_path: Path, log_level: str = "warning",
          env: dict[str, str] | None = None, command: list[str] | None = None,
          stop_timeout: float = 15):
    """``meterql serve`` as a subprocess (``command`` replaces the ``meterql`` executable, e.g.
    to run it under a profiler); yields the Popen; always stopped on exit."""
    cmd = [*(command or meterql_cmd()), *serve_args(home, port, log_level)]
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                proc.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        log.close()


def wait_healthy(proc: subprocess.Popen, base: str, log_path: Path, timeout: float = 60) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(
                f"meterql serve exited ({proc.returncode}):\n"
                + log_path.read_text(errors="replace")[-3000:]
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        time.sleep(0.1)
    raise RuntimeError(
        "meterql serve did not answer /v1/health in time:\n"
        + log_path.read_text(errors="replace")[-3000:]
    )


def timed_threads(clients: Sequence[httpx.Client], worker: Callable[[httpx.Client], None],
                  start: threading.Barrier, watch) -> tuple[dict, float]:
    """Run ``worker`` once per client in its own thread; the clock starts when all are ready
    (``start``, a barrier of len(clients) + 1) and stops when all are done. Returns the CPU
    figures of ``watch`` (a CpuWatch, or None) and the wall time; the clients are closed."""
    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    out: dict = {}
    with watch.watch(out) if watch else contextlib.nullcontext():
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    for client in clients:
        client.close()
    return out, wall


def latency_summary(seconds: list[float]) -> dict:
    ms = sorted(x * 1000 for x in seconds)
    if len(ms) < 2:
        return {"p50_ms": ms[0] if ms else None, "p95_ms": None, "p99_ms": None}
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "p50_ms": q[49],
        "p95_ms": q[94],
        "p99_ms": q[98],
        "min_ms": ms[0],
        "max_ms": ms[-1],
        "mean_ms": statistics.fmean(ms),
    }


def med(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None
