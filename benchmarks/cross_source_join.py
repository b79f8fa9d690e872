"""Benchmark: a cross-source join (PostgreSQL events x SQLite customers) through meterql,
against the same SQL run natively in DuckDB over the same data loaded locally.

Run from the repo root (takes about a minute with the defaults on 2 cores):

    .venv/bin/python -m benchmarks.cross_source_join [--rows 1000000] [--runs 5]

What it does, in one process and one run:

1. Starts a throwaway PostgreSQL (devtools/pgcluster.py) and creates ``public.events``
   (``--rows`` rows: id bigint pk, customer_id int, meter text, ts timestamptz rising over 2026,
   quantity numeric(18,6)) server-side with ``INSERT ... SELECT ... FROM generate_series``
   (deterministic: ``setseed``), an index on (customer_id, ts), VACUUM ANALYZE; and a SQLite file
   with ``customers`` (1,000 rows: id, name, plan, country) made with Python's sqlite3.
2. Registers both in a fresh workspace (temp dir) as ``pg`` and ``lite``.
3. Copies both tables once into an in-memory DuckDB under the same names (``pg.public.events``,
   ``lite.main.customers``) over ADBC/Arrow: the native baseline runs the same SQL text.
4. For each query: 1 warm-up + ``--runs`` timed runs through meterql and natively; median, min,
   max, the ratio to native, rows and bytes per fragment (Arrow bytes, ``result.fragments``),
   meterql's time split (planning, each fragment, residual); and an assertion that meterql and
   native return identical rows and column types.
5. Reference paths that are not meterql, each over one warm ADBC connection (as meterql's pool):
   ``adbc_pull``: the PostgreSQL fragment's own SQL fetched alone into Arrow (the transfer floor of
   today's plan); ``adbc_pull_text``: the same with the NUMERIC column selected as text and cast to
   decimal128 in Arrow (exact; what ``fetch_as_text`` already does for SQLite); ``pg_partial_agg``:
   a hand-written plan that pushes ``GROUP BY customer_id`` into PostgreSQL and finishes the join in
   DuckDB; ``pg_dynamic_filter`` (``month_enterprise`` only): the SQLite side's join keys pushed
   into the PostgreSQL scan as ``customer_id = ANY($1)``. The last two must return the native rows.
6. Samples the machine's CPU from /proc during every measurement and reports the cores used by
   other processes (``other``) and the hypervisor's steal: this VM is shared, and a busy
   neighbour should show there rather than as a mystery in the medians. Before each
   measurement it waits (up to ``--wait-idle`` seconds) for the others to go quiet.

Prints a table and writes ``benchmarks/results/cross_source_join.json``.

Profiling: ``--profile`` prints a cProfile of planning alone (``Workspace.explain``, which is
single-threaded). ``--py-spy PATH`` (a py-spy binary, e.g. ``pip install py-spy`` into a scratch
venv) samples all threads with native frames while meterql runs ``--profile-query`` in a loop for
``--profile-seconds``, and prints the hottest frames; fragments are read by DuckDB's own threads
calling back into Python, which cProfile cannot see.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc_pg
import adbc_driver_sqlite.dbapi as adbc_sqlite
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp

import meterql
from benchmarks.common import (
    RESULTS,
    CpuWatch,
    fmt_bytes,
    machine,
    versions,
)
from benchmarks.common import postmaster_pid as _postmaster_pid
from devtools.pgcluster import PostgresCluster

PW_ENV = "METERQL_BENCH_PGPASSWORD"

PLANS = ["free", "starter", "pro", "enterprise"]
COUNTRIES = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA"]
METERS = ["api_calls", "storage_gb", "compute_s", "egress_gb", "seats"]

_SELECT = (
    "SELECT c.plan, c.country, count(*) AS events, sum(e.quantity) AS qty\n"
    "FROM pg.public.events e JOIN lite.main.customers c ON c.id = e.customer_id\n"
)
_MONTH = "e.ts >= TIMESTAMPTZ '2026-03-01' AND e.ts < TIMESTAMPTZ '2026-04-01'"
QUERIES: dict[str, tuple[str, str]] = {
    "month": (
        "March 2026 (8.5% of events), join + group",
        _SELECT + f"WHERE {_MONTH}\nGROUP BY ALL ORDER BY ALL",
    ),
    "full_scan": (
        "no date filter: all events, join + group",
        _SELECT + "GROUP BY ALL ORDER BY ALL",
    ),
    "month_enterprise": (
        "March 2026, enterprise customers only (filter on the SQLite side)",
        _SELECT + f"WHERE {_MONTH} AND c.plan = 'enterprise'\nGROUP BY ALL ORDER BY ALL",
    ),
}

# Hand-written plans for the reference paths (not meterql).
_PG_MONTH = "WHERE ts >= TIMESTAMPTZ '2026-03-01' AND ts < TIMESTAMPTZ '2026-04-01'"
PARTIAL_AGG: dict[str, tuple[str, str]] = {
    name: (
        "SELECT customer_id, count(*) AS n, sum(quantity)::text AS q FROM public.events "
        + ("" if name == "full_scan" else _PG_MONTH + " ")
        + "GROUP BY customer_id",
        "SELECT c.plan, c.country, sum(a.n)::BIGINT AS events, "
        "sum(CAST(a.q AS DECIMAL(38, 6))) AS qty "
        "FROM pg_agg a JOIN lite.main.customers c ON c.id = a.customer_id"
        + (" WHERE c.plan = 'enterprise'" if name == "month_enterprise" else "")
        + " GROUP BY ALL ORDER BY ALL",
    )
    for name in QUERIES
}
DYNAMIC_FILTER = (
    "SELECT id FROM customers WHERE plan = 'enterprise'",
    "SELECT customer_id, quantity::text AS quantity FROM public.events "
    f"{_PG_MONTH} AND customer_id = ANY($1::int[])",
    "SELECT c.plan, c.country, count(*) AS events, "
    "sum(CAST(e.quantity AS DECIMAL(18, 6))) AS qty "
    "FROM pg_rows e JOIN lite.main.customers c ON c.id = e.customer_id "
    "WHERE c.plan = 'enterprise' GROUP BY ALL ORDER BY ALL",
)
PATHS = ("meterql", "native", "adbc_pull", "adbc_pull_text", "pg_partial_agg", "pg_dynamic_filter")


# -- data ------------------------------------------------------------------------------------


def load_postgres(pg: PostgresCluster, rows: int) -> float:
    t0 = time.perf_counter()
    pg.create_database("bench")
    pg.run_sql(
        f"""
        SET TimeZone = 'UTC';
        CREATE TABLE public.events (
            id          bigint PRIMARY KEY,
            customer_id int NOT NULL,
            meter       text NOT NULL,
            ts          timestamptz NOT NULL,
            quantity    numeric(18,6) NOT NULL
        );
        SELECT setseed(0.42);
        -- ts rises with id over 2026 (an append-only log) with up to 1 h of jitter;
        -- customer_id is skewed toward low ids, as real usage is.
        INSERT INTO public.events (id, customer_id, meter, ts, quantity)
        SELECT g,
               1 + floor(1000 * random() ^ 2)::int,
               (ARRAY{METERS!r})[1 + floor(random() * {len(METERS)})::int],
               TIMESTAMPTZ '2026-01-01 00:00:00+00'
                 + make_interval(secs => (g - 1) * (31536000.0 / {rows}) + 3600 * random()),
               round((random() * 1000)::numeric, 6)
        FROM generate_series(1, {rows}) AS g;
        CREATE INDEX events_customer_ts_idx ON public.events (customer_id, ts);
        VACUUM ANALYZE public.events;
        CHECKPOINT;
        """,
        dbname="bench",
    )
    return time.perf_counter() - t0


def make_sqlite(path: Path) -> None:
    rng = random.Random(42)
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "plan TEXT NOT NULL, country TEXT NOT NULL)"
        )
        con.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [
                (i, f"Customer {i:04d}", rng.choice(PLANS), rng.choice(COUNTRIES))
                for i in range(1, 1001)
            ],
        )
        con.commit()


def native_duckdb(pg_uri: str, sqlite_path: Path) -> tuple[duckdb.DuckDBPyConnection, float]:
    """The same data, copied once into an in-memory DuckDB under the same three-part names."""
    t0 = time.perf_counter()
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("ATTACH ':memory:' AS pg")
    con.execute("CREATE SCHEMA pg.public")
    con.execute("ATTACH ':memory:' AS lite")
    with contextlib.closing(adbc_pg.connect(pg_uri, autocommit=True)) as conn:
        with contextlib.closing(conn.cursor()) as cur:
            cur.execute(
                "SELECT id, customer_id, meter, ts, quantity::text AS quantity "
                "FROM public.events ORDER BY id"
            )
            events = cur.fetch_record_batch()  # noqa: F841 - DuckDB scans it by name
            con.execute(
                "CREATE TABLE pg.public.events AS SELECT id, customer_id, meter, ts, "
                "CAST(quantity AS DECIMAL(18, 6)) AS quantity FROM events"
            )
    with contextlib.closing(adbc_sqlite.connect(f"file:{sqlite_path}?mode=ro")) as conn:
        with contextlib.closing(conn.cursor()) as cur:
            cur.execute("SELECT id, name, plan, country FROM customers ORDER BY id")
            customers = cur.fetch_arrow_table()  # noqa: F841
            con.execute("CREATE TABLE lite.main.customers AS FROM customers")
    return con, time.perf_counter() - t0


# -- measuring -------------------------------------------------------------------------------


WATCH: CpuWatch | None = None
WAIT_IDLE_S = 0.0


def timed(fn: Callable[[], object], runs: int) -> tuple[dict, object]:
    """1 warm-up, then ``runs`` timed calls; the summary and the last call's value."""
    waited = WATCH.wait_idle(WAIT_IDLE_S) if WATCH and WAIT_IDLE_S else 0.0
    fn()
    times: list[float] = []
    out: object = None
    cpu: dict = {}
    with WATCH.watch(cpu) if WATCH else contextlib.nullcontext():
        for _ in range(runs):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
    summary = {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "runs_s": times,
        "waited_for_idle_s": round(waited, 1),
    }
    return summary | cpu, out


