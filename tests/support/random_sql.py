"""The random differential SQL suite: generated queries through meterql against DuckDB.

Each generated query (tests/support/random_queries.py) runs straight in the DuckDB reference and
through meterql with every source in direct mode and with every source in sync mode (replicas),
over the random dataset (tests/support/random_data.py). Each run has one outcome:

- ``same``: the rows DuckDB returns (a multiset, or in order under a total ORDER BY)
- ``wrong``: other rows: the worst outcome
- ``crash``: meterql raised something that is not a ``MeterqlError`` where DuckDB answers
- ``refused``: meterql raised a ``MeterqlError`` where DuckDB answers ("refused valid SQL",
  counted by kind: the error class and its message with numbers and names blanked)
- ``both error``: DuckDB errors too (fine)
- ``duckdb error``: meterql answers where DuckDB errors (reported, not a failure)

Failures are matched against the open bugs of issue 15 (tests/support/known_bugs.py) and
shrunk (tests/support/minimize.py) to a small repro.

Run any seed and count on demand (it starts its own throwaway PostgreSQL)::

    python -m tests.support.random_sql --seed 1 --count 500 [--mode direct|sync|both]
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from meterql.errors import MeterqlError
from tests.support.compare import Rows, reference_rows, rows_difference
from tests.support.known_bugs import Failure, features, known_bug
from tests.support.minimize import minimize
from tests.support.random_data import RandomEnv
from tests.support.random_queries import GeneratedQuery, generate_query

MODES = ("direct", "sync")
FAILURES = ("wrong", "crash", "refused")
OUTCOMES = ("same", "wrong", "crash", "refused", "both error", "duckdb error")
QUERY_TIMEOUT_S = 30.0
#: DuckDB's message once an internal error has invalidated a database.
INVALIDATED = "database has been invalidated"


@dataclass
class CaseResult:
    """One query in one mode: its outcome and, for failures, what went wrong."""

    query: GeneratedQuery
    mode: str
    outcome: str
    detail: str = ""  # the first row that differs, or the error message
    kind: str = ""  # refused / crash: "ErrorClass: normalised message"
    fixed_without_dynamic_filter: bool = False
    bug: str = ""  # "15.n title" or "new"
    minimized: str | None = None
    seed: int | None = None
    index: int | None = None

    @property
    def sql(self) -> str:
        return self.minimized or self.query.sql

    def failure(self) -> Failure:
        return Failure(self.outcome, self.sql, f"{self.kind}\n{self.detail}",
                       self.fixed_without_dynamic_filter)


def error_kind(exc: BaseException) -> str:
    """``ErrorClass: message`` with numbers, quoted names and positions blanked, so the same
    refusal of different queries counts once."""
    text = str(exc).split("\n")[0]
    text = re.sub(r"\"[^\"]*\"|'[^']*'", "'…'", text)
    text = re.sub(r"\b\d+(\.\d+)?\b", "N", text)
    text = re.sub(r"(Query was|check the SQL near).*", "", text)
    return f"{type(exc).__name__}: {text.strip()}"[:160]


def run_meterql(ws: Any, sql: str, params: dict[str, Any]) -> Any:
    return ws.query(sql, params, max_rows=None, timeout=QUERY_TIMEOUT_S).table


def judge(env: RandomEnv, mode: str, sql: str, params: dict[str, Any], ordered: bool,
          want: Rows | BaseException | None = None) -> tuple[str, str, str]:
    """(outcome, detail, kind) of one query in one mode; ``want`` is DuckDB's answer when
    already known."""
    if want is None:
        try:
            want = reference_rows(env.ref, sql, params)
        except Exception as exc:  # DuckDB's own error: the query is not valid there
            want = exc
    try:
        got = run_meterql(env.workspace(mode), sql, params)
    except MeterqlError as exc:
        if isinstance(want, BaseException):
            return "both error", str(exc), error_kind(exc)
        return "refused", str(exc), error_kind(exc)
    except Exception as exc:  # an internal error: worse than a refusal
        if isinstance(want, BaseException):
            return "both error", str(exc), error_kind(exc)
        return "crash", f"{type(exc).__name__}: {exc}", "crash " + error_kind(exc)
    if isinstance(want, BaseException):
        return "duckdb error", str(want), error_kind(want)
    difference = rows_difference(got, want, ordered)
    return ("same", "", "") if difference is None else ("wrong", difference, "")


def params_in(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    used = set(re.findall(r"[:$](p\d+)\b", sql))
    return {k: v for k, v in params.items() if k in used}


def still_ordered(sql: str, ordered: bool) -> bool:
    """Whether a (shrunk) query still compares in order: its ORDER BY is still there."""
    if not ordered:
        return False
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return False
    return isinstance(tree, exp.Query) and tree.args.get("order") is not None


def fixed_without_dynamic_filter(env: RandomEnv, mode: str, sql: str,
                                 params: dict[str, Any], ordered: bool) -> bool:
    """Whether the wrong answer is right with the ``dynamic_filter`` setting off."""
    ws = env.workspace(mode)
    ws.settings.set("dynamic_filter", False)
    try:
        return judge(env, mode, sql, params, ordered)[0] == "same"
    finally:
        ws.settings.set("dynamic_filter", None)


def run_query(env: RandomEnv, query: GeneratedQuery, modes: Iterable[str]) -> list[CaseResult]:
    """The query in each mode, against one DuckDB answer."""
    try:
        want: Rows | BaseException = reference_rows(env.ref, query.sql, query.params)
    except Exception as exc:
        want = exc
    results = []
    for mode in modes:
        outcome, detail, kind = judge(env, mode, query.sql, query.params, query.ordered, want)
        case = CaseResult(query, mode, outcome, detail, kind)
        if outcome == "wrong" and "ANTI JOIN" in query.sql.upper():
            case.fixed_without_dynamic_filter = fixed_without_dynamic_filter(
                env, mode, query.sql, query.params, query.ordered)
        if outcome in FAILURES:
            case.bug = label(case.failure())
        results.append(case)
    return results


def label(failure: Failure) -> str:
    bug = known_bug(failure)
    return f"{bug.id} {bug.title}" if bug else "new"


def minimize_case(env: RandomEnv, case: CaseResult, budget_s: float = 60.0) -> str:
    """Shrink the query while it fails the same way (the same outcome in the same mode, the
    same error kind for refusals and crashes), then match the repro against the known bugs.

    A query with two bugs may shrink to either: the other shows up alone in other queries.
    """
    original = case.query

    def check(sql: str) -> tuple[str, str, str]:
        params = params_in(sql, original.params)
        return judge(env, case.mode, sql, params, still_ordered(sql, original.ordered))

    def still_fails(sql: str) -> bool:
        outcome, _, kind = check(sql)
        return outcome == case.outcome and (outcome == "wrong" or kind == case.kind)

    case.minimized = minimize(original.sql, still_fails, budget_s=budget_s)
    outcome, detail, kind = check(case.minimized)
    if outcome == case.outcome and (outcome == "wrong" or kind == case.kind):
        params = params_in(case.minimized, original.params)
        flag = (outcome == "wrong" and "ANTI JOIN" in case.minimized.upper()
                and fixed_without_dynamic_filter(env, case.mode, case.minimized, params,
                                                 still_ordered(case.minimized, original.ordered)))
        case.detail, case.fixed_without_dynamic_filter = detail, flag
        case.bug = label(case.failure())
    return case.minimized


# -- a run -------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """Outcome counts per mode, the failures, and how long it took."""

    seeds: list[int]
    count: int
    modes: list[str]
    counts: dict[str, Counter] = field(default_factory=dict)
    failures: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0
    unsynced: dict[str, str] = field(default_factory=dict)

    def new(self) -> list[CaseResult]:
        """Wrong answers and crashes that match no known bug."""
        return [c for c in self.failures if c.outcome in ("wrong", "crash") and c.bug == "new"]


def run(env: RandomEnv, seeds: Iterable[int], count: int, modes: Iterable[str] = MODES, *,
        minimize_policy: str = "first", budget_s: float = 60.0,
        progress: Callable[[str], None] | None = None) -> RunReport:
    """Run ``count`` queries of each seed in each mode; shrink failures per ``minimize_policy``:
    ``all``, ``first`` (every wrong answer and crash, one repro per refusal kind) or ``none``.
    Wrong answers are matched to known bugs on their repro."""
    modes, seeds = list(modes), list(seeds)
    report = RunReport(seeds, count, modes, {m: Counter() for m in modes},
                       unsynced=dict(env.unsynced))
    t0 = time.monotonic()
    internal: dict[str, GeneratedQuery] = {}  # mode -> the last query DuckDB failed internally
    for seed in seeds:
        for i in range(count):
            query = generate_query(env.data, seed, i)
            for case in run_query(env, query, modes):
                case.seed, case.index = seed, i
                if "INTERNAL Error" in case.detail:
                    internal[case.mode] = query
                if INVALIDATED in case.detail:
                    # The engine's DuckDB is dead until the process opens it again: count the
                    # query that killed it, then go on with a new workspace.
                    before = internal.get(case.mode)
                    case.outcome, case.kind = "crash", "crash " + INVALIDATED
                    if before is not None:
                        case.query = GeneratedQuery(
                            f"{before.sql}; {query.sql}", {**before.params, **query.params})
                    case.bug = label(case.failure())
                    env.reopen(case.mode)
                report.counts[case.mode][case.outcome] += 1
                if case.outcome in FAILURES:
                    report.failures.append(case)
            if progress and (i + 1) % 100 == 0:
                progress(f"seed {seed}: {i + 1}/{count} queries, {time.monotonic() - t0:.0f} s")
    if minimize_policy != "none":
        shrunk: set[tuple] = set()
        for case in report.failures:
            key = (case.outcome, case.bug, case.kind, case.mode)
            if INVALIDATED in case.kind:
                continue  # two queries in a row: shown as they ran
            if minimize_policy == "all" or key not in shrunk or case.outcome != "refused":
                shrunk.add(key)
                minimize_case(env, case, budget_s)
    report.seconds = time.monotonic() - t0
    return report


# -- the summary -------------------------------------------------------------------------------


def summary(report: RunReport, examples: int = 1) -> str:
    """The counts per outcome and mode, wrong answers by bug with their repros, refusals by
    kind with an example."""
    lines = [f"random SQL: seeds {report.seeds} x {report.count} queries, modes "
             f"{'+'.join(report.modes)}, {report.seconds:.0f} s"]
    for source, error in report.unsynced.items():
        lines.append(f"  note: sync mode reads '{source}' directly, its sync failed: {error}")
    lines.append(f"  {'outcome':<14}" + "".join(f"{m:>9}" for m in report.modes))
    for outcome in OUTCOMES:
        lines.append(f"  {outcome:<14}" + "".join(f"{report.counts[m][outcome]:>9}"
                                                   for m in report.modes))
    for outcome, title in (("wrong", "WRONG ANSWERS"), ("crash", "CRASHES"),
                           ("refused", "REFUSED VALID SQL")):
        cases = [c for c in report.failures if c.outcome == outcome]
        if not cases:
            continue
        lines.append(f"\n{title} by {'bug' if outcome == 'wrong' else 'kind'}:")
        groups: dict[str, list[CaseResult]] = {}
        for case in cases:
            key = case.bug if outcome == "wrong" else f"{case.kind}  [{case.bug}]"
            if outcome == "wrong" and case.bug == "new":
                key = "new: " + ", ".join(features(case.sql))
            groups.setdefault(key, []).append(case)
        for key, group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            per_mode = Counter(c.mode for c in group)
            lines.append(f"- {key}: " + ", ".join(f"{m} {n}" for m, n in per_mode.items()))
            shown = sorted(group, key=lambda c: (c.minimized is None, len(c.sql)))[:examples]
            for case in shown:
                lines.append(f"    [{case.mode}, seed {case.seed} #{case.index}] "
                             f"{'minimized' if case.minimized else 'as generated'}:")
                lines.append(f"    {case.sql}")
                if params_in(case.sql, case.query.params):
                    lines.append(f"    params: {params_in(case.sql, case.query.params)}")
                lines.append("    " + case.detail.replace("\n", "\n    ")[:600])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.random_sql",
                                     description="Random differential SQL: meterql vs DuckDB.")
    parser.add_argument("--seed", type=int, nargs="+", default=[1])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--mode", choices=("direct", "sync", "both", "hybrid"), default="both",
                        help="hybrid: every source in auto mode with the bound 0, tables synced "
                        "append and read as replica plus delta")
    parser.add_argument("--minimize", choices=("all", "first", "none"), default="first")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds of shrinking per failure")
    parser.add_argument("--examples", type=int, default=1)
    args = parser.parse_args(argv)
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # shrunk queries warn while planning

    from devtools.pgcluster import PostgresCluster
    from tests.support.random_data import open_random_env

    modes = MODES if args.mode == "both" else (args.mode,)
    with PostgresCluster() as pg, tempfile.TemporaryDirectory() as folder:
        env = open_random_env(pg, Path(folder))
        try:
            if "hybrid" in modes:
                ws = env.workspace("hybrid")
                tables = [t.full_name for t in ws.tables() if not t.source == "local"]
                result = ws.query(" UNION ALL ".join(
                    f"SELECT count(*) FROM {t}" for t in tables))  # every table read once
                kinds = [m.get("route", "") for m in result.watermarks]
                print(f"hybrid workspace: {kinds.count('hybrid')} of {len(tables)} tables read "
                      "as replica plus delta", file=sys.stderr)
            report = run(env, args.seed, args.count, modes, minimize_policy=args.minimize,
                         budget_s=args.budget,
                         progress=lambda m: print(m, file=sys.stderr, flush=True))
        finally:
            env.close()
    print(summary(report, args.examples))
    return 1 if report.new() else 0


if __name__ == "__main__":
    sys.exit(main())
