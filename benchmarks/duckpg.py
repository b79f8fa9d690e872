"""DuckDB's postgres extension as a baseline: the isolated venv it runs in, and how to start a
worker module there.

The extension's only build on PyPI (duckdb-extension-postgres 1.5.5) refuses DuckDB 2.x, and
DuckDB cannot download extensions here, so the extension runs in its own venv
(``benchmarks/.venv-duckpg``, made on first use) with duckdb 1.5.5. A worker
(``benchmarks.duckpg_copy``, ``benchmarks.harness.ext_worker``) runs there as a module from the
repository root; it imports no meterql and nothing of this venv's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.common import ROOT

VENV = ROOT / "benchmarks" / ".venv-duckpg"
PINS = ["duckdb==1.5.5", "duckdb-extension-postgres==1.5.5"]
EXTENSION_DIR = VENV / "duckdb-extensions"  # the workers' private extension directory


def ensure_venv(path: Path = VENV) -> Path:
    """The isolated venv with duckdb 1.5.5 and its postgres extension (made once); its python."""
    python = path / "bin" / "python"
    probe = [str(python), "-c",
             "import duckdb, duckdb_extension_postgres; print(duckdb.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() == "1.5.5":
            return python
    print(f"creating {path} ({' '.join(PINS)}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PINS],
        check=True,
    )
    subprocess.run(probe, check=True, capture_output=True)
    return python


def worker_command(python: Path, module: str, *args: str) -> list[str]:
    """``python -m module args``; run it with ``cwd=ROOT`` so the module is found."""
    return [str(python), "-m", module, *args]
