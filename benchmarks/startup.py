"""Benchmark: how long the command line takes to start, against a bare Python started the same
way in the same run.

Each command runs as a subprocess, as a user runs it (the ``meterql`` script beside this
Python), --runs times after a warm-up, the commands interleaved; the median (min-max) and the
ratio to ``python -c pass`` are reported, with the target (0.2 s for ``meterql --help`` and
``meterql source list`` on an empty workspace). ``--tree DIR`` measures the ``meterql`` package
of another tree instead (put first on ``PYTHONPATH``), e.g. a commit before a change:
``mkdir /tmp/before && git archive REV meterql | tar -x -C /tmp/before``.

    .venv/bin/python -m benchmarks.startup [--runs 15] [--tree DIR --label REV]

Writes benchmarks/results/startup.json (or --output).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, finish_report, git, machine

#: The start-up target of issue 19 (seconds, median).
TARGET_S = 0.2


def commands(home: Path) -> dict[str, list[str]]:
    python = sys.executable
    script = str(Path(python).with_name("meterql"))
    return {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import meterql'": [python, "-c", "import meterql"],
        "meterql --help": [script, "--help"],
        "meterql --version": [script, "--version"],
        "meterql source list": [script, "source", "list", "--home", str(home)],
    }


TARGETS = {"meterql --help", "meterql source list"}


def run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tree", type=Path, default=None,
                        help="a checkout whose meterql package to measure (PYTHONPATH)")
    parser.add_argument("--label", default=None,
                        help="what --tree holds, for the report (e.g. its commit)")
    parser.add_argument("--output", default=str(RESULTS / "startup.json"))
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("METERQL_HOME", None)
    env.pop("METERQL_SERVER", None)
    if args.tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(args.tree.resolve()), *filter(None, [env.get("PYTHONPATH")])])
    with tempfile.TemporaryDirectory(prefix="meterql-startup-") as tmp:
        os.chdir(tmp)  # (python -c imports from the current folder first: not the checkout)
        where = subprocess.run([sys.executable, "-c", "import meterql; print(meterql.__file__)"],
                               env=env, capture_output=True, text=True,
                               check=True).stdout.strip()
        home = Path(tmp) / "home"
        cases = commands(home)
        run_once(cases["meterql source list"], env)  # makes the (empty) workspace
        times: dict[str, list[float]] = {name: [] for name in cases}
        for i in range(args.warmup + args.runs):
            for name, argv in cases.items():  # interleaved: a slow moment hits every command
                elapsed = run_once(argv, env)
                if i >= args.warmup:
                    times[name].append(elapsed)
    base = statistics.median(times["python -c pass"])
    results = {}
    for name, runs in times.items():
        median = statistics.median(runs)
        results[name] = {
            "median_s": median, "min_s": min(runs), "max_s": max(runs),
            "ratio_to_python": median / base, "runs_s": runs,
            **({"target_s": TARGET_S, "met": median < TARGET_S} if name in TARGETS else {}),
        }
    report = {
        "benchmark": "startup",
        "runs": args.runs,
        "meterql_package": where,
        "git_commit": args.label or git("rev-parse", "--short", "HEAD"),
        "machine": machine(),
        "results": results,
    }
    finish_report(report, args.output, _print)


def _print(report: dict) -> None:
    print(f"start-up, medians of {report['runs']} runs (min-max), meterql from "
          f"{report['meterql_package']} at {report['git_commit']}")
    for name, r in report["results"].items():
        verdict = ""
        if "target_s" in r:
            verdict = f"  target < {r['target_s']} s: {'met' if r['met'] else 'missed'}"
        print(f"  {name:30s} {r['median_s'] * 1000:7.1f} ms  ({r['min_s'] * 1000:.1f}-"
              f"{r['max_s'] * 1000:.1f})  {r['ratio_to_python']:5.1f}x python{verdict}")


if __name__ == "__main__":
    main()
