"""The spark engine against the embedded DuckDB engine, on the harness's dataset and queries.

Run from the repository root::

    .venv/bin/python -m benchmarks.spark --scale tiny --runs 2          # a throwaway cluster
    .venv/bin/python -m benchmarks.spark --scale 1gb --runs 3 --pg-dir /work/benchpg1

The workspace is the harness's (``pg`` and ``dim`` in sync mode, the ``prices`` upload), synced
once. Every query of ``workload.QUERIES`` then runs with engine=duckdb, then engine=spark on a
``local[2]`` and on a ``local[1]`` Spark Connect server, one server at a time: a warm-up pass
over all the queries (a fresh JVM is slow at first), then per query one warm-up and ``--runs``
timed runs (medians). Each spark answer is checked against duckdb's (rows and Arrow types).
The Parquet snapshots the first spark queries write are timed apart ("snapshot export"), and
every spark query's time is split into meterql's steps (the engine's methods are wrapped with
timers for the run); for BREAKDOWN the Spark SQL meterql sent is also run directly through
pyspark over the same snapshot files, which separates Spark's own time from meterql's.
Writes benchmarks/results/spark-SCALE.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import meterql
from benchmarks.common import RESULTS, CpuWatch, exit_code, machine, versions
from benchmarks.harness import answers, data
from benchmarks.harness.run import CLUSTER_BY, PW_ENV, Bar, events_for, log, redact, summary
from benchmarks.harness.workload import QUERIES, sql_for
from devtools.sparkconnect import SERVER_CONF, SparkConnectServer

CORES = [2, 1]  # the default spark servers, in this order; the first writes the snapshots
BREAKDOWN = ("invoice_run", "join_plans")  # also run directly through pyspark
SCALING_QUERY = "invoice_run"
EVENTS = "pg.public.events"
REFUSAL = "the spark engine does not run"
#: the spark engine's steps, timed by wrapping these methods: (module, class or None, name, step)
STEPS = [
    ("meterql.engine.engine", "Engine", "plan", "plan"),
    ("meterql.engine.spark.executor", "SparkExecutor", "_load_fragments", "fragments"),
    ("meterql.engine.spark.executor", "SparkExecutor", "_duckdb_schema", "duckdb_schema"),
    ("meterql.engine.spark.lake", "Lake", "snapshot", "snapshot"),  # includes snapshot_write
    ("meterql.engine.spark.lake", "Lake", "_write", "snapshot_write"),
    ("meterql.connectors.spark_connect", "SparkConnection", "register_parquet", "register"),
    ("meterql.connectors.spark_connect", "SparkConnection", "register_arrow", "register"),
    ("meterql.connectors.spark_connect", "SparkConnection", "run", "spark_run"),
    ("meterql.connectors.spark_connect", "SparkConnection", "drop_views", "drop_views"),
    ("meterql.engine.spark.executor", None, "conform", "conform"),
]


class Probe:
    """Seconds per step of the spark engine (STEPS) while active, plus what Spark was sent:
    the last SQL, the Parquet files of each view, and every snapshot written."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self.sql: str | None = None
        self.views: dict[str, list[str]] = {}  # every Parquet view registered, kept
        self.writes: list[dict] = []
        self._saved: list[tuple[object, str, object]] = []

    def reset(self) -> None:
        self.t.clear()  # (the views stay: the engine keeps them between queries)
        self.sql = None

    def __enter__(self) -> Probe:
        for module, cls, name, step in STEPS:
            owner = importlib.import_module(module)
            owner = getattr(owner, cls) if cls else owner
            fn = getattr(owner, name, None)
            if fn is None:
                log(f"  (no {module}.{cls}.{name} to time: step {step} left out)")
                continue
            self._saved.append((owner, name, owner.__dict__.get(name)))
            setattr(owner, name, self._wrap(fn, name, step))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, fn in reversed(self._saved):
            if fn is None:
                delattr(owner, name)  # it was inherited
            else:
                setattr(owner, name, fn)
        self._saved.clear()

    def _wrap(self, fn, name: str, step: str):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            finally:
                self.t[step] += time.perf_counter() - t0
            if name == "run":
                self.sql = args[1]
            elif name == "register_parquet":
                self.views[args[1]] = list(args[2])
            elif name == "_write":
                self.writes.append({"table": args[2], "seconds": time.perf_counter() - t0,
                                    "rows": out.rows, "files": len(out.files),
                                    "bytes": sum(os.path.getsize(f) for f in out.files)})
            return out
        return timed


