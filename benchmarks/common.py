"""Helpers shared by the benchmark scripts: the CPU sampler (with wait-for-idle), machine and
version facts for the report, and a few formatting helpers.

Benchmarks run as modules from the repository root (``.venv/bin/python -m benchmarks.<name>``)
and import this one as ``benchmarks.common``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


class CpuWatch:
    """Machine CPU during a measurement, split into ours (this process and the throwaway
    PostgreSQL's processes) and everybody else's; our processes are sampled 4 times a second."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, postmaster_pid: int | None) -> None:
        self.postmaster = postmaster_pid
        self._ours: dict[int, int] = {}
        self._stop = threading.Event()

    @staticmethod
    def _machine() -> tuple[int, int]:
        """(busy ticks, steal ticks) of the whole machine."""
        line = Path("/proc/stat").read_text().split("\n", 1)[0]
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
        return user + nice + system + irq + softirq, steal

    def _sample_ours(self) -> None:
        pids = [os.getpid()]
        if self.postmaster:
            pids.append(self.postmaster)
            with contextlib.suppress(OSError, ValueError):
                children = Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children")
                pids += [int(p) for p in children.read_text().split()]
        for pid in pids:
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                rest = stat[stat.rindex(")") + 2 :].split()
                self._ours[pid] = int(rest[11]) + int(rest[12])  # utime + stime, all threads

    def wait_idle(self, max_wait: float, threshold: float = 0.3) -> float:
        """Wait up to ``max_wait`` s for the machine to go quiet while we idle; seconds waited."""
        t0 = time.perf_counter()
        while True:
            busy0, _ = self._machine()
            time.sleep(0.5)
            busy1, _ = self._machine()
            waited = time.perf_counter() - t0
            if (busy1 - busy0) / self.TICK / 0.5 < threshold or waited >= max_wait:
                return waited

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self._sample_ours()

    @contextlib.contextmanager
    def watch(self, into: dict):
        self._ours.clear()
        self._sample_ours()
        ours0 = dict(self._ours)
        busy0, steal0 = self._machine()
        t0 = time.perf_counter()
        self._stop.clear()
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()
            self._sample_ours()
            busy1, steal1 = self._machine()
            wall = time.perf_counter() - t0
            ours = sum(v - ours0.get(pid, 0) for pid, v in self._ours.items())
            into["cpu_cores"] = {
                "window_s": wall,
                "machine": (busy1 - busy0) / self.TICK / wall,
                "ours": ours / self.TICK / wall,
                "other": max(0.0, (busy1 - busy0 - ours) / self.TICK / wall),
                "steal": (steal1 - steal0) / self.TICK / wall,
            }


def machine() -> dict:
    cpu = mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "os": platform.platform(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(pg) -> dict:
    """Versions of everything measured; ``pg`` is a running ``PostgresCluster``."""
    import adbc_driver_postgresql
    import duckdb
    import pyarrow as pa
    import sqlglot

    return {
        "python": platform.python_version(),
        "meterql": dist_version("meterql"),
        "duckdb": duckdb.__version__,
        "pyarrow": pa.__version__,
        "sqlglot": sqlglot.__version__,
        "sqlglotc": dist_version("sqlglotc"),
        "adbc_driver_postgresql": adbc_driver_postgresql.__version__,
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg.run_sql("SHOW server_version", tuples_only=True).strip(),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "meterql_tree_dirty": bool(git("status", "--porcelain", "--", "meterql")),
    }


def dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return ""


def postmaster_pid(pg) -> int | None:
    with contextlib.suppress(OSError, ValueError, TypeError):
        return int((pg.datadir / "postmaster.pid").read_text().split()[0])
    return None


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def finish_report(report: dict, output: str | Path, print_report) -> None:
    """Stamp the end of a run, print it, and write its JSON."""
    from datetime import UTC, datetime

    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    print_report(report)
    Path(output).write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {output}")


def exit_code(problems: list[str]) -> int:
    """1 with the problems on stderr (answer mismatches, errors), else 0."""
    if not problems:
        return 0
    print("\n!!! ANSWER MISMATCHES / ERRORS !!!", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    return 1
