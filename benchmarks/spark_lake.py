"""Benchmark: the spark engine's Parquet snapshots (engine/spark/lake.py), whole against
incremental.

Builds the harness's ``events`` shape (id, customer_id, meter, ts, quantity numeric(18,6),
properties) in an embedded DuckDB as ``local.events.usage``: ``--rows`` rows over the harness's
365 days, ts rising with id. Then, per run, in a fresh snapshot folder:

* ``whole``: the first snapshot (every partition written), the baseline;
* ``unchanged``: a snapshot with nothing changed (the fingerprints read, nothing written);
* ``append_day``: a day's rows inserted three days before the latest row, into the current
  (full) month (as an append sync or a day of pushes brings);
* ``amend``: 1,000 rows of an old day updated in place (as amends, voids, corrections);
* ``unpartitioned``: the same append with no time column declared, which writes the table
  whole (what every new watermark cost before partitions).

Medians of ``--runs``; ratios against ``whole`` of the same run. Each snapshot's rows are
checked against DuckDB's (count and summed row hashes) after the timed step.

    .venv/bin/python -m benchmarks.spark_lake [--rows 56600000] [--runs 3]

Writes benchmarks/results/spark_lake-ROWS.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from benchmarks.common import RESULTS, exit_code, machine
from benchmarks.harness.data import SPAN_S, START
from meterql.engine.spark import lake as lake_module
from meterql.engine.spark.lake import Lake

TABLE = "local.events.usage"


def build(duck: duckdb.DuckDBPyConnection, rows: int) -> None:
    duck.execute("ATTACH ':memory:' AS local; CREATE SCHEMA local.events")
    duck.execute(f"""
        CREATE TABLE {TABLE} AS SELECT g AS id,
            1 + CAST(floor({max(50, rows // 1000)} * pow((hash(g) % 1000000) / 1e6, 2)) AS INT)
              AS customer_id,
            ['api_calls', 'storage_gb_hours', 'compute_seconds', 'egress_gb', 'seats']
              [1 + CAST(hash(g + 2) % 5 AS BIGINT)] AS meter,
            TIMESTAMPTZ '{START}' + to_microseconds(CAST((g - 1) * ({SPAN_S}.0 / {rows}) * 1e6
              AS BIGINT) + CAST(hash(g + 3) % 3600 AS BIGINT) * 1000000) AS ts,
            CAST((hash(g + 4) % 1000000000) / 1e6 AS DECIMAL(18, 6)) AS quantity,
            '{{"region": "eu", "sku": "sku-' || (hash(g + 6) % 100) || '"}}' AS properties
        FROM range(1, {rows} + 1) AS t(g)""")


def checked(duck: duckdb.DuckDBPyConnection, snapshot) -> str | None:
    """A problem when the snapshot's files do not hold DuckDB's rows (count and hash sum)."""
    want = duck.execute(f"SELECT count(*), sum(hash(t)) FROM {TABLE} AS t").fetchone()
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in snapshot.files)
    if rows != want[0] or snapshot.rows != want[0]:
        return f"{snapshot.key}: {rows} rows in the files, {want[0]} in DuckDB"
    return None


def timed(step) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = step()
    return time.perf_counter() - t0, out


def one_run(duck: duckdb.DuckDBPyConnection, work: Path, day_rows: int, old_id: int,
            run: int, problems: list[str]) -> dict:
    """One run of the steps; ``old_id``: the first of the 1,000 rows the amend updates."""
    root = work / f"lake-{run}"
    lake = Lake(root, lambda table: ("ts",))
    out: dict[str, dict] = {}

    def step(name: str, the_lake: Lake, change: str | None = None) -> None:
        if change:
            duck.execute(change)
        seconds, snapshot = timed(lambda: the_lake.snapshot(duck, TABLE))
        out[name] = {"s": seconds, "written": snapshot.written,
                     "partitions": snapshot.partitions, "grain": snapshot.grain}
        problem = checked(duck, snapshot)
        if problem:
            problems.append(f"run {run} {name}: {problem}")

    step("whole", lake)
    step("unchanged", lake)
    top = duck.execute(f"SELECT max(id), max(ts) - INTERVAL 3 DAY FROM {TABLE}").fetchone()
    day = f"TIMESTAMPTZ '{top[1].isoformat()}'"
    step("append_day", lake, f"""
        INSERT INTO {TABLE} SELECT {top[0]} + g, 1 + g % 50, 'api_calls',
            {day} + to_seconds(g % 80000), 1.5, NULL FROM range(1, {day_rows} + 1) AS t(g)""")
    step("amend", lake, f"UPDATE {TABLE} SET quantity = quantity + 1 "
                        f"WHERE id BETWEEN {old_id} AND {old_id + 999}")
    whole = Lake(work / f"whole-{run}")  # no time column: every new state written whole
    whole.snapshot(duck, TABLE)
    step("unpartitioned", whole, f"""
        INSERT INTO {TABLE} SELECT {top[0]} + {day_rows} + g, 1, 'seats',
            {day} + to_seconds(g % 80000), 1, NULL FROM range(1, {day_rows} + 1) AS t(g)""")
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(work / f"whole-{run}", ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=56_600_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    duck = duckdb.connect()
    duck.execute("SET threads = 2")
    t0 = time.perf_counter()
    build(duck, args.rows)
    print(f"built {args.rows:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
    day_rows = max(1, args.rows // 365)
    problems: list[str] = []
    runs = []
    # (the amend: 1,000 rows from the 1,000,000th, or from a third of a smaller table)
    old_id = min(1_000_000, args.rows // 3)
    with tempfile.TemporaryDirectory(prefix="spark_lake-") as tmp:
        for run in range(args.runs):
            runs.append(one_run(duck, Path(tmp), day_rows, old_id, run, problems))
            print(f"run {run + 1}: " + ", ".join(f"{k} {v['s']:.2f} s ({v['written']} of "
                                                 f"{v['partitions']} written)"
                                                 for k, v in runs[-1].items()), flush=True)
    steps = {}
    for name in runs[0]:
        median = statistics.median(r[name]["s"] for r in runs)
        steps[name] = {"median_s": median, "runs_s": [r[name]["s"] for r in runs],
                       "written": runs[-1][name]["written"],
                       "partitions": runs[-1][name]["partitions"],
                       "grain": runs[-1][name]["grain"]}
    base = steps["whole"]["median_s"]
    for step in steps.values():
        step["ratio_to_whole"] = step["median_s"] / base
    report = {"rows": args.rows, "day_rows": day_rows, "runs": args.runs,
              "partition_rows": lake_module.PARTITION_ROWS, "machine": machine(),
              "steps": steps, "problems": problems}
    out = args.out or RESULTS / f"spark_lake-{args.rows}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, step in steps.items():
        print(f"{name:14} {step['median_s']:7.2f} s  x{step['ratio_to_whole']:.3f} of whole  "
              f"({step['written']} of {step['partitions']} {step['grain']} partitions "
              f"written)")
    print(f"written to {out}")
    return exit_code(problems)


if __name__ == "__main__":
    raise SystemExit(main())
