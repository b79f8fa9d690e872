"""The benchmark harness, run as ``python -m benchmarks.harness --scale tiny`` from the
repository root.

Builds the usage-billing dataset in a throwaway PostgreSQL (or --pg-uri), then runs every
query of ``workload.QUERIES`` in each mode: meterql direct, meterql sync, meterql auto (the
default bound, then a bound of 0; the routes chosen are recorded), native PostgreSQL (ADBC),
native DuckDB over the replica file (read-only; the floor for sync), DuckDB's postgres
extension (isolated venv, subprocess), a naive pull-everything-into-Arrow baseline, and last
meterql auto with the PostgreSQL server stopped (failover). Every mode's answer is checked
against native DuckDB's. Writes results.json and report.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import adbc_driver_sqlite.dbapi as adbc_sqlite
import duckdb

import meterql
from benchmarks import duckpg
from benchmarks.common import ROOT, exit_code, machine, versions
from benchmarks.harness import answers, data, report
from benchmarks.harness.workload import CUSTOMER, QUERIES, sql_for

PW_ENV = "METERQL_BENCH_PGPASSWORD"
NAIVE_SCALES = ("tiny", "1gb")  # above, pulling whole tables per query takes minutes each
TINY_EVENTS = 20_000
CALIBRATION_EVENTS = 200_000
MODES = ["meterql_direct", "meterql_sync", "meterql_auto", "meterql_auto_bound0", "duckdb_native",
         "postgres", "duckdb_pg_ext", "naive", "meterql_failover"]
AUTO_BOUNDS = {"meterql_auto": None, "meterql_auto_bound0": 0}  # mode -> max_staleness
FRESH_QUERY = "invoice_run"  # the bound-0 freshness check's query
#: The replica of events keeps its rows by customer, then time: one customer's reads touch a
#: row group or two (a month of every customer then reads the whole replica).
CLUSTER_BY = ["customer_id", "ts"]
FRESH_METER = "api_calls"
FRESH_TS = "2026-03-15 12:00:00+00"  # inside workload.MONTH


def redact(arg: str) -> str:
    """A command-line argument as it may be recorded: a URI's password replaced by ***."""
    value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
    if "://" in value and (pw := urlparse(value).password):
        return arg.replace(f":{pw}@", ":***@")
    return arg


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bar:
    """A rich progress bar for the events load (plain log lines without a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def start(self, total: int, done: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
        self.p = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn())
        self.p.start()
        self.task = self.p.add_task(self.label, total=total, completed=done)

    def advance(self, done: int) -> None:
        self.p.update(self.task, completed=done)

    def stop(self) -> None:
        self.p.stop()


def peak_rss() -> int:
    """The process's peak resident set so far, in bytes. The meterql modes run first, in this
    process (the data load runs inside PostgreSQL), so the figure read right after them is
    meterql's peak; later modes run elsewhere or raise it only afterwards."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def skip(results: dict, mode: str, reason: str) -> None:
    for name in QUERIES:
        results.setdefault(name, {})[mode] = summary([]) | {"rows": None, "error": None,
                                                             "skipped": reason}


def summary(times: list[float]) -> dict:
    if not times:
        return {"median_s": None, "min_s": None, "max_s": None, "runs_s": []}
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "runs_s": times}