def measure_meterql(ws, sql: str, runs: int) -> tuple[dict, pa.Table]:
    splits: list[dict] = []

    def once():
        t0 = time.perf_counter()
        result = ws.query(sql, max_rows=None)
        table = result.to_arrow()
        wall = time.perf_counter() - t0
        frag_s = {f.fragment: f.seconds for f in result.fragments}
        splits.append(
            {
                "plan_s": wall - result.seconds,
                "fragment_s": frag_s,
                "residual_s": result.seconds - max(frag_s.values(), default=0.0),
            }
        )
        return result, table

    out, (result, table) = timed(once, runs)
    splits = splits[1:]  # drop the warm-up
    out["split_median_s"] = {
        "plan": statistics.median(s["plan_s"] for s in splits),
        **{
            f"fragment_{fid}": statistics.median(s["fragment_s"][fid] for s in splits)
            for fid in splits[0]["fragment_s"]
        },
        "residual": statistics.median(s["residual_s"] for s in splits),
    }
    sql_of = {f.id: f.sql for f in result.plan.fragments}
    out["fragments"] = [
        {
            "id": f.fragment,
            "source": f.source,
            "rows": f.rows,
            "bytes": f.bytes,
            "sql": sql_of[f.fragment],
        }
        for f in result.fragments
    ]
    out["plan"] = str(result.plan)
    return out, table


