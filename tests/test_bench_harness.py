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
        # auto mode, measured in the same run: the routes are recorded with their reasons
        auto = first["queries"]["invoice_run"]["modes"]
        assert auto["meterql_auto"]["agrees"] and auto["meterql_auto_bound0"]["agrees"]
        routes = auto["meterql_auto"]["routes"]
        assert [r["table"] for r in routes] == ["pg.public.events"]
        assert all(r["line"] == f"{r['table']} -> {r['kind']}: {r['reason']}" for r in routes)
        assert auto["meterql_auto_bound0"]["bound"] == 0
        assert auto["meterql_auto_bound0"]["routes"][0]["kind"] != "replica"  # 0 = live
        fresh = first["freshness_bound0"]
        assert fresh["passed"] and len(fresh["runs"]) == 1
        assert fresh["runs"][0]["group_grew_by"] == 1 and fresh["runs"][0]["agrees_with_postgres"]
        # failover: every query answered from the replica with the server stopped (agreeing
        # with native DuckDB, checked above through problems == []); a bound of 0 is refused
        assert all(q["answered"] and q["failover_named"]
                   for q in first["failover"]["queries"].values())
        assert modes["meterql_failover"]["agrees"]
        assert first["failover"]["bound0"]["error"].startswith("StaleReplicaError")
        report = (tmp_path / "a" / "report.md").read_text()
        assert "meterql direct" in report and "Freshness lag" in report
        assert "What auto chose and why" in report and "pg.public.events | replica" in report
        # the planner's targets: one line per target, the sync ones per query
        assert "## Planner targets" in report
        assert report.count("within 1.2x of native DuckDB on the replica") == len(
            first["queries"])
        assert first["cluster_by"] == ["customer_id", "ts"]
        assert first["initial_sync"]["dim"]["rows"] > 0  # sync mode reads the SQLite side's replica
        assert (pg_dir / "data" / "PG_VERSION").exists()  # kept after the run

        # the first run stopped and restarted the server for its failover: the rerun works,
        # and the bound-0 check's rows are gone again (the reused tables are the loaded ones)
        second = bench(tmp_path / "b", "--pg-dir", str(pg_dir))
        assert second["problems"] == []
        assert second["freshness_bound0"]["passed"]
        assert sorted(second["load"]["skipped"]) == ["customers", "events", "plans"]
        assert second["load"]["rows"] == first["load"]["rows"]
    finally:
        stop = ["pg_ctl", "-D", str(pg_dir / "data"), "-m", "immediate", "stop"]
        as_root = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(as_root + stop, capture_output=True, check=False)  # if a run crashed
        shutil.rmtree(pg_dir, ignore_errors=True)