def timed(fn, runs: int) -> tuple[list[float], object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def measure(results: dict, mode: str, name: str, fn, runs: int) -> None:
    """One query in one mode; an error is recorded, never fatal."""
    entry = results.setdefault(name, {})
    try:
        times, rows = timed(fn, runs)
        entry[mode] = summary(times) | {"rows": answers.rows(rows), "error": None}
    except Exception as exc:
        entry[mode] = summary([]) | {"rows": None, "error": f"{type(exc).__name__}: {exc}"}
        log(f"  {mode} {name}: ERROR {entry[mode]['error'][:300]}")


# -- modes -----------------------------------------------------------------------------------

def run_meterql(ws, mode: str, results: dict, runs: int) -> None:
    for name in QUERIES:
        sql = sql_for(name, "meterql")
        measure(results, mode, name, lambda sql=sql: ws.query(sql, max_rows=None).rows(), runs)
        if not results[name][mode]["error"]:
            # kept so the report can show what was sent whole and the dynamic filters
            plan = str(ws.explain(sql))
            results[name][mode]["plan_head"] = plan.splitlines()[0]
            if name == "cross_source":
                results[name][mode]["plan"] = plan


def run_duckdb_native(replica: Path, files: dict, results: dict, runs: int) -> None:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"ATTACH '{replica}' AS r (READ_ONLY)")
        con.execute("CREATE TEMP TABLE prices AS SELECT * FROM read_csv(?, header = true, "
                    "columns = {'meter': 'VARCHAR', 'unit_price': 'DECIMAL(12,4)'})",
                    [str(files["prices"])])
        con.execute("CREATE TEMP TABLE dim_customers AS SELECT * FROM read_parquet(?)",
                    [str(files["dim_parquet"])])
        for name in QUERIES:
            sql = sql_for(name, "duckdb")
            measure(results, "duckdb_native", name,
                    lambda sql=sql: con.execute(sql).fetchall(), runs)
    finally:
        con.close()


def run_postgres(pg: data.Pg, results: dict, runs: int) -> None:
    for name in QUERIES:
        sql = sql_for(name, "postgres")

        def go(sql=sql):
            t = pg.arrow(sql)
            return list(zip(*(c.to_pylist() for c in t.columns), strict=True))

        measure(results, "postgres", name, go, runs)


def run_naive(pg: data.Pg, files: dict, results: dict, runs: int) -> None:
    """Pull each table the query needs whole over ADBC into Arrow, then run DuckDB SQL on it."""
    casts = {"events": "CAST(quantity AS DECIMAL(18,6)) AS quantity",
             "plans": "CAST(unit_price AS DECIMAL(12,4)) AS unit_price"}

    def pull(table: str):
        if table == "dim_customers":
            with contextlib.closing(adbc_sqlite.connect(str(files["dim_sqlite"]))) as c, \
                    contextlib.closing(c.cursor()) as cur:
                cur.execute("SELECT * FROM customers")
                return cur.fetch_arrow_table()
        if table == "prices":
            return None  # a local CSV: read by DuckDB directly
        return pg.arrow(f"SELECT * FROM public.{table}")

    for name, q in QUERIES.items():
        sql = sql_for(name, "naive")

        def go(sql=sql, tables=q["tables"]):
            con = duckdb.connect()
            try:
                con.execute("SET TimeZone = 'UTC'")
                for t in tables:
                    if t == "prices":
                        con.execute("CREATE TABLE prices AS SELECT * FROM read_csv(?, header = "
                                    "true, columns = {'meter': 'VARCHAR', 'unit_price': "
                                    "'DECIMAL(12,4)'})", [str(files["prices"])])
                        continue
                    con.register(f"raw_{t}", pull(t))
                    rep = f" REPLACE ({casts[t]})" if t in casts else ""
                    con.execute(f"CREATE VIEW {t} AS SELECT *{rep} FROM raw_{t}")
                return con.execute(sql).fetchall()
            finally:
                con.close()

        measure(results, "naive", name, go, runs)