def measure_native(con: duckdb.DuckDBPyConnection, sql: str, runs: int):
    return timed(lambda: con.sql(sql).to_arrow_table(), runs)


def measure_adbc_pull(pg_uri: str, sql: str, runs: int, numeric_as_text: bool = False) -> dict:
    """The fragment's SQL alone, fetched into Arrow over one warm ADBC connection.

    With ``numeric_as_text`` the NUMERIC column is selected as text and cast to its decimal128
    in Arrow (the cast is timed too).
    """
    decimals: dict[str, pa.DataType] = {}
    if numeric_as_text:
        tree = sqlglot.parse_one(sql, read="postgres")
        for i, col in enumerate(tree.expressions):
            if isinstance(col, exp.Column) and col.name == "quantity":
                tree.expressions[i] = exp.alias_(
                    exp.cast(col.copy(), "TEXT"), col.name, quoted=True
                )
                decimals[col.name] = pa.decimal128(18, 6)
        tree.set("expressions", tree.expressions)
        sql = tree.sql("postgres")
    with contextlib.closing(adbc_pg.connect(pg_uri, autocommit=True)) as conn:

        def once():
            with contextlib.closing(conn.cursor()) as cur:
                cur.execute(sql)
                table = cur.fetch_arrow_table()
            for name, typ in decimals.items():
                i = table.schema.get_field_index(name)
                table = table.set_column(i, name, pc.cast(table.column(i), typ))
            return table

        out, table = timed(once, runs)
    out.update(sql=sql, rows=table.num_rows, bytes=table.nbytes)
    return out


