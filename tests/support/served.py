"""A real ``meterql serve`` process over a workspace, and the real CLI, for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.waiting import wait_until

METERQL = str(Path(sys.executable).parent / "meterql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "METERQL_HOME"}


def cli(*args: str, check: bool = True, stdin: str | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """``meterql ARGS`` as a subprocess; with ``check``, exit status 0 is asserted."""
    proc = subprocess.run([METERQL, *args], capture_output=True, text=True, env=clean_env(),
                          timeout=timeout, input=stdin)
    if check:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def new_key(home: Path, scope: str) -> str:
    """A key of ``scope`` made by the real CLI (the workspace must not be open)."""
    out = cli("apikey", "create", "--scope", scope, "--name", f"{scope} key",
              "--home", str(home)).stdout
    return out.strip().splitlines()[-1]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Served:
    base: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_peak_kb(self) -> int:
        """The process's peak resident memory (VmHWM), in kB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")


@contextlib.contextmanager
def serve(home: Path, *args: str) -> Iterator[Served]:
    """``meterql serve --home HOME`` on a free loopback port until the block ends."""
    port = free_port()
    log_path = home.parent / f"server-{port}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [METERQL, "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port),
             "--no-sync", *args],
            stdout=log_file, stderr=subprocess.STDOUT, env=clean_env(), cwd=home.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            if proc.poll() is not None:
                return True  # exited: fail below with its log
            try:
                return httpx.get(f"{base}/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(healthy, timeout=30, interval=0.1), "server did not come up"
        assert proc.poll() is None, log_path.read_text()
        yield Served(base, proc, log_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
