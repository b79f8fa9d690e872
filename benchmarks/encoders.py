"""Benchmark: how fast meterql.encoders writes a large result as CSV, JSON, JSON lines and the
box table for people.

A table of --rows rows (int, double, DECIMAL(18,6), a UTC timestamp, text) is encoded with
``meterql.encoders.encode`` (what ``meterql query --format`` and ``POST /v1/query`` with
``Accept: text/csv`` write), ``json_envelope`` (the HTTP JSON answer) and ``boxes`` (the table
``meterql query`` draws on a terminal, styled); the baseline is
Arrow's own CSV writer over the same table (``pyarrow.csv.write_csv``), which writes other text
for several types but shows what a fully vectorised CSV costs on this machine. Medians of --runs
after a warm-up; the CSV is read back and checked against the table.

    .venv/bin/python -m benchmarks.encoders [--rows 1000000] [--runs 5]

Writes benchmarks/results/encoders.json.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from benchmarks.common import RESULTS, dist_version, finish_report, git, machine
from meterql.encoders import boxes, encode, json_envelope


def bench_table(rows: int, seed: int = 7) -> pa.Table:
    """int, double, DECIMAL(18,6) up to +-1,000,000, a UTC timestamp (every 7th a whole
    second), text of 5,000 distinct customers."""
    rng = np.random.default_rng(seed)
    unscaled = rng.integers(-10**12, 10**12, rows)
    storage = np.stack([unscaled, unscaled >> 63], axis=1).astype(np.int64)  # 128-bit values
    amount = pa.Array.from_buffers(pa.decimal128(18, 6), rows, [None, pa.py_buffer(storage)])
    micros = 1_790_000_000_000_000 + rng.integers(0, 10**13, rows)
    micros[::7] -= micros[::7] % 1_000_000
    return pa.table({
        "id": pa.array(np.arange(rows), pa.int64()),
        "qty": pa.array(rng.random(rows) * 1000),
        "amount": amount,
        "ts": pa.array(micros, pa.timestamp("us", tz="UTC")),
        "customer": pa.array([f"cust-{i % 5000:05d}" for i in range(rows)]),
    })


def _size(chunks: Iterable[bytes]) -> int:
    return sum(len(c) for c in chunks)


def _arrow_csv(table: pa.Table) -> int:
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return len(sink.getvalue())


def measure(fn: Callable[[], int], runs: int) -> dict:
    fn()  # warm-up
    times, size = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        size = fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "bytes": size, "runs_s": times}


def check(table: pa.Table) -> None:
    """The CSV reads back as the same numbers, and the JSON lines as the same rows."""
    head = table.slice(0, 100_000)
    back = pacsv.read_csv(io.BytesIO(b"".join(encode(head, "csv"))), convert_options=pacsv
                          .ConvertOptions(column_types={"amount": pa.decimal128(18, 6)}))
    for name in ("id", "qty", "amount", "customer"):
        assert back.column(name).equals(head.column(name)), name
    first = json.loads(next(iter(encode(head, "jsonl"))).split(b"\n", 1)[0])
    assert first["id"] == 0 and first["amount"] == format(head.column("amount")[0].as_py(), "f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", default=str(RESULTS / "encoders.json"))
    args = parser.parse_args()
    table = bench_table(args.rows)
    check(table)
    tail = {"row_count": table.num_rows, "truncated": False, "seconds": 0.0, "watermarks": []}
    cases: dict[str, Callable[[], int]] = {
        "csv": lambda: _size(encode(table, "csv")),
        "json": lambda: _size(encode(table, "json")),
        "jsonl": lambda: _size(encode(table, "jsonl")),
        "http json envelope": lambda: _size(json_envelope(table, tail)),
        "table (boxes, styled)": lambda: sum(len(c.encode()) for c in boxes(
            table, styled=True).chunks()),
        "baseline: pyarrow.csv.write_csv": lambda: _arrow_csv(table),
    }
    report = {"rows": args.rows, "runs": args.runs, "machine": machine(),
              "versions": {"pyarrow": pa.__version__, "meterql": dist_version("meterql"),
                           "git_commit": git("rev-parse", "--short", "HEAD")},
              "results": {}}
    for name, fn in cases.items():
        report["results"][name] = measure(fn, args.runs)
    finish_report(report, args.output, _print)


def _print(report: dict) -> None:
    print(f"{report['rows']:,} rows, medians of {report['runs']} runs")
    for name, r in report["results"].items():
        print(f"  {name:34s} {r['median_s']:7.3f} s  ({r['min_s']:.3f}-{r['max_s']:.3f})"
              f"  {r['bytes'] / 2**20:7.1f} MB")


if __name__ == "__main__":
    main()