def measure_partial_agg(pg_uri: str, native: duckdb.DuckDBPyConnection, name: str, runs: int):
    """Hand-written plan: GROUP BY customer_id in PostgreSQL, join + final group in DuckDB."""
    pg_sql, duck_sql = PARTIAL_AGG[name]
    cur_duck = native.cursor()
    stats: dict = {}
    with contextlib.closing(adbc_pg.connect(pg_uri, autocommit=True)) as conn:

        def once():
            with contextlib.closing(conn.cursor()) as cur:
                cur.execute(pg_sql)
                pg_agg = cur.fetch_arrow_table()
            stats.update(rows=pg_agg.num_rows, bytes=pg_agg.nbytes)
            cur_duck.register("pg_agg", pg_agg)
            try:
                return cur_duck.sql(duck_sql).to_arrow_table()
            finally:
                cur_duck.unregister("pg_agg")

        out, table = timed(once, runs)
    cur_duck.close()
    out.update(stats, sql=[pg_sql, duck_sql])
    return out, table


def measure_dynamic_filter(
    pg_uri: str, sqlite_path: Path, native: duckdb.DuckDBPyConnection, runs: int
):
    """Hand-written plan: read the small side's join keys, push them into the PostgreSQL scan."""
    keys_sql, pg_sql, duck_sql = DYNAMIC_FILTER
    cur_duck = native.cursor()
    stats: dict = {}
    with (
        contextlib.closing(adbc_pg.connect(pg_uri, autocommit=True)) as conn,
        contextlib.closing(adbc_sqlite.connect(f"file:{sqlite_path}?mode=ro")) as lite,
    ):

        def once():
            with contextlib.closing(lite.cursor()) as cur:
                cur.execute(keys_sql)
                keys = cur.fetch_arrow_table().column(0).to_pylist()
            with contextlib.closing(conn.cursor()) as cur:
                cur.execute(pg_sql, parameters=("{" + ",".join(map(str, keys)) + "}",))
                pg_rows = cur.fetch_arrow_table()
            stats.update(keys=len(keys), rows=pg_rows.num_rows, bytes=pg_rows.nbytes)
            cur_duck.register("pg_rows", pg_rows)
            try:
                return cur_duck.sql(duck_sql).to_arrow_table()
            finally:
                cur_duck.unregister("pg_rows")

        out, table = timed(once, runs)
    cur_duck.close()
    out.update(stats, sql=[keys_sql, pg_sql, duck_sql])
    return out, table


