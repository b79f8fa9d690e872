"""A real `meterql serve` killed with SIGKILL while clients push events: after a restart every
event that was answered with a 2xx is stored exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

import meterql
from meterql.access.keys import create_key

METERQL = str(Path(sys.executable).parent / "meterql")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(home: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([METERQL, "serve", "--home", str(home), "--port", str(port),
                             "--no-sync", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start")


def test_every_acknowledged_event_survives_a_kill(tmp_path):
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        _, key = create_key(ws.keys, "ingest")
        _, reader = create_key(ws.keys, "read")
    port = free_port()
    proc = start(home, port)
    stamp = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5,
                          headers={"Authorization": f"Bearer {key}"}) as http:
            n = 0
            while not stop.is_set():
                ids = [f"w{worker}-{n}-{i}" for i in range(20)]
                n += 1
                body = [{"id": i, "timestamp": stamp, "customer_id": f"c{worker}", "qty": 1}
                        for i in ids]
                try:
                    answer = http.post("/v1/events/load", json=body)
                except httpx.HTTPError:
                    continue  # no answer: the events may or may not be stored
                if answer.status_code == 200:
                    assert answer.json()["accepted"] == len(ids)
                    with lock:
                        acknowledged.extend(ids)

    threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(acknowledged) < 2000:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the load
    proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acknowledged) >= 2000, "the load did not get going"

    proc = start(home, port)  # the workspace reopens after the crash (WAL replayed)
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/query", timeout=30,
                            headers={"Authorization": f"Bearer {reader}"},
                            json={"sql": "SELECT id, count(*) AS n FROM local.events.load "
                                         "GROUP BY id", "max_rows": 10_000_000})
        assert answer.status_code == 200, answer.text
        stored = {row[0]: row[1] for row in answer.json()["rows"]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    missing = [i for i in acknowledged if i not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"
    doubled = [i for i, n in stored.items() if n != 1]
    assert not doubled, f"stored twice: {doubled[:3]}"


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_an_event_with_100000_fields_costs_little_and_stalls_nothing(tmp_path):
    """An event with 100,000 new fields (a 1.3 MB body) once took 23.5 GB (two ALTER TABLE per
    field in one transaction); it is now rejected by the fields limit before any DDL."""
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        _, key = create_key(ws.keys, "ingest")
    port = free_port()
    proc = start(home, port)
    stamp = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                          headers={"Authorization": f"Bearer {key}"}) as http:
            first = {"id": "a", "timestamp": stamp, "customer_id": "c", "qty": 1}
            assert http.post("/v1/events/wide", json=first).status_code == 200
            before = _peak_rss_mb(proc.pid)
            wide = {"id": "b", "timestamp": stamp, "customer_id": "c",
                    **{f"field_{i}": i for i in range(100_000)}}
            body = json.dumps(wide).encode()
            assert len(body) > 1_300_000
            for content_type in ("application/json", "application/x-ndjson"):
                started = time.monotonic()
                answer = http.post("/v1/events/wide", content=body,
                                   headers={"Content-Type": content_type})
                took = time.monotonic() - started
                assert answer.status_code == 422, answer.text[:300]
                assert "events_max_fields" in answer.json()["results"][0]["reason"]
                assert took < 5, took
            other = http.post("/v1/events/other", json={**first, "id": "z"})
            assert other.status_code == 200
            peak = _peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"peak RSS {before:.0f} MB before the wide event, {peak:.0f} MB after")
    assert peak < 500, peak