def steps_of(probe: Probe, total: float) -> dict[str, float]:
    """One query's seconds per step; ``snapshot`` without the writes, ``other`` the rest."""
    t = dict(probe.t)
    if "snapshot" in t:
        t["snapshot"] -= t.get("snapshot_write", 0.0)
    t["other"] = total - sum(t.values())
    return t


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of a process and its children (the Spark server: a
    JVM uses more than its local[N] task threads, for JIT and garbage collection)."""
    total = 0
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for p in [pid, *map(int, children)]:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{p}/stat").read_text()
            rest = stat[stat.rindex(")") + 2 :].split()
            total += int(rest[11]) + int(rest[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_query(ws, name: str, runs: int, probe: Probe | None = None,
              server_pid: int | None = None) -> dict:
    """One query: a warm-up (its time kept as ``first_s``), then ``runs`` timed runs; with a
    probe, the median seconds of each step; with a server, its CPU seconds per run. An error
    is recorded, a refusal marked."""
    sql = sql_for(name, "meterql")
    times: list[float] = []
    cpu: list[float] = []
    steps: dict[str, list[float]] = defaultdict(list)
    out: dict = {}
    try:
        for k in range(runs + 1):
            if probe:
                probe.reset()
            c0 = cpu_seconds(server_pid) if server_pid else 0.0
            t0 = time.perf_counter()
            result = ws.query(sql, max_rows=None)
            rows = result.rows()
            seconds = time.perf_counter() - t0
            if k == 0:
                out["first_s"] = seconds
                continue
            times.append(seconds)
            if server_pid:
                cpu.append(cpu_seconds(server_pid) - c0)
            if probe:
                for step, s in steps_of(probe, seconds).items():
                    steps[step].append(s)
    except Exception as exc:
        refused = REFUSAL in str(exc)
        log(f"  {name}: {'refused' if refused else 'ERROR'}: {str(exc)[:300]}")
        return summary([]) | {"rows": None, "refused": refused,
                              "error": f"{type(exc).__name__}: {exc}"}
    out |= summary(times) | {"rows": answers.rows(rows), "refused": False, "error": None,
                             "types": [str(f.type) for f in result.table.schema],
                             "fragments": [{"fragment": f.fragment, "rows": f.rows,
                                            "seconds": f.seconds, "note": f.note}
                                           for f in result.fragments]}
    if cpu:
        out["server_cpu_median_s"] = statistics.median(cpu)
        out["server_cores_busy"] = out["server_cpu_median_s"] / out["median_s"]
    if steps:
        out["steps_median_s"] = {k: statistics.median(v) for k, v in steps.items()}
        out["sql_spark"] = probe.sql if probe else None
        out["views"] = {v: f for v, f in probe.views.items()
                        if probe.sql and v in probe.sql} if probe else None
    busy = f", server {out['server_cores_busy']:.2f} cores busy" if cpu else ""
    log(f"  {name}: {out['median_s'] * 1000:.1f} ms (first {out['first_s'] * 1000:.0f} ms"
        f"{busy})")
    return out


def warm_up(ws) -> dict:
    """Every query once (errors ignored: the timed runs record them), so that no query is
    measured on a colder engine (a fresh JVM) than the next; seconds of each."""
    took = {}
    for name in QUERIES:
        t0 = time.perf_counter()
        with contextlib.suppress(Exception):
            ws.query(sql_for(name, "meterql"), max_rows=None).rows()
        took[name] = time.perf_counter() - t0
    return took


def paired(ws, name: str, remote: str, entry: dict, runs: int) -> dict:
    """meterql's query (to Arrow) and the Spark SQL it sent run directly through pyspark, in a
    session of its own over the same snapshot files, alternately (one warm-up each): the
    direct side split into registering the views and the query to Arrow, beside a
    ``SELECT 1`` round trip (the floor of any Spark Connect query)."""
    from pyspark.sql import SparkSession

    from meterql.connectors.spark_connect import SESSION_CONF

    sql = sql_for(name, "meterql")
    spark = SparkSession.builder.remote(remote).create()
    try:
        for key, value in SESSION_CONF.items():
            spark.conf.set(key, value)
        times = defaultdict(list)
        for k in range(runs + 1):
            t0 = time.perf_counter()
            ws.query(sql, max_rows=None)
            t1 = time.perf_counter()
            for view, files in entry["views"].items():
                spark.read.parquet(*files).createOrReplaceTempView(view)
            t2 = time.perf_counter()
            rows = spark.sql(entry["sql_spark"]).toArrow().num_rows
            t3 = time.perf_counter()
            spark.sql("SELECT 1").toArrow()
            t4 = time.perf_counter()
            if k:  # the first is the warm-up
                for key, s in (("meterql_s", t1 - t0), ("direct_views_s", t2 - t1),
                               ("direct_sql_s", t3 - t2), ("select1_s", t4 - t3)):
                    times[key].append(s)
        return {key: summary(v) for key, v in times.items()} | {"rows": rows}
    finally:
        spark.stop()


def snapshot_facts(home: Path, table: str) -> dict:
    """Rows, files and bytes of ``table``'s current snapshot (its manifest.json)."""
    folder = home.joinpath("lake", *table.split(".", 2))
    manifest = json.loads((folder / "manifest.json").read_text())
    files = [folder / f for part in manifest["parts"].values() for f in part["files"]]
    return {"rows": manifest["rows"], "files": len(files), "grain": manifest["grain"],
            "bytes": sum(f.stat().st_size for f in files)}