def same_rows(name: str, what: str, got: pa.Table, want: pa.Table) -> None:
    assert got.column_names == want.column_names, (name, what, got.schema, want.schema)
    assert [f.type for f in got.schema] == [f.type for f in want.schema], (
        name,
        what,
        got.schema,
        want.schema,
    )
    assert got.to_pylist() == want.to_pylist(), f"{name}: {what} rows differ from native DuckDB"


# -- profiling -------------------------------------------------------------------------------


def profile_planning(ws, sql: str, n: int = 30) -> str:
    ws.explain(sql)
    t0 = time.perf_counter()
    for _ in range(n):
        ws.explain(sql)
    plain = (time.perf_counter() - t0) / n
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        ws.explain(sql)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative").print_stats(30)
    return (
        f"planning (Workspace.explain): {plain * 1000:.1f} ms per call without the profiler; "
        f"cProfile of {n} calls:\n" + buf.getvalue()
    )


def py_spy_loop(py_spy: str, ws, sql: str, seconds: float) -> str:
    """Sample this process (all threads, native frames) while meterql runs ``sql`` in a loop."""
    out = Path(tempfile.mkdtemp(prefix="meterql-pyspy-")) / "stacks.txt"
    proc = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(os.getpid()),
            "--duration",
            str(int(seconds)),
            "--rate",
            "100",
            "--native",
            "--threads",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    n = 0
    while proc.poll() is None:
        ws.query(sql, max_rows=None)
        n += 1
    _, err = proc.communicate(timeout=120)
    if not out.exists():
        return f"py-spy failed: {err.decode(errors='replace')[-2000:]}"
    keep = RESULTS / "cross_source_join.pyspy.txt"
    shutil.copy(out, keep)
    shutil.rmtree(out.parent, ignore_errors=True)
    return f"{n} queries sampled; collapsed stacks in {keep}\n" + summarise_stacks(keep)


#: Leaf frames (and their callers) that mean a thread is waiting, not working.
_WAITING = (
    "PyThread_acquire_lock_timed",
    "take_gil",
    "pthread_cond",
    "pthread_mutex_lock",
    "sem_wait",
    "futex",
    "poll",
    "select",
    "time_sleep",
    "epoll_wait",
    "Semaphore",
    "WaitForTask",
)


#: Where a busy sample goes: the first bucket one of whose patterns is in its stack.
_BUCKETS = (
    ("planning (Engine.plan)", ("Engine.plan ",)),
    ("ADBC: NUMERIC binary -> text in the driver", ("PostgresCopyNumericFieldReader",)),
    ("ADBC: socket reads (libpq)", ("pqReadData", "pqGetCopyData")),
    ("ADBC: other COPY decoding", ("adbcpq::",)),
    ("conform: text -> decimal128 cast (Arrow)", ("DecimalCastFunctor", "conform_batch ")),
    ("fragment -> DuckDB table (other)", ("_load_fragments",)),
    ("residual query (DuckDB)", ("_read_capped", "Executor._run_split ")),
)


