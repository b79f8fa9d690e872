"""results.json, report.md and (if matplotlib is importable) one PNG chart per query."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.common import fmt_bytes

LABELS = {
    "meterql_direct": "meterql direct",
    "meterql_sync": "meterql sync",
    "duckdb_native": "DuckDB on the replica (floor)",
    "postgres": "native PostgreSQL (ADBC)",
    "duckdb_pg_ext": "DuckDB postgres extension",
    "naive": "naive ADBC pull + DuckDB",
}


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
    if res["problems"]:
        lines += ["## Problems", ""] + [f"- {p}" for p in res["problems"]] + [""]
    return "\n".join(lines)


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
    lines = [f"{'query':<16}" + "".join(f"{m:>16}" for m in LABELS)]
    for name, q in res["queries"].items():
        cells = []
        for m in LABELS:
            r = q["modes"].get(m)
            if r is None or r["median_s"] is None:
                cells.append(f"{'skip' if r and r.get('skipped') else 'ERR':>16}")
            else:
                cells.append(f"{_ms(r['median_s']) + ('' if r.get('agrees') else ' !'):>16}")
        lines.append(f"{name:<16}" + "".join(cells))
    ini, inc = res["initial_sync"], res["incremental_sync"]
    lines.append(f"initial sync {ini['rows']:,} rows {ini['seconds']:.2f} s "
                 f"({ini['rows_per_s']:,.0f} rows/s); incremental {inc['new_rows']} rows "
                 f"{inc['seconds'] * 1000:.0f} ms; total {res['total_s']:.1f} s")
    return "\n".join(lines)
