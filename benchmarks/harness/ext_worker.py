"""Run the workload through DuckDB's postgres extension; print one JSON object.

Not run by hand: run.py starts it as ``python -m benchmarks.harness.ext_worker`` from the
repository root with benchmarks/.venv-duckpg/bin/python (duckdb 1.5.5 +
duckdb-extension-postgres 1.5.5, see benchmarks/duckpg.py; offline install recipe as in
benchmarks/duckpg_copy.py). The job
comes as JSON on stdin: conninfo (no password; PGPASSWORD is in the environment), ext_dir,
prices CSV, dim Parquet, runs and the queries. Per query: the run times (after one warm-up)
and the normalised rows of the last run.
"""

from __future__ import annotations

import importlib.resources
import json
import sys
import time
from pathlib import Path

import duckdb
import duckdb_extension_postgres

from benchmarks.harness import answers


def main() -> None:
    job = json.loads(sys.stdin.read())
    binary = (Path(str(importlib.resources.files(duckdb_extension_postgres))) / "extensions"
              / f"v{duckdb.__version__}" / "postgres.duckdb_extension")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET extension_directory = ?", [job["ext_dir"]])
    con.execute(f"INSTALL '{binary}'")
    con.execute("LOAD postgres")
    con.execute(f"ATTACH '{job['conninfo']}' AS pg (TYPE postgres, READ_ONLY)")
    con.execute("CREATE TEMP TABLE prices AS SELECT * FROM read_csv(?, header = true, "
                "columns = {'meter': 'VARCHAR', 'unit_price': 'DECIMAL(12,4)'})", [job["prices"]])
    con.execute("CREATE TEMP TABLE dim_customers AS SELECT * FROM read_parquet(?)",
                [job["dim_parquet"]])
    out = {"duckdb": duckdb.__version__, "queries": {}}
    for name, sql in job["queries"].items():
        times, rows, err = [], None, None
        try:
            con.execute(sql).fetchall()  # warm-up
            for _ in range(job["runs"]):
                t0 = time.perf_counter()
                rows = con.execute(sql).fetchall()
                times.append(time.perf_counter() - t0)
        except Exception as exc:  # reported, not fatal: the other queries still run
            err = f"{type(exc).__name__}: {exc}"
        out["queries"][name] = {"times": times, "rows": answers.rows(rows or []), "error": err}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