def build_workspace(args, work: Path, res: dict):
    """The harness's cluster, data and workspace (sources in sync mode, synced):
    (cluster or None, workspace)."""
    from devtools.pgcluster import PostgresCluster

    cluster = PostgresCluster(keep_dir=args.pg_dir).start()
    try:
        db = "bench" if args.pg_dir is None else f"bench_{args.scale}"
        cluster.create_database(db, exist_ok=True)
        pg = data.Pg(cluster.uri(db))
        calib_uri = None
        if args.scale != "tiny":
            cluster.create_database("calib", exist_ok=True)
            calib_uri = cluster.uri("calib")
        os.environ[PW_ENV] = cluster.password
        res["versions"] = versions(cluster)
        events = events_for(args.scale, pg, calib_uri, res)
        log(f"scale {args.scale}: {events:,} events")
        res["load"] = data.load(pg, events, Bar("loading events"))
        log(f"loaded: {res['load']}")
        files = data.write_side_files(pg, work)
        pg.close()

        ws = meterql.connect(work / "ws")
        ws.sources.add("pg", f"postgresql://{cluster.user}:env:{PW_ENV}@{cluster.host}:"
                       f"{cluster.port}/{db}", mode="direct")
        ws.sources.add("dim", f"sqlite:///{files['dim_sqlite']}")
        ws.uploads.load(files["prices"], "prices",
                        columns={"meter": "VARCHAR", "unit_price": "DECIMAL(12,4)"})
        log("initial sync")
        ws.sources.set_mode("pg", "sync")
        ws.sync.set_strategy(EVENTS, "append", "id", cluster_by=CLUSTER_BY)
        ws.sources.set_mode("dim", "sync")
        t0 = time.perf_counter()
        reports = ws.sync()
        res["initial_sync_s"] = time.perf_counter() - t0
        errors = [str(r.error) for r in reports if r.error is not None]
        if errors:
            raise RuntimeError(f"initial sync failed: {errors}")
        log(f"  {res['initial_sync_s']:.1f} s")
        return cluster, ws
    except BaseException:
        cluster.stop()
        raise


