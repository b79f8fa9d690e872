"""results.json, report.md and (if matplotlib is importable) one PNG chart per query."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.common import fmt_bytes

LABELS = {
    "meterql_direct": "meterql direct",
    "meterql_sync": "meterql sync",
    "meterql_auto": "meterql auto",
    "meterql_auto_bound0": "meterql auto, bound 0",
    "duckdb_native": "DuckDB on the replica (floor)",
    "postgres": "native PostgreSQL (ADBC)",
    "duckdb_pg_ext": "DuckDB postgres extension",
    "naive": "naive ADBC pull + DuckDB",
    "meterql_failover": "meterql auto, PostgreSQL stopped",
}
AUTO_TARGET = 1.15  # auto within this factor of min(direct, sync), per query
BOUND0_SYNC_TARGET = 1.5  # bound-0 invoice run at most this factor of sync's
BOUND0_DIRECT_TARGET = 1 / 3  # ... and of direct's (the target is set at 10 GB)
PRICE_LIST_TARGET = 1.1  # direct price_list within this factor of native PostgreSQL
POINT_GAP_TARGET_S = 0.002  # direct customer_month within this of native PostgreSQL
SYNC_FLOOR_TARGET = 1.2  # every sync query within this factor of native DuckDB on the replica
SYNC_POINT_TARGET = 1.2  # sync customer_month within this factor of direct's
WHOLE_QUERY = "monthly_berlin"  # must be sent whole to PostgreSQL in direct mode


def _median(res: dict, query: str, mode: str) -> float | None:
    return res["queries"].get(query, {}).get("modes", {}).get(mode, {}).get("median_s")


def auto_ratios(res: dict) -> dict[str, dict]:
    """Per query: auto's median over the faster of direct and sync (None where a mode has no
    time), and whether it is within AUTO_TARGET."""
    out = {}
    for name in res["queries"]:
        auto = _median(res, name, "meterql_auto")
        best = [t for t in (_median(res, name, "meterql_direct"),
                            _median(res, name, "meterql_sync")) if t is not None]
        ratio = auto / min(best) if auto is not None and best else None
        out[name] = {"ratio": ratio, "met": None if ratio is None else ratio <= AUTO_TARGET}
    return out


def bound0_figures(res: dict) -> dict | None:
    """The bound-0 invoice run (the freshness check's median, a new row before each run)
    against the sync and direct medians of the same query; None before these modes existed."""
    fb = res.get("freshness_bound0")
    if not fb or fb.get("median_s") is None:
        return None
    t, q = fb["median_s"], fb["query"]
    sync, direct = _median(res, q, "meterql_sync"), _median(res, q, "meterql_direct")
    vs_sync = t / sync if sync else None
    vs_direct = t / direct if direct else None
    return {"query": q, "median_s": t, "passed": fb["passed"], "vs_sync": vs_sync,
            "vs_direct": vs_direct,
            "sync_met": None if vs_sync is None else vs_sync <= BOUND0_SYNC_TARGET,
            "direct_met": None if vs_direct is None else vs_direct <= BOUND0_DIRECT_TARGET}


def _ms(s: float | None) -> str:
    return "-" if s is None else f"{s * 1000:.1f}"


def _x(base: float | None, s: float | None) -> str:
    return "-" if not base or not s else f"{base / s:.2f}x"


def write(res: dict, out: Path) -> None:
    slim = json.loads(json.dumps(res, default=str))
    for q in slim["queries"].values():  # answers are checked, not stored (they can be large)
        for m in q["modes"].values():
            m.pop("rows", None)
    (out / "results.json").write_text(json.dumps(slim, indent=2) + "\n")
    (out / "report.md").write_text(markdown(res, charts(res, out)))


def markdown(res: dict, pngs: dict[str, str]) -> str:
    ld = res["load"]
    lines = [
        f"# meterql benchmark: scale {res['scale']}", "",
        f"Command: `{res['command']}`", "",
        f"Machine: {res['machine'].get('cpu')}, {res['machine'].get('nproc')} CPUs, "
        f"{res['machine'].get('memory')}; versions: "
        + ", ".join(f"{k} {v}" for k, v in res.get("versions", {}).items()
                    if isinstance(v, str)), "",
        f"Data: {ld['rows']['events']:,} events, {ld['rows']['customers']:,} customers, "
        f"{ld['rows']['plans']} plans; PostgreSQL size (tables + indexes) "
        f"{fmt_bytes(sum(ld['bytes'].values()))} = {ld['bytes_per_event']:.0f} bytes/event."
        + (f" Scale sized from {res['calibration']['bytes_per_event']:.0f} bytes/event measured "
           f"on a {res['calibration']['events']:,}-event load." if "calibration" in res else ""),
        "",
        f"Times in ms: median of {res['runs']} runs after one warm-up, with min and max. "
        "Speed-up = the peer's median / this mode's median. Every answer is checked against "
        "native DuckDB's (rows sorted, decimals compared exactly).", "",
    ]
    for name, q in res["queries"].items():
        modes = q["modes"]
        pgm = modes.get("postgres", {}).get("median_s")
        ext = modes.get("duckdb_pg_ext", {}).get("median_s")
        lines += [f"## {name}: {q['what']}", "", f"```sql\n{q['sql_duckdb']}\n```", "",
                  "| mode | median | min | max | vs PostgreSQL | vs extension | rows | agrees |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        skipped = [f"{LABELS.get(m, m)}: {r['skipped']}" for m, r in modes.items()
                   if r.get("skipped")]
        for mode, r in modes.items():
            if r.get("skipped"):
                continue
            ok = "ERROR" if r.get("error") else ("yes" if r.get("agrees") else "**NO**")
            lines.append(f"| {LABELS.get(mode, mode)} | {_ms(r['median_s'])} | {_ms(r['min_s'])}"
                         f" | {_ms(r['max_s'])} | {_x(pgm, r['median_s'])} | "
                         f"{_x(ext, r['median_s'])} | {r.get('n_rows', '-')} | {ok} |")
        if skipped:
            lines += ["", "Not run: " + "; ".join(skipped) + "."]
        chosen = [(m, r) for m in ("meterql_auto", "meterql_auto_bound0", "meterql_failover")
                  if (r := modes.get(m)) and r.get("routes")]
        if chosen:
            lines += ["", "What auto chose and why:", "",
                      "| mode | table | route | reason |", "|---|---|---|---|"]
            for m, r in chosen:
                for rt in r["routes"]:
                    lines.append(f"| {LABELS.get(m, m)} | {rt['table']} | {rt['kind']} | "
                                 f"{rt['reason']} |")
                if r.get("routes_varied"):
                    lines.append(f"| {LABELS.get(m, m)} | | | the routes differed between "
                                 "runs; the last run's are shown |")
        if name in pngs:
            lines += ["", f"![{name}]({pngs[name]})"]
        lines.append("")
    ini, inc = res["initial_sync"], res["incremental_sync"]
    rss, fr = res["peak_rss_bytes"], res["freshness"]
    lines += [
        "## Sync", "",
        f"- Initial sync: {ini['rows']:,} rows in {ini['seconds']:.2f} s "
        f"({ini['rows_per_s']:,.0f} rows/s).",
        f"- Incremental sync (append on id): {inc['new_rows']:,} new rows (0.1%) in "
        f"{inc['seconds'] * 1000:.0f} ms (the whole source: small tables are re-copied "
        f"whole each time; {inc['rows']:,} rows in all); replica "
        f"{inc['replica_rows']:,} rows vs source {inc['source_rows']:,} "
        f"({'agrees' if inc['agrees'] else 'MISMATCH'}).",
        "- Replica files: " + ", ".join(f"{k} {fmt_bytes(v)}"
                                        for k, v in res["replica_bytes_after"].items()) + ".",
        f"- Peak memory (RSS) of the meterql process: {fmt_bytes(rss['meterql_direct'])} after "
        f"the direct-mode queries, {fmt_bytes(rss['meterql_sync'])} after the initial sync and "
        f"the sync-mode queries (the process held {fmt_bytes(rss['before_meterql'])} before "
        "meterql started; PostgreSQL not included).",
        f"- Freshness lag (commit at the source to the first answer that includes the new "
        f"rows): direct {fr['direct_s'] * 1000:.0f} ms (one query); sync "
        f"{fr['sync_s'] * 1000:.0f} ms (an incremental sync, then the query) plus the wait for "
        "the next scheduled sync.", "",
    ]
    lines += planner_section(res)
    lines += auto_section(res)
    if res["problems"]:
        lines += ["## Problems", ""] + [f"- {p}" for p in res["problems"]] + [""]
    return "\n".join(lines)


def _ratio(v: float | None, met: bool | None) -> str:
    return "-" if v is None else f"{v:.2f}x" + ("" if met else " **(missed)**")


def planner_targets(res: dict) -> list[dict]:
    """The planner's targets, each with its figure and whether it is met (``None`` when a
    figure is missing)."""
    rows = []

    def add(what: str, figure: str, met: bool | None) -> None:
        rows.append({"what": what, "figure": figure, "met": met})

    direct, pgm = (_median(res, "price_list", m) for m in ("meterql_direct", "postgres"))
    ratio = direct / pgm if direct and pgm else None
    add(f"direct price_list within {PRICE_LIST_TARGET}x of native PostgreSQL",
        _ratio(ratio, None if ratio is None else ratio <= PRICE_LIST_TARGET),
        None if ratio is None else ratio <= PRICE_LIST_TARGET)
    direct, pgm = (_median(res, "customer_month", m) for m in ("meterql_direct", "postgres"))
    gap = direct - pgm if direct is not None and pgm is not None else None
    add(f"direct customer_month within {POINT_GAP_TARGET_S * 1000:.0f} ms of native PostgreSQL",
        "-" if gap is None else f"{gap * 1000:+.1f} ms ({_ms(direct)} vs {_ms(pgm)})",
        None if gap is None else gap <= POINT_GAP_TARGET_S)
    plan = res["queries"].get(WHOLE_QUERY, {}).get("modes", {}).get(
        "meterql_direct", {}).get("plan_head")
    add(f"direct {WHOLE_QUERY} (date_trunc over AT TIME ZONE) sent whole to PostgreSQL",
        plan or "-", None if plan is None else plan.startswith("Plan: the whole query"))
    for name in res["queries"]:
        sync, floor = (_median(res, name, m) for m in ("meterql_sync", "duckdb_native"))
        ratio = sync / floor if sync and floor else None
        add(f"sync {name} within {SYNC_FLOOR_TARGET}x of native DuckDB on the replica",
            _ratio(ratio, None if ratio is None else ratio <= SYNC_FLOOR_TARGET),
            None if ratio is None else ratio <= SYNC_FLOOR_TARGET)
    sync, direct = (_median(res, "customer_month", m) for m in ("meterql_sync", "meterql_direct"))
    ratio = sync / direct if sync and direct else None
    add(f"sync customer_month within {SYNC_POINT_TARGET}x of direct's",
        _ratio(ratio, None if ratio is None else ratio <= SYNC_POINT_TARGET),
        None if ratio is None else ratio <= SYNC_POINT_TARGET)
    return rows


def planner_section(res: dict) -> list[str]:
    """The planner's targets as a table."""
    if "monthly_berlin" not in res["queries"]:
        return []
    lines = ["## Planner targets", "",
             "Sync mode reads every source from its replica (the SQLite customers too); the "
             f"events replica is clustered by ({', '.join(res.get('cluster_by', []))}).", "",
             "| target | figure | met |", "|---|---|---|"]
    for row in planner_targets(res):
        met = "-" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(f"| {row['what']} | {row['figure']} | {met} |")
    return lines + [""]


