"""The benchmark harness (`python -m benchmarks.harness`, from the repository root) end to end
at a tiny scale: it runs, every mode agrees with native DuckDB, it writes its results and
report, and with --pg-dir a second run reuses the loaded data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(out: Path, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.harness", "--scale", "tiny",
                           "--runs", "1", "--out", str(out), *extra], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


@pytest.mark.usefixtures("pg_cluster")  # fails under CI=true when PostgreSQL cannot start
def test_bench_runs_at_a_tiny_scale_and_reuses_a_kept_cluster(tmp_path):
    # the cluster directory must be reachable by the postgres OS user: not under pytest's 0700
    pg_dir = Path(tempfile.mkdtemp(prefix="meterql-bench-pg-"))
    try:
        first = bench(tmp_path / "a", "--pg-dir", str(pg_dir))
        assert first["scale"] == "tiny" and first["problems"] == []
        assert first["load"]["skipped"] == []
        modes = first["queries"]["cross_source"]["modes"]
        assert all(r["agrees"] for r in modes.values()), modes
        assert set(modes) >= {"meterql_direct", "meterql_sync", "duckdb_native", "postgres",
                              "naive"}
        new = first["incremental_sync"]["new_rows"]
        assert first["freshness"]["direct_rows_seen"] == first["freshness"]["sync_rows_seen"] \
            == new
        assert first["freshness"]["sync_s"] >= first["incremental_sync"]["seconds"]
        rss = first["peak_rss_bytes"]
        assert rss["before_meterql"] <= rss["meterql_direct"] <= rss["meterql_sync"]
        assert first["command"].startswith("python -m benchmarks.harness --scale tiny")
        report = (tmp_path / "a" / "report.md").read_text()
        assert "meterql direct" in report and "Freshness lag" in report
        assert (pg_dir / "data" / "PG_VERSION").exists()  # kept after the run

        second = bench(tmp_path / "b", "--pg-dir", str(pg_dir))
        assert second["problems"] == []
        assert sorted(second["load"]["skipped"]) == ["customers", "events", "plans"]
        assert second["load"]["rows"] == first["load"]["rows"]
    finally:
        stop = ["pg_ctl", "-D", str(pg_dir / "data"), "-m", "immediate", "stop"]
        as_root = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(as_root + stop, capture_output=True, check=False)  # if a run crashed
        shutil.rmtree(pg_dir, ignore_errors=True)