def check(results: dict) -> list[str]:
    """Every spark answer (and its Arrow types) against duckdb's; refusals are no problem."""
    problems = []
    for name, engines in results.items():
        ref = engines["duckdb"]
        if ref["error"]:
            problems.append(f"{name}/duckdb: error: {ref['error'][:300]}")
            continue
        for label, r in engines.items():
            if label == "duckdb" or r["refused"]:
                continue
            if r["error"]:
                problems.append(f"{name}/{label}: error: {r['error'][:300]}")
                continue
            r["agrees"] = r["rows"] == ref["rows"]
            if not r["agrees"]:
                only_spark = [x for x in r["rows"] if x not in ref["rows"]][:3]
                only_duck = [x for x in ref["rows"] if x not in r["rows"]][:3]
                problems.append(f"{name}/{label}: {len(r['rows'])} rows vs duckdb's "
                                f"{len(ref['rows'])}; spark only {only_spark}, duckdb only "
                                f"{only_duck}")
            if r["types"] != ref["types"]:
                problems.append(f"{name}/{label}: types {r['types']} vs duckdb's {ref['types']}")
    return problems


def ms(entry: dict | None) -> str:
    if entry is None or entry.get("median_s") is None:
        return "refused" if entry and entry.get("refused") else "error"
    return f"{entry['median_s'] * 1000:.1f}"


def ratio(a: dict, b: dict) -> str:
    if a.get("median_s") is None or b.get("median_s") is None:
        return "-"
    return f"{a['median_s'] / b['median_s']:.2f}x"


def console(res: dict) -> str:
    cores = res["cores"] + res["cores"][:1] * (2 - len(res["cores"]))  # one server: twice
    s2, s1 = (f"spark[{c}]" for c in cores[:2])
    head = ["query", "duckdb ms", f"{s2} ms", f"{s1} ms", "spark2/duckdb", "spark1/spark2"]
    rows = [[n, ms(e["duckdb"]), ms(e[s2]), ms(e[s1]), ratio(e[s2], e["duckdb"]),
             ratio(e[s1], e[s2])] for n, e in res["queries"].items()]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"spark engine vs duckdb, scale {res['scale']}, medians of {res['runs']} runs"]
    lines += ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True)))
              for r in [head, *rows]]
    for n, e in res["queries"].items():
        for label in (s2, s1):
            if e[label]["refused"]:
                lines.append(f"  {n} on {label}: {e[label]['error'][:200]}")
    lines.append("Spark server's cores busy while a query runs (its CPU s / wall s), "
                 f"{s2} / {s1}: " + ", ".join(
                     f"{n} {e[s2]['server_cores_busy']:.2f} / {e[s1]['server_cores_busy']:.2f}"
                     for n, e in res["queries"].items() if e[s2].get("server_cores_busy")
                     and e[s1].get("server_cores_busy")))
    lines.append("")
    for label, srv in res["servers"].items():
        lines.append(f"{label}: server start {srv['start_s']:.1f} s, first query "
                     f"{srv['first_query_s']:.2f} s (session, JIT"
                     f"{', snapshot export' if srv['snapshot_writes'] else ''})")
    for w in res["snapshot_export"]:
        lines.append(f"snapshot export {w['table']}: {w['seconds']:.2f} s, {w['rows']:,} rows, "
                     f"{w['bytes'] / 1e6:.1f} MB in {w['files']} file(s)")
    for name, b in res["breakdown"].items():
        for label, steps in b["steps_ms"].items():
            lines.append(f"{name} on {label}, ms per step: " + ", ".join(
                f"{k} {v:.1f}" for k, v in steps.items()))
        if "direct" in b:
            d = b["direct"]
            lines.append(f"{name} on {s2}, alternating: meterql (to Arrow) "
                         f"{d['meterql_s']['median_s'] * 1000:.1f} ms; pyspark directly: views "
                         f"{d['direct_views_s']['median_s'] * 1000:.1f} ms + sql to Arrow "
                         f"{d['direct_sql_s']['median_s'] * 1000:.1f} ms; SELECT 1 "
                         f"{d['select1_s']['median_s'] * 1000:.1f} ms")
    sc = res["scaling"]
    if sc["events_rows"]:
        lines.append(f"{sc['query']} at {res['scale']}: {sc['events_rows']:,} events, snapshot "
                     f"{sc['events_snapshot_bytes'] / 1e6:.1f} MB by {sc.get('events_grain')} "
                     "(rates over the table's events; Spark skips the partitions outside the "
                     "query's month); " + ", ".join(
                         f"{k}: {v['rows_per_s_per_core'] / 1e6:.2f} M rows/s/core, "
                         f"{v['mb_per_s_per_core']:.1f} MB/s/core (by the server's CPU time: "
                         f"{v['rows_per_cpu_s'] / 1e6:.2f} M rows/s, "
                         f"{v['mb_per_cpu_s']:.1f} MB/s)" for k, v in sc["per_core"].items()))
    return "\n".join(lines)