def auto_section(res: dict) -> list[str]:
    """Auto mode against its targets, the bound-0 freshness check and the failover."""
    if "freshness_bound0" not in res:
        return []
    lines = ["## Auto mode", "",
             f"Auto (default bound) against the faster of direct and sync; target: within "
             f"{AUTO_TARGET}x.", "",
             "| query | direct | sync | auto | auto / min(direct, sync) | auto, bound 0 |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in auto_ratios(res).items():
        lines.append(f"| {name} | {_ms(_median(res, name, 'meterql_direct'))} | "
                     f"{_ms(_median(res, name, 'meterql_sync'))} | "
                     f"{_ms(_median(res, name, 'meterql_auto'))} | "
                     f"{_ratio(r['ratio'], r['met'])} | "
                     f"{_ms(_median(res, name, 'meterql_auto_bound0'))} |")
    fb, b0 = res["freshness_bound0"], bound0_figures(res)
    lines += ["", f"Bound 0 (live): before each of {len(fb['runs'])} runs one event is "
              f"committed at the source (customer {fb['group']['customer_id']}, meter "
              f"{fb['group']['meter']}, inside the month), then {fb['query']} is asked with "
              "max_staleness=0; the answer must equal native PostgreSQL's at that moment and the "
              "group's count must have grown by the rows added. The rows are deleted after.", ""]
    for i, r in enumerate(fb["runs"], 1):
        lines.append(f"- run {i}: {r['seconds'] * 1000:.1f} ms, "
                     f"{'equals' if r['agrees_with_postgres'] else '**differs from**'} "
                     f"PostgreSQL, group count grew by {r['group_grew_by']} "
                     f"(rows added {r['rows_added']}); routes: "
                     + "; ".join(rt["line"] for rt in r["routes"]))
    if fb["error"]:
        lines.append(f"- **error**: {fb['error']}")
    if b0 is not None:
        verdict = "passed" if b0["passed"] else "**FAILED**"
        lines += ["", f"- Median {b0['median_s'] * 1000:.1f} ms ({verdict}): "
                  f"{_ratio(b0['vs_sync'], b0['sync_met'])} sync's median (target <= "
                  f"{BOUND0_SYNC_TARGET}x), {_ratio(b0['vs_direct'], b0['direct_met'])} "
                  "direct's (target <= 1/3 at 10 GB)."]
    fo = res.get("failover")
    if fo:
        lines += ["", "Failover: PostgreSQL shut down, every query in auto mode with the "
                  "default bound (answers checked against native DuckDB in the tables above).",
                  "", "| query | answered | source tables with the server up | warnings |",
                  "|---|---|---|---|"]
        for name, f in fo["queries"].items():
            lines.append(f"| {name} | {'yes' if f['answered'] else '**no**'} | "
                         f"{', '.join(f['source_tables_with_server_up']) or 'none'} | "
                         f"{'; '.join(f['warnings']) or 'none (the replica was the route)'} |")
        err = fo.get("bound0", {}).get("error")
        lines += ["", "With the server stopped a bound of 0 is refused: "
                  + (f"`{err}`" if err else "**it answered**") + "."]
    return lines + [""]


def charts(res: dict, out: Path) -> dict[str, str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    pngs = {}
    for name, q in res["queries"].items():
        modes = [(LABELS.get(m, m), r["median_s"]) for m, r in q["modes"].items()
                 if r["median_s"] is not None]
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.barh([m for m, _ in modes], [s * 1000 for _, s in modes])
        ax.set_xscale("log")  # the modes differ by up to three orders of magnitude
        ax.set_xlabel("median ms (log scale)")
        ax.set_title(name)
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=100)
        plt.close(fig)
        pngs[name] = f"{name}.png"
    return pngs


def console(res: dict) -> str:
    lines = [f"{'query':<16}" + "".join(f"{m:>{max(16, len(m) + 1)}}" for m in LABELS)]
    for name, q in res["queries"].items():
        cells = []
        for m in LABELS:
            r = q["modes"].get(m)
            w = max(16, len(m) + 1)
            if r is None or r["median_s"] is None:
                cells.append(f"{'skip' if r and r.get('skipped') else 'ERR':>{w}}")
            else:
                cells.append(f"{_ms(r['median_s']) + ('' if r.get('agrees') else ' !'):>{w}}")
        lines.append(f"{name:<16}" + "".join(cells))
    ini, inc = res["initial_sync"], res["incremental_sync"]
    lines.append(f"initial sync {ini['rows']:,} rows {ini['seconds']:.2f} s "
                 f"({ini['rows_per_s']:,.0f} rows/s); incremental {inc['new_rows']} rows "
                 f"{inc['seconds'] * 1000:.0f} ms; total {res['total_s']:.1f} s")
    return "\n".join(lines)
