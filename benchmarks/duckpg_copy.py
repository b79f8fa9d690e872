"""Copy a PostgreSQL table into a new DuckDB file with DuckDB's postgres extension; print JSON.

Not run by hand: ``benchmarks.sync`` runs it as ``python -m benchmarks.duckpg_copy`` from the
repository root with ``benchmarks/.venv-duckpg/bin/python`` (duckdb 1.5.5 +
duckdb-extension-postgres 1.5.5, see ``benchmarks/duckpg.py``: DuckDB cannot download
extensions here and the extension's only build on PyPI refuses DuckDB 2.x). Offline recipe from
shared/reference/perf-anchors.md: install the wheel's signed binary into a private extension
directory, then ``LOAD postgres``.

Protocol on stdin/stdout: after loading the extension it prints ``ready`` and waits for a
line; then it runs the timed part, ``ATTACH`` + ``CREATE TABLE AS SELECT * FROM pg.<table>`` +
``CHECKPOINT`` (the extension's defaults: binary COPY split into ctid ranges over parallel
connections sharing one snapshot), and prints its timings and its own CPU seconds as one JSON
line; then the copy's count(*), sum(quantity) and settings as a second JSON line.
The PostgreSQL password comes from PGPASSWORD in the environment.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import sys
import time
from pathlib import Path

import duckdb
import duckdb_extension_postgres


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conninfo", required=True, help="libpq keyword string, no password")
    ap.add_argument("--table", default="public.events")
    ap.add_argument("--out", required=True, help="new DuckDB file")
    ap.add_argument("--ext-dir", required=True, help="private extension directory")
    args = ap.parse_args()

    t0 = time.perf_counter()
    binary = (
        Path(str(importlib.resources.files(duckdb_extension_postgres)))
        / "extensions"
        / f"v{duckdb.__version__}"
        / "postgres.duckdb_extension"
    )
    con = duckdb.connect(args.out)
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET extension_directory = ?", [args.ext_dir])
    con.execute(f"INSTALL '{binary}'")
    con.execute("LOAD postgres")
    t_load = time.perf_counter()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu0, t_go = time.process_time(), time.perf_counter()
    con.execute(f"ATTACH '{args.conninfo}' AS pg (TYPE postgres, READ_ONLY)")
    t_attach = time.perf_counter()
    con.execute(f"CREATE TABLE events AS SELECT * FROM pg.{args.table}")
    t_ctas = time.perf_counter()
    con.execute("CHECKPOINT")
    t_ckpt = time.perf_counter()
    cpu = time.process_time() - cpu0
    print(
        json.dumps(
            {
                "seconds": t_ckpt - t_go,  # attach + CTAS + checkpoint
                "process_cpu_s": cpu,
                "load_extension_s": t_load - t0,
                "attach_s": t_attach - t_go,
                "ctas_s": t_ctas - t_attach,
                "checkpoint_s": t_ckpt - t_ctas,
            }
        ),
        flush=True,
    )
    rows, total = con.execute(
        "SELECT count(*), CAST(sum(quantity) AS VARCHAR) FROM events"
    ).fetchone()
    ext = con.execute(
        "SELECT extension_version, install_mode FROM duckdb_extensions() "
        "WHERE extension_name = 'postgres_scanner'"
    ).fetchone()
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name LIKE 'pg_%' OR name = 'threads'"
        ).fetchall()
    )
    groups = con.execute(
        "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('events')"
    ).fetchone()[0]
    types = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'events' "
        "AND database_name = current_database()"
    ).fetchall()
    con.close()
    print(
        json.dumps(
            {
                "rows": rows,
                "sum_quantity": total,
                "file_bytes": os.path.getsize(args.out),
                "row_groups": groups,
                "duckdb": duckdb.__version__,
                "extension": {"version": ext[0], "install_mode": ext[1]} if ext else None,
                "settings": settings,
                "types": types,
            }
        )
    )


if __name__ == "__main__":
    main()