def run_extension(pg_conninfo: str, files: dict, results: dict, runs: int) -> dict:
    python = duckpg.ensure_venv()
    job = {"conninfo": pg_conninfo, "ext_dir": str(duckpg.EXTENSION_DIR),
           "prices": str(files["prices"]), "dim_parquet": str(files["dim_parquet"]),
           "runs": runs, "queries": {n: sql_for(n, "duckdb_pg_ext") for n in QUERIES}}
    done = subprocess.run(duckpg.worker_command(python, "benchmarks.harness.ext_worker"),
                          input=json.dumps(job), capture_output=True, text=True, check=False,
                          timeout=3600, cwd=ROOT)
    if done.returncode != 0:
        for name in QUERIES:
            results.setdefault(name, {})["duckdb_pg_ext"] = summary([]) | {
                "rows": None, "error": f"worker failed: {done.stderr[-500:]}"}
        log(f"  duckdb_pg_ext: worker failed: {done.stderr[-500:]}")
        return {}
    out = json.loads(done.stdout)
    for name, r in out["queries"].items():
        results.setdefault(name, {})["duckdb_pg_ext"] = summary(r["times"]) | {
            "rows": r["rows"] if r["error"] is None else None, "error": r["error"]}
        if r["error"]:
            log(f"  duckdb_pg_ext {name}: ERROR {r['error'][:300]}")
    return {"duckdb": out["duckdb"], "extension": "duckdb-extension-postgres 1.5.5"}


def route_lines(result) -> list[dict]:
    """The routes a result's plan chose, one dict per table (kind is whatever the planner
    names: replica, source, or a route added later)."""
    return [{"table": r.table, "kind": r.kind, "reason": r.reason, "line": str(r)}
            for r in result.plan.routes]


def run_meterql_auto(ws, mode: str, bound: float | None, results: dict, runs: int) -> None:
    """Every query with ``max_staleness=bound``; the routes of every timed run are kept
    (the last run's as ``routes``; ``routes_varied`` if the runs did not all agree)."""
    for name in QUERIES:
        sql = sql_for(name, "meterql")
        seen: list[list[dict]] = []

        def go(sql=sql, seen=seen):
            result = ws.query(sql, max_rows=None, max_staleness=bound)
            seen.append(route_lines(result))
            return result.rows()

        measure(results, mode, name, go, runs)
        if seen:
            entry = results[name][mode]
            entry["bound"] = bound
            entry["routes"] = seen[-1]
            entry["routes_varied"] = len({tuple((r["table"], r["kind"]) for r in rs)
                                          for rs in seen}) > 1  # the reasons carry the age


def fresh_bound0(ws, pg: data.Pg, events: int, base_rows: list | None, runs: int) -> dict:
    """Freshness with a bound of 0: before each timed run one event is committed at the source
    (customer workload.CUSTOMER, inside the benchmark month, ids past the loaded ones), then
    the invoice run is asked with ``max_staleness=0``. It passes when meterql's answer equals
    native PostgreSQL's at that moment and the affected group's count grew by the rows added
    (against ``base_rows``, the loaded state's answer). The rows are deleted afterwards."""
    sql, pg_sql = sql_for(FRESH_QUERY, "meterql"), sql_for(FRESH_QUERY, "postgres")
    group = [str(CUSTOMER), FRESH_METER]

    def count(rows: list) -> int:
        return next((int(r[2]) for r in rows if r[:2] == group), 0)

    base = None if base_rows is None else count(base_rows)
    out: dict = {"query": FRESH_QUERY, "group": {"customer_id": CUSTOMER, "meter": FRESH_METER},
                 "runs": [], "error": None}
    try:
        for k in range(1, runs + 1):
            pg.exec("INSERT INTO public.events (id, customer_id, meter, ts, quantity) VALUES "
                    f"({events + k}, {CUSTOMER}, '{FRESH_METER}', TIMESTAMPTZ '{FRESH_TS}', "
                    "1.5)")
            t0 = time.perf_counter()  # the row is committed (autocommit)
            result = ws.query(sql, max_rows=None, max_staleness=0)
            seconds = time.perf_counter() - t0
            got = answers.rows(result.rows())
            t = pg.arrow(pg_sql)
            native = answers.rows(zip(*(c.to_pylist() for c in t.columns), strict=True))
            out["runs"].append({
                "seconds": seconds, "rows_added": k, "agrees_with_postgres": got == native,
                "group_count": count(got), "group_grew_by": None if base is None
                else count(got) - base, "routes": route_lines(result)})
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        log(f"  bound-0 freshness: ERROR {out['error'][:300]}")
    finally:
        pg.exec(f"DELETE FROM public.events WHERE id > {events}")  # back to the loaded state
    out |= summary([r["seconds"] for r in out["runs"]])
    out["passed"] = out["error"] is None and len(out["runs"]) == runs and all(
        r["agrees_with_postgres"] and r["group_grew_by"] in (None, r["rows_added"])
        for r in out["runs"])
    return out