def combined_scaling() -> str | None:
    """The scaling line across scales, when results of more than one are on disk."""
    got = {}
    for path in sorted(RESULTS.glob("spark-*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            got[path.stem.split("-", 1)[1]] = json.loads(path.read_text())["scaling"]
    if len(got) < 2:
        return None
    return f"{SCALING_QUERY} across scales (spark[2]): " + "; ".join(
        f"{k}: {v['events_rows']:,} events in {v['spark2_s']:.2f} s" for k, v in got.items()
        if v.get("spark2_s"))


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.spark",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=["tiny", *data.SCALES_GB], default="tiny")
    ap.add_argument("--runs", type=int, default=3,
                    help="timed runs per query and engine after a warm-up (default: 3)")
    ap.add_argument("--pg-dir", type=Path, default=None,
                    help="the PostgreSQL cluster of this scale (loaded by the harness or "
                    "reused; default: a throwaway cluster)")
    ap.add_argument("--cores", type=int, nargs="+", default=CORES,
                    help="the local[N] Spark servers to measure, in order (default: 2 1)")
    ap.add_argument("--driver-memory", default="2g",
                    help="the Spark servers' spark.driver.memory (default: 2g)")
    ap.add_argument("--wait-idle", type=float, default=30,
                    help="before each engine's pass, wait up to this many seconds for the "
                    "machine to go quiet (default: 30)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results JSON (default: benchmarks/results/spark-SCALE.json)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    t_start = time.perf_counter()
    out = args.out or RESULTS / f"spark-{args.scale}.json"
    conf = {"spark.driver.memory": args.driver_memory}
    res: dict = {"command": "python -m benchmarks.spark " + " ".join(
                     redact(a) for a in (argv if argv is not None else sys.argv[1:])),
                 "scale": args.scale, "runs": args.runs, "cores": args.cores, "machine": machine(),
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "spark_conf": {**SERVER_CONF, **conf}, "servers": {}, "breakdown": {}}
    work = Path(tempfile.mkdtemp(prefix="meterql-bench-spark-"))
    cluster = None
    try:
        cluster, ws = build_workspace(args, work, res)
        results: dict = {name: {} for name in QUERIES}
        idle = res["waited_for_idle_s"] = {}
        idle["duckdb"] = CpuWatch(None).wait_idle(args.wait_idle)
        log("engine duckdb")
        ws.settings.set("engine", "duckdb")
        res["warm_up_s"] = {"duckdb": warm_up(ws)}
        for name in QUERIES:
            results[name]["duckdb"] = run_query(ws, name, args.runs)

        with Probe() as probe:
            for cores in args.cores:
                label = f"spark[{cores}]"
                idle[label] = CpuWatch(None).wait_idle(args.wait_idle)
                log(f"engine spark, local[{cores}]: starting the server")
                t0 = time.perf_counter()
                with SparkConnectServer(cores=cores, conf=conf) as server:
                    srv = res["servers"][label] = {"start_s": time.perf_counter() - t0}
                    ws.settings.set("spark_remote", server.remote)
                    ws.settings.set("engine", "spark")
                    writes_before = len(probe.writes)
                    pid = server._proc.pid if server._proc else None  # (the JVM)
                    log("  a warm-up pass over the queries")
                    took = res["warm_up_s"][label] = warm_up(ws)
                    srv["first_query_s"] = next(iter(took.values()))
                    srv["snapshot_writes"] = len(probe.writes) - writes_before
                    for name in QUERIES:
                        results[name][label] = run_query(ws, name, args.runs, probe, pid)
                    for name in BREAKDOWN:
                        e = results[name][label]
                        if e.get("steps_median_s") is None:
                            continue
                        b = res["breakdown"].setdefault(name, {"steps_ms": {}})
                        b["steps_ms"][label] = {k: v * 1000
                                                for k, v in e["steps_median_s"].items()}
                        if cores == args.cores[0] and e.get("views") and e.get("sql_spark"):
                            log(f"  {name} through pyspark directly")
                            try:
                                b["direct"] = paired(ws, name, server.remote, e, args.runs)
                            except Exception as exc:
                                b["direct_error"] = f"{type(exc).__name__}: {exc}"
                                log(f"  direct pyspark: ERROR {b['direct_error'][:300]}")
                    ws.settings.set("engine", "duckdb")
                    ws.close()  # the spark session ends before its server
                    ws = meterql.connect(work / "ws")
        res["snapshot_export"] = probe.writes
        ws.close()

        try:
            events = snapshot_facts(work / "ws", EVENTS)
        except OSError:  # no spark query ran
            events = {"rows": None, "files": None, "bytes": None, "grain": None}
        q = results[SCALING_QUERY]
        res["scaling"] = {"query": SCALING_QUERY, "events_rows": events["rows"],
                          "events_snapshot_bytes": events["bytes"],
                          "events_snapshot_files": events["files"],
                          "events_grain": events["grain"],
                          "duckdb_s": q["duckdb"]["median_s"], "per_core": {}}
        for cores in args.cores:
            median = q[f"spark[{cores}]"]["median_s"]
            res["scaling"][f"spark{cores}_s"] = median
            if median and events["rows"]:
                cpu = q[f"spark[{cores}]"]["server_cpu_median_s"]
                res["scaling"]["per_core"][f"spark[{cores}]"] = {
                    "rows_per_s_per_core": events["rows"] / median / cores,
                    "mb_per_s_per_core": events["bytes"] / 1e6 / median / cores,
                    "server_cpu_s": cpu, "rows_per_cpu_s": events["rows"] / cpu,
                    "mb_per_cpu_s": events["bytes"] / 1e6 / cpu}

        problems = check(results)
        for engines in results.values():  # answers are checked, not stored (as the harness)
            for r in engines.values():
                rows = r.pop("rows", None)
                r["n_rows"] = None if rows is None else len(rows)
        res["queries"] = results
        res["problems"] = problems
        res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        res["total_s"] = time.perf_counter() - t_start
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2, default=str) + "\n")
        print(console(res))
        if (line := combined_scaling()) is not None:
            print(line)
        log(f"wrote {out}")
        return exit_code(problems)
    finally:
        os.environ.pop(PW_ENV, None)
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
