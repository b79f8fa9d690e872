"""What the HTTP benchmarks (``benchmarks.api_load``, ``benchmarks.ingest``) share: a real
``meterql serve`` in a subprocess, a timed run of client threads, a lean asyncio loopback
client, latency percentiles and medians."""

from __future__ import annotations

import asyncio
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

import httptools
import httpx

try:
    import uvloop
except ImportError:  # plain asyncio then
    uvloop = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def meterql_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "meterql"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "meterql"]


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
    log = open(log_path, "wb")
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


def http_request(method: str, host: str, port: int, path: str,
                 headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """One HTTP/1.1 request, encoded (for ``bounded_load``)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}",
             *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight; ``request`` returns
    (status, body) once the whole response is in (Content-Length or chunked, via httptools)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)
            self.transport.close()

    def connection_lost(self, exc) -> None:
        self._fail(exc or ConnectionError("connection closed by the server"))

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def on_body(self, body: bytes) -> None:  # httptools callbacks
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((self.parser.get_status_code(), b"".join(self.body)))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.transport.is_closing():
            raise ConnectionError("connection closed")
        self.body = []
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


async def _bounded_load(host, port, requests, concurrency, window, timeout):
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(_Connection, host, port))[1]
             for _ in range(concurrency)]
    health = http_request("GET", host, port, "/v1/health")
    for conn in conns:  # every connection used once before the timed window
        status, body = await asyncio.wait_for(conn.request(health), timeout)
        if status != 200:
            raise RuntimeError(f"GET /v1/health: HTTP {status} {body[:300]!r}")
    latencies: list[float | None] = [None] * len(requests)
    answers: list[tuple[int, bytes] | None] = [None] * len(requests)
    errors: list[str] = []
    todo = iter(range(len(requests)))

    async def worker(conn: _Connection) -> None:
        for i in todo:  # shared: each request is taken by one worker
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    answers[i] = await conn.request(requests[i])
            except (OSError, TimeoutError, httptools.HttpParserError) as exc:
                errors.append(f"request {i}: {exc!r}; its connection is dropped")
                return
            latencies[i] = time.perf_counter() - t0

    try:
        with window:
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in conns))
            wall = time.perf_counter() - t0
    finally:
        for conn in conns:
            conn.transport.close()
    return latencies, answers, wall, errors


def bounded_load(host: str, port: int, requests: list[bytes], concurrency: int,
                 window: contextlib.AbstractContextManager | None = None,
                 timeout: float = 120) -> tuple[list, list, float, list[str]]:
    """Send the pre-encoded ``requests`` (see ``http_request``) over ``concurrency`` keep-alive
    HTTP/1.1 connections, each with at most one request in flight (no pipelining), from an
    asyncio loop (uvloop if installed) in this thread.

    The connections are opened, and each sends one ``GET /v1/health``, before the timed window;
    the window (``window``, e.g. a CPU watch, is entered around it) runs from the first request
    to the last response. Returns (latencies in s, (status, body) answers, wall s, errors), the
    lists in request order; a request without an answer (its connection failed, after which that
    connection takes no more) has None in both lists and an entry in ``errors``."""
    coro = _bounded_load(host, port, requests, concurrency,
                         window or contextlib.nullcontext(), timeout)
    return uvloop.run(coro) if uvloop else asyncio.run(coro)


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