def run_failover(ws, cluster, results: dict, runs: int) -> dict:
    """Every query in auto mode with the default bound while the PostgreSQL server is
    shut down; the server is started again (same port) afterwards. A table routed to the
    source with the server up must fail over to the replica and say so in the warnings; one
    routed to the replica never asks the source, so it has nothing to warn about."""
    out: dict = {"queries": {}}
    cluster.pause()
    try:
        for name in QUERIES:
            sql = sql_for(name, "meterql")
            last: dict = {}

            def go(sql=sql, last=last):
                result = ws.query(sql, max_rows=None)
                last["result"] = result
                return result.rows()

            measure(results, "meterql_failover", name, go, runs)
            entry = results[name]["meterql_failover"]
            up = results[name].get("meterql_auto", {}).get("routes") or []
            asked = sorted(r["table"] for r in up  # (only PostgreSQL is stopped)
                           if r["kind"] != "replica" and r["table"].startswith("pg."))
            warnings = list(last["result"].warnings) if "result" in last else []
            named = all(any(t in w and "failover" in w for w in warnings) for t in asked)
            entry["routes"] = route_lines(last["result"]) if "result" in last else []
            entry["warnings"] = warnings
            out["queries"][name] = {"answered": not entry["error"], "warnings": warnings,
                                    "source_tables_with_server_up": asked,
                                    "failover_named": named}
        try:  # past the bound the replica is refused: a bound of 0 must fail, naming the table
            ws.query(sql_for(FRESH_QUERY, "meterql"), max_rows=None, max_staleness=0)
            out["bound0"] = {"error": None}
        except Exception as exc:
            out["bound0"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        cluster.resume()
    return out


# -- checks ----------------------------------------------------------------------------------

def check_answers(results: dict) -> list[str]:
    """Every mode against native DuckDB; the mismatches (and errors) as messages."""
    problems = []
    for name, modes in results.items():
        ref = modes.get("duckdb_native", {}).get("rows")
        if ref is None:
            problems.append(f"{name}: no reference answer (native DuckDB failed)")
            continue
        for mode, r in modes.items():
            if r.get("skipped"):
                continue
            if r["error"]:
                r["agrees"] = False
                problems.append(f"{name}/{mode}: error: {r['error'][:200]}")
                continue
            r["agrees"] = r["rows"] == ref
            if not r["agrees"]:
                diff = [x for x in r["rows"] if x not in ref][:2]
                problems.append(f"{name}/{mode}: {len(r['rows'])} rows vs {len(ref)} expected; "
                                f"e.g. {diff}")
        for r in modes.values():
            r["n_rows"] = len(r["rows"]) if r["rows"] is not None else None
    return problems


# -- main ------------------------------------------------------------------------------------

def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.harness",
                                 description=__doc__.split("\n\n")[1])
    ap.add_argument("--scale", choices=["tiny", *data.SCALES_GB], default="tiny",
                    help="PostgreSQL data size to generate and measure (default: tiny)")
    ap.add_argument("--runs", type=int, default=3,
                    help="timed runs per query and mode after a warm-up; medians are reported "
                    "(default: 3)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results.json + report.md (default docs/benchmarks/SCALE; tiny: a temp "
                    "dir)")
    ap.add_argument("--work", type=Path, default=None,
                    help="workspace and side files (default: a temp dir, removed after)")
    ap.add_argument("--pg-dir", type=Path, default=None,
                    help="keep the generated PostgreSQL cluster in this directory; a rerun reuses "
                    "its loaded tables (default: a throwaway cluster)")
    ap.add_argument("--pg-uri", default=None,
                    help="an existing PostgreSQL database instead of a throwaway cluster "
                    "(tables are created there and kept; a rerun skips loaded tables)")
    return ap.parse_args(argv)