def summarise_stacks(path: Path, top: int = 25) -> str:
    """Self and inclusive time from py-spy's raw output, waiting threads left out."""
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    buckets: collections.Counter[str] = collections.Counter()
    total = waiting = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if not frames:
            continue
        near_leaf = frames[-4:]
        if any(w in f for f in near_leaf for w in _WAITING) or frames[-1].startswith("0x"):
            # Unsymbolised libc/duckdb leaves under a wait are lock or semaphore waits.
            if frames[-1].startswith("0x") and not any(w in f for f in near_leaf for w in _WAITING):
                pass  # an unknown leaf inside real work: count it below
            else:
                waiting += n
                continue
        total += n
        joined = ";".join(frames)
        bucket = next((b for b, pats in _BUCKETS if any(p in joined for p in pats)), "other")
        buckets[bucket] += n
        self_t[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            incl[f] += n
    lines = [
        f"busy samples: {total} (waiting samples left out: {waiting})",
        "where the busy samples go:",
    ]
    lines += [f"  {100 * n / total:5.1f}%  {b}" for b, n in buckets.most_common()]
    lines.append("top self frames (% of busy samples, all threads):")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_t.most_common(top)]
    lines.append("top inclusive frames:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit("/", 1)[-1].split(":")[0] if where else ""
    return f"{name[:90]} ({file})" if file else name[:90]


# -- report ----------------------------------------------------------------------------------


def print_report(report: dict) -> None:
    m, v, p = report["machine"], report["versions"], report["params"]
    print()
    print(f"machine: {m['nproc']} cores, {m['cpu']}, {m['memory']}, {m['os']}")
    print(f"load average: start {m['loadavg_start']}, end {m['loadavg_end']}")
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    print(
        f"data: {p['rows']:,} events in PostgreSQL, 1,000 customers in SQLite; "
        f"1 warm-up + {p['runs']} runs per path"
    )
    print(
        f"setup: PostgreSQL load {report['setup_s']['pg_load']:.1f} s, native DuckDB copy "
        f"{report['setup_s']['native_copy']:.1f} s"
    )
    print()
    head = (
        f"{'query':<17} {'path':<18} {'median ms':>9} {'min ms':>8} {'max ms':>8} "
        f"{'x native':>8}  {'other/steal cores':>17}"
    )
    print(head)
    print("-" * len(head))
    for name, q in report["queries"].items():
        native = q["native"]["median_s"]
        for path in PATHS:
            r = q.get(path)
            if r is None:
                continue
            cpu = r.get("cpu_cores")
            # /proc counts in 10 ms ticks: shorter windows say nothing
            busy = (
                f"{cpu['other']:.2f} / {cpu['steal']:.2f}"
                if cpu and cpu["window_s"] >= 0.5
                else "-"
            )
            print(
                f"{name:<17} {path:<18} {r['median_s'] * 1000:9.1f} {r['min_s'] * 1000:8.1f} "
                f"{r['max_s'] * 1000:8.1f} {r['median_s'] / native:8.1f}  {busy:>17}"
            )
    print()
    print("meterql, per query: time split (medians; fragments run concurrently) and fragments")
    for name, q in report["queries"].items():
        s = q["meterql"]["split_median_s"]
        parts = " | ".join(f"{k.removeprefix('fragment_')} {t * 1000:.1f}" for k, t in s.items())
        print(f"  {name}: {parts} ms; result {q['result_rows']} rows, identical to native")
        for f in q["meterql"]["fragments"]:
            print(
                f"    {f['id']} on {f['source']}: {f['rows']:,} rows, {fmt_bytes(f['bytes'])}: "
                f"{f['sql']}"
            )
        for ref in ("pg_partial_agg", "pg_dynamic_filter"):
            if ref in q:
                print(f"    ({ref} pulls {q[ref]['rows']:,} rows, {fmt_bytes(q[ref]['bytes'])})")
    print()


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    global WATCH, WAIT_IDLE_S
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cross_source_join",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="events in PostgreSQL")
    ap.add_argument("--runs", type=int, default=5, help="timed runs after 1 warm-up")
    ap.add_argument("--queries", default=",".join(QUERIES), help="comma-separated query names")
    ap.add_argument(
        "--no-reference", action="store_true", help="only meterql and native, no reference paths"
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=20,
        metavar="S",
        help="before each measurement wait up to S s for other processes to go "
        "quiet (this VM is shared); 0 to skip",
    )
    ap.add_argument("--profile", action="store_true", help="print a cProfile of planning")
    ap.add_argument("--py-spy", metavar="PATH", help="a py-spy binary: sample a meterql loop")
    ap.add_argument("--profile-query", default="full_scan", choices=list(QUERIES))
    ap.add_argument("--profile-seconds", type=float, default=20)
    ap.add_argument("--output", default=str(RESULTS / "cross_source_join.json"))
    args = ap.parse_args()
    names = [n.strip() for n in args.queries.split(",") if n.strip()]
    unknown = set(names) - set(QUERIES)
    if unknown:
        ap.error(f"unknown queries {sorted(unknown)}; choose from {list(QUERIES)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    WAIT_IDLE_S = args.wait_idle

    report: dict = {
        "benchmark": "cross_source_join",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "-m", "benchmarks.cross_source_join",
                             *sys.argv[1:]]),
        "machine": machine(),
        "params": {"rows": args.rows, "runs": args.runs, "wait_idle_s": args.wait_idle},
        "queries": {},
    }
    m = report["machine"]
    print(f"machine: {m['nproc']} cores, {m['cpu']}; load average {m['loadavg_start']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="meterql-bench-"))
    try:
        with PostgresCluster() as pg:
            report["versions"] = versions(pg)
            print(
                f"PostgreSQL {report['versions']['postgresql']} on port {pg.port}; loading "
                f"{args.rows:,} rows ...",
                flush=True,
            )
            t_load = load_postgres(pg, args.rows)
            sqlite_path = work / "customers.db"
            make_sqlite(sqlite_path)
            pg_uri = pg.uri("bench")
            native, t_copy = native_duckdb(pg_uri, sqlite_path)
            report["setup_s"] = {"pg_load": t_load, "native_copy": t_copy}
            print(f"loaded in {t_load:.1f} s; native DuckDB copy {t_copy:.1f} s", flush=True)
            WATCH = CpuWatch(_postmaster_pid(pg))

            os.environ[PW_ENV] = pg.password
            ws_uri = f"postgresql://{pg.user}:env:{PW_ENV}@{pg.host}:{pg.port}/bench"
            with meterql.connect(work / "ws") as ws:
                ws.sources.add("pg", ws_uri)
                ws.sources.add("lite", f"sqlite:///{sqlite_path}")
                for name in names:
                    what, sql = QUERIES[name]
                    print(f"[{name}] {what}", flush=True)
                    mq, mq_table = measure_meterql(ws, sql, args.runs)
                    nat, nat_table = measure_native(native, sql, args.runs)
                    same_rows(name, "meterql", mq_table, nat_table)
                    entry = {
                        "description": what,
                        "sql": sql,
                        "result_rows": nat_table.num_rows,
                        "identical_rows": True,
                        "meterql": mq,
                        "native": nat,
                    }
                    if not args.no_reference:
                        pg_sql = next(f["sql"] for f in mq["fragments"] if f["source"] == "pg")
                        entry["adbc_pull"] = measure_adbc_pull(pg_uri, pg_sql, args.runs)
                        entry["adbc_pull_text"] = measure_adbc_pull(
                            pg_uri, pg_sql, args.runs, numeric_as_text=True
                        )
                        agg, agg_table = measure_partial_agg(pg_uri, native, name, args.runs)
                        same_rows(name, "pg_partial_agg", agg_table, nat_table)
                        entry["pg_partial_agg"] = agg
                        if name == "month_enterprise":
                            dyn, dyn_table = measure_dynamic_filter(
                                pg_uri, sqlite_path, native, args.runs
                            )
                            same_rows(name, "pg_dynamic_filter", dyn_table, nat_table)
                            entry["pg_dynamic_filter"] = dyn
                    for path in PATHS:
                        if path in entry:
                            entry[path]["ratio_vs_native"] = (
                                entry[path]["median_s"] / nat["median_s"]
                            )
                    report["queries"][name] = entry
                    print(
                        f"  meterql {mq['median_s'] * 1000:.1f} ms, native "
                        f"{nat['median_s'] * 1000:.1f} ms (x{mq['ratio_vs_native']:.1f})",
                        flush=True,
                    )

                if args.profile:
                    report["planning_profile"] = profile_planning(
                        ws, QUERIES[args.profile_query][1]
                    )
                    print(report["planning_profile"])
                if args.py_spy:
                    report["py_spy"] = py_spy_loop(
                        args.py_spy, ws, QUERIES[args.profile_query][1], args.profile_seconds
                    )
                    print(report["py_spy"])
            native.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.environ.pop(PW_ENV, None)

    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    print_report(report)
    Path(args.output).write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
