"""`meterql bench` end to end at a tiny scale: it runs, every mode agrees with native DuckDB,
and it writes its results and report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

METERQL = str(Path(sys.executable).parent / "meterql")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.usefixtures("pg_cluster")  # fails under CI=true when PostgreSQL cannot start
def test_bench_runs_at_a_tiny_scale(tmp_path):
    proc = subprocess.run([METERQL, "bench", "--scale", "tiny", "--runs", "1", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["scale"] == "tiny"
    report = (tmp_path / "report.md").read_text()
    assert "meterql direct" in report and "meterql sync" in report