def events_for(scale: str, pg: data.Pg, calib_uri: str | None, info: dict) -> int:
    if scale == "tiny":
        return TINY_EVENTS
    bpe = None
    if calib_uri is not None:  # measure bytes/event on a small load, then extrapolate
        cal = data.Pg(calib_uri)
        try:
            loaded = data.load(cal, CALIBRATION_EVENTS)
            bpe = data.bytes_per_event(loaded)
        finally:
            cal.close()
    bpe = bpe or 190.0  # measured at 200k events on PostgreSQL 15 (docs/benchmarks/1gb)
    info["calibration"] = {"events": CALIBRATION_EVENTS, "bytes_per_event": bpe}
    return int(data.SCALES_GB[scale] * 1024**3 / bpe)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    t_start = time.perf_counter()
    out = args.out or (Path(tempfile.mkdtemp(prefix="meterql-bench-tiny-"))
                       if args.scale == "tiny" else ROOT / "docs" / "benchmarks" / args.scale)
    out.mkdir(parents=True, exist_ok=True)
    own_work = args.work is None
    work = args.work or Path(tempfile.mkdtemp(prefix="meterql-bench-work-"))
    work.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.harness " + " ".join(redact(a) for a in (
        argv if argv is not None else sys.argv[1:]))
    res: dict = {"command": command, "scale": args.scale, "runs": args.runs,
                 "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    cluster = None
    try:
        if args.pg_uri:
            uri = args.pg_uri
            pg = data.Pg(uri)
            calib_uri = None
            u = urlparse(uri)
            os.environ[PW_ENV] = u.password or ""
            meterql_uri = uri.replace(f":{u.password}@", f":env:{PW_ENV}@") if u.password \
                else uri
            conninfo = (f"host={u.hostname} port={u.port or 5432} user={u.username} "
                        f"dbname={u.path.lstrip('/')}")
        else:
            from devtools.pgcluster import PostgresCluster
            cluster = PostgresCluster(keep_dir=args.pg_dir).start()
            db = "bench" if args.pg_dir is None else f"bench_{args.scale}"
            cluster.create_database(db, exist_ok=True)
            uri = cluster.uri(db)
            pg = data.Pg(uri)
            if args.scale != "tiny":
                cluster.create_database("calib", exist_ok=True)
            calib_uri = cluster.uri("calib") if args.scale != "tiny" else None
            os.environ[PW_ENV] = cluster.password
            meterql_uri = (f"postgresql://{cluster.user}:env:{PW_ENV}@{cluster.host}:"
                           f"{cluster.port}/{db}")
            conninfo = f"host={cluster.host} port={cluster.port} user={cluster.user} dbname={db}"
            res["versions"] = versions(cluster)
        os.environ["PGPASSWORD"] = os.environ[PW_ENV]  # for the extension worker

        events = events_for(args.scale, pg, calib_uri, res)
        log(f"scale {args.scale}: {events:,} events")
        res["load"] = data.load(pg, events, Bar("loading events"))
        res["load"]["bytes_per_event"] = data.bytes_per_event(res["load"])
        log(f"loaded: {res['load']}")
        files = data.write_side_files(pg, work)
        shutil.copy(files["prices"], out / "prices.csv")
        pg.exec("DROP TABLE IF EXISTS public.prices")
        pg.exec("CREATE TABLE public.prices (meter text PRIMARY KEY, unit_price numeric(12,4))")
        pg.exec("INSERT INTO public.prices VALUES " + ",".join(
            f"('{m}', {p})" for m, p in data.PRICES.items()))

        results: dict = {}
        home = work / "ws"
        shutil.rmtree(home, ignore_errors=True)
        ws = meterql.connect(home)
        ws.sources.add("pg", meterql_uri, mode="direct")
        ws.sources.add("dim", f"sqlite:///{files['dim_sqlite']}")
        ws.uploads.load(files["prices"], "prices",
                    columns={"meter": "VARCHAR", "unit_price": "DECIMAL(12,4)"})
        rss = res["peak_rss_bytes"] = {"before_meterql": peak_rss()}
        log("meterql direct")
        run_meterql(ws, "meterql_direct", results, args.runs)
        rss["meterql_direct"] = peak_rss()

        log("meterql initial sync")
        ws.sources.set_mode("pg", "sync")
        ws.sync.set_strategy("pg.public.events", "append", "id", cluster_by=CLUSTER_BY)
        t0 = time.perf_counter()
        reports = ws.sync("pg")
        sync_s = time.perf_counter() - t0
        if reports[0].error is not None:
            raise RuntimeError(f"initial sync failed: {reports[0].error}")
        synced = sum(t.rows for t in reports[0].tables)
        res["cluster_by"] = CLUSTER_BY
        res["initial_sync"] = {"seconds": sync_s, "rows": synced, "rows_per_s": synced / sync_s,
                               "tables": {t.table: {"rows": t.rows, "seconds": t.seconds,
                                                    "strategy": t.strategy}
                                          for t in reports[0].tables}}
        log(f"  {synced:,} rows in {sync_s:.2f} s")
        # sync mode reads every source from its replica, as native DuckDB reads its own tables
        ws.sources.set_mode("dim", "sync")
        dim_report = ws.sync("dim")[0]
        res["initial_sync"]["dim"] = {"rows": dim_report.rows, "seconds": dim_report.seconds}
        log("meterql sync")
        run_meterql(ws, "meterql_sync", results, args.runs)
        rss["meterql_sync"] = peak_rss()  # the initial sync included

        ws.sources.set_mode("pg", "auto")  # the replicas stay
        ws.sources.set_mode("dim", "auto")
        for mode, bound in AUTO_BOUNDS.items():
            log(f"meterql auto, bound {'none' if bound is None else bound}")
            run_meterql_auto(ws, mode, bound, results, args.runs)
        log(f"bound-0 freshness: {FRESH_QUERY} after a new row at the source")
        base = results[FRESH_QUERY]["meterql_sync"]["rows"]
        res["freshness_bound0"] = fresh_bound0(ws, pg, events, base, args.runs)
        ws.sources.set_mode("pg", "sync")  # the later steps measure sync mode, as before
        ws.sources.set_mode("dim", "sync")
        ws.close()
        rss["meterql_auto"] = peak_rss()

        replicas = home / "replicas"
        res["replica_bytes"] = {p.name: p.stat().st_size for p in sorted(replicas.iterdir())}
        log("native DuckDB over the replica")
        run_duckdb_native(replicas / "pg.duckdb", files, results, args.runs)
        log("native PostgreSQL")
        run_postgres(pg, results, args.runs)
        log("DuckDB postgres extension")
        res.setdefault("versions", {})["duckdb_pg_ext"] = run_extension(
            conninfo, files, results, args.runs)
        if args.scale in NAIVE_SCALES:
            log("naive ADBC -> Arrow -> DuckDB")
            run_naive(pg, files, results, args.runs)
        else:
            skip(results, "naive", f"skipped at {args.scale}: it pulls every table whole into "
                 "memory for each query (10 s per query already at 1 GB)")

        if cluster is None:
            skip(results, "meterql_failover", "not run with --pg-uri: the harness stops only "
                 "a server it started")
        else:
            log("failover: meterql auto with the PostgreSQL server stopped")
            pg.close()
            ws = meterql.connect(home)
            ws.sources.set_mode("pg", "auto")
            try:
                res["failover"] = run_failover(ws, cluster, results, args.runs)
            finally:
                ws.sources.set_mode("pg", "sync")
                ws.close()
            pg = data.Pg(uri)

        log("incremental sync (0.1% new rows, append on id) and freshness")
        new = max(1, events // 1000)
        wsd = meterql.connect(work / "ws_direct")  # direct mode beside the synced workspace
        if "pg" not in {s.name for s in wsd.sources()}:
            wsd.sources.add("pg", meterql_uri, mode="direct")
        ws = meterql.connect(home)
        fresh_sql = f"SELECT count(*) AS n FROM pg.public.events WHERE id > {events}"
        data.append_events(pg, new, events, data.sizes(events)["customers"])
        t0 = time.perf_counter()  # the new rows are committed at the source
        seen_direct = wsd.query(fresh_sql).rows()[0][0]
        lag_direct = time.perf_counter() - t0
        wsd.close()
        t0 = time.perf_counter()
        reports = ws.sync("pg")
        inc_s = time.perf_counter() - t0
        seen_sync = ws.query(fresh_sql).rows()[0][0]
        lag_sync = time.perf_counter() - t0
        got = ws.query("SELECT count(*) AS n FROM pg.public.events").rows()[0][0]
        ws.close()
        want = pg.count("events")
        res["freshness"] = {
            "direct_s": lag_direct, "direct_rows_seen": seen_direct,
            "sync_s": lag_sync, "sync_rows_seen": seen_sync, "new_rows": new,
            "note": "from the commit of new rows at the source to the first meterql answer that "
                    "includes them; for sync, add the wait for the next scheduled run "
                    "(meterql serve --sync-every)"}
        res["incremental_sync"] = {
            "new_rows": new, "seconds": inc_s,
            "rows": sum(t.rows for t in reports[0].tables),
            "tables": {t.table: {"rows": t.rows, "seconds": t.seconds, "strategy": t.strategy}
                       for t in reports[0].tables},
            "error": None if reports[0].error is None else str(reports[0].error),
            "replica_rows": got, "source_rows": want, "agrees": got == want}
        pg.exec(f"DELETE FROM public.events WHERE id > {events}")  # back to the loaded state
        res["replica_bytes_after"] = {p.name: p.stat().st_size
                                      for p in sorted(replicas.iterdir())}
        pg.close()

        problems = check_answers(results)
        fb = res["freshness_bound0"]
        if not fb["passed"]:
            problems.append(f"bound-0 freshness: {FRESH_QUERY} with max_staleness=0 missed a "
                            f"row committed just before it: {fb['error'] or fb['runs']}")
        for name, f in res.get("failover", {}).get("queries", {}).items():
            if f["answered"] and not f["failover_named"]:
                problems.append(f"failover {name}: warnings {f['warnings']} do not name the "
                                f"failover of {f['source_tables_with_server_up']}")
        if res.get("failover", {}).get("bound0", {"error": "-"})["error"] is None:
            problems.append("failover: a bound of 0 answered with the source stopped")
        for mode in ("direct", "sync"):
            seen = res["freshness"][f"{mode}_rows_seen"]
            if seen != new:
                problems.append(f"freshness: {mode} mode saw {seen} of {new} new rows")
        if not res["incremental_sync"]["agrees"]:
            problems.append(f"incremental sync: replica {got} rows, source {want}")
        res["queries"] = {n: {"what": QUERIES[n]["what"], "sql_duckdb": sql_for(n, "meterql"),
                              "sql_postgres": sql_for(n, "postgres"), "modes": results[n]}
                          for n in QUERIES}
        res["problems"] = problems
        res["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        res["total_s"] = time.perf_counter() - t_start
        report.write(res, out)
        print(report.console(res))
        log(f"wrote {out / 'results.json'} and {out / 'report.md'}")
        return exit_code(problems)
    finally:
        os.environ.pop(PW_ENV, None)
        os.environ.pop("PGPASSWORD", None)
        if cluster is not None:
            cluster.stop()
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
