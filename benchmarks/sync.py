"""Benchmark: sync mode (PostgreSQL -> DuckDB replica), initial and incremental, against peers.

Run from the repo root (about 6 minutes with the defaults on 2 cores, 1 of them loading):

    .venv/bin/python -m benchmarks.sync [--rows 10000000] [--runs 3]

Data: a throwaway PostgreSQL (devtools/pgcluster.py) with two databases holding the same
``public.events`` schema and generator as planner.py (``load_postgres``: id bigint pk,
customer_id int, meter text, ts timestamptz, quantity numeric(18,6)): ``bench`` with ``--rows``
rows and ``small`` with ``--small-rows`` rows (1,000,000; at most --rows / 10). Autovacuum is
off on both tables so that it does not run in the middle of a measurement.

(1) Initial sync of ``bench.public.events`` (1 warm-up COPY, then ``--runs`` runs; the paths
    are interleaved and their order alternates between runs):
    - meterql: ``ws.sync("pg")`` in a fresh workspace (source added in sync mode beforehand),
      then ``CHECKPOINT`` of the replica; the figure is sync + checkpoint;
    - COPY: ``psql -c "COPY (SELECT * FROM public.events) TO STDOUT (FORMAT binary)" > /dev/null``,
      one connection: the single-stream physical limit;
    - DuckDB's postgres extension: ``ATTACH`` + ``CREATE TABLE AS SELECT * FROM pg.public.events``
      + ``CHECKPOINT`` into a new DuckDB file, run by ``duckpg_copy.py`` in an isolated venv
      (benchmarks/.venv-duckpg: duckdb 1.5.5 + duckdb-extension-postgres 1.5.5, created by this
      script when missing; DuckDB cannot download extensions here and the extension refuses
      DuckDB 2.x);
    - reference: plain ADBC reader into DuckDB (``SELECT *`` over one ADBC connection,
      ``CREATE TABLE AS SELECT ..., CAST(quantity AS DECIMAL(18,6)) FROM reader`` into a new file,
      ``CHECKPOINT``), what meterql does without meterql.
    Target: meterql at least as fast as the extension.
(2) Incremental sync (append strategy on ``id``) of ``--delta`` (100,000) new rows on the
    ``small`` table and on the ``bench`` table: the last initial-sync workspace is reopened, the
    ``small`` source added, both set to ``append``; each run inserts a fresh id range at the
    source of each table (not timed) and times ``ws.sync(name)``; 1 warm-up then ``--runs``.
    Target: the two medians within 1.5x of each other (cost follows the change, not the table).

Every sync is checked: count(*) and sum(quantity) of the replica equal the source's (the
extension's and the ADBC path's copies too). Each timed call records its CPU split: client
(this process and the subprocesses it waited for), PostgreSQL (postmaster and backends) and
the rest of the machine. For a missed target (or with --profile) the script measures where the
time goes: a ladder of partial paths, and a py-spy profile (--py-spy PATH, or py-spy on PATH)
of one sync.

Writes ``benchmarks/results/sync.json`` (machine, versions, every run, profiles).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc_pg
import duckdb

import meterql
from benchmarks import duckpg
from benchmarks.common import (
    RESULTS,
    ROOT,
    CpuWatch,
    finish_report,
    fmt_bytes,
    machine,
    postmaster_pid,
    versions,
)
from benchmarks.planner import CUSTOMERS, METERS, load_postgres
from devtools.pgcluster import PostgresCluster
from meterql.sync.runner import whole_row_groups

PW_ENV = "METERQL_BENCH_PGPASSWORD"
COPY_SQL = "COPY (SELECT * FROM public.events) TO STDOUT (FORMAT binary)"
CHECK_SQL = "SELECT count(*), sum(quantity) FROM public.events"

TARGETS = {
    "initial": "meterql ws.sync + CHECKPOINT <= DuckDB postgres extension "
    "(ATTACH + CTAS + CHECKPOINT)",
    "incremental": "big-table / small-table median for the same new rows within 1.5x",
}


# -- setup -----------------------------------------------------------------------------------


class _Database:
    """A PostgresCluster seen through one other database name, so that planner.load_postgres
    (which loads into ``bench``) loads the same schema and data into ``name``."""

    def __init__(self, pg: PostgresCluster, name: str) -> None:
        self.pg, self.name = pg, name

    def create_database(self, _name: str) -> None:
        self.pg.create_database(self.name)

    def run_sql(self, sql: str, dbname: str = "postgres", **kw) -> str:
        return self.pg.run_sql(sql, dbname=self.name, **kw)


def insert_delta(pg: PostgresCluster, db: str, lo: int, hi: int) -> float:
    """New rows ``lo..hi`` at the end of the table (ts after every existing row)."""
    sql = f"""
        SET TimeZone = 'UTC';
        SELECT setseed(0.7);
        INSERT INTO public.events (id, customer_id, meter, ts, quantity)
        SELECT g,
               1 + floor({CUSTOMERS} * random() ^ 2)::int,
               (ARRAY{METERS!r})[1 + floor(random() * {len(METERS)})::int],
               TIMESTAMPTZ '2027-01-01 00:00:00+00' + make_interval(secs => (g - {lo})::float8),
               round((random() * 1000)::numeric, 6)
        FROM generate_series({lo}, {hi}) AS g;
    """
    t0 = time.perf_counter()
    pg.run_sql(sql, dbname=db)
    return time.perf_counter() - t0


def source_truth(pg: PostgresCluster, db: str) -> tuple[int, Decimal]:
    n, total = pg.run_sql(CHECK_SQL, dbname=db, tuples_only=True).strip().split("|")
    return int(n), Decimal(total)


def replica_truth(ws, source: str) -> tuple[int, Decimal]:
    row = ws.query(
        f"SELECT count(*) AS n, sum(quantity) AS q FROM {source}.public.events", max_rows=None
    ).to_arrow().to_pylist()[0]
    return int(row["n"]), Decimal(row["q"])


def row_groups(duck, table: str) -> int:
    return duck.execute(
        f"SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('{table}')"
    ).fetchone()[0]


def check(what: str, got: tuple[int, Decimal], want: tuple[int, Decimal]) -> None:
    assert got == want, f"{what}: replica has count/sum {got}, the source {want}"


# -- measuring -------------------------------------------------------------------------------


class CpuSplit:
    """CPU seconds of one measured call, split into the client (this process, its threads and
    the subprocesses it waited for), PostgreSQL (postmaster, live backends and the backends it
    reaped) and the rest of the machine, from /proc before and after the call."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, postmaster: int | None) -> None:
        self.postmaster = postmaster

    @staticmethod
    def _stat(pid: int | str) -> list[str]:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()

    def _client(self) -> int:
        f = self._stat("self")
        return int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime stime cutime cstime

    def _server(self) -> int:
        if not self.postmaster:
            return 0
        total = 0
        with contextlib.suppress(OSError, ValueError, IndexError):
            f = self._stat(self.postmaster)
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        with contextlib.suppress(OSError, ValueError):
            path = Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children")
            for pid in path.read_text().split():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    f = self._stat(pid)
                    total += int(f[11]) + int(f[12])
        return total

    @staticmethod
    def _machine() -> tuple[int, int]:
        line = Path("/proc/stat").read_text().split("\n", 1)[0]
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
        return user + nice + system + irq + softirq, steal

    def window(self) -> Window:
        return Window(self)


class Window:
    """The timed section of one measured call: wall seconds and the CPU split over exactly that
    section (``start`` and ``stop`` bracket it inside the path's code)."""

    def __init__(self, cpu: CpuSplit) -> None:
        self._cpu = cpu
        self.seconds: float | None = None
        self.cpu_s: dict | None = None

    def start(self) -> None:
        c = self._cpu
        self._snap = (c._client(), c._server(), c._machine())
        self._t0 = time.perf_counter()

    def stop(self, extra_client_s: float = 0.0) -> float:
        """``extra_client_s``: CPU of a subprocess still running (it reports its own)."""
        self.seconds = time.perf_counter() - self._t0
        c = self._cpu
        (c0, s0, (m0, st0)), c1, s1, (m1, st1) = self._snap, c._client(), c._server(), c._machine()
        client = (c1 - c0) / c.TICK + extra_client_s
        server = (s1 - s0) / c.TICK
        busy = (m1 - m0) / c.TICK
        self.cpu_s = {
            "client": round(client, 2),
            "postgres": round(server, 2),
            "other": round(max(0.0, busy - client - server), 2),
            "steal": round((st1 - st0) / c.TICK, 2),
        }
        return self.seconds


def summary(values: list[float]) -> dict:
    return {
        "median_s": statistics.median(values),
        "min_s": min(values),
        "max_s": max(values),
        "runs_s": values,
    }


class Bench:
    def __init__(self, pg: PostgresCluster, work: Path, args) -> None:
        self.pg, self.work, self.args = pg, work, args
        self.cpu = CpuSplit(postmaster_pid(pg))
        self.idle = CpuWatch(postmaster_pid(pg))
        self.uri = {
            db: f"postgresql://{pg.user}:env:{PW_ENV}@{pg.host}:{pg.port}/{db}"
            for db in ("bench", "small")
        }
        self.env = pg.client_env()

    def timed(self, fn: Callable[[Window], dict]) -> dict:
        """Wait for a quiet machine, then run ``fn``, which brackets its timed section with
        the window it is given; its figure is that section's wall time."""
        waited = self.idle.wait_idle(self.args.wait_idle) if self.args.wait_idle else 0.0
        win = self.cpu.window()
        out = fn(win)
        assert win.seconds is not None, "the path did not stop its window"
        return {"seconds": win.seconds, "cpu_s": win.cpu_s} | out | {
            "waited_for_idle_s": round(waited, 1)}

    # -- (1) initial-sync paths ------------------------------------------------------------
    def copy_psql(self, win: Window, sql: str = COPY_SQL) -> dict:
        cmd = self.pg.psql_command("bench", "-c", sql)
        win.start()
        subprocess.run(cmd, env=self.env, stdout=subprocess.DEVNULL, check=True)
        win.stop()
        return {}

    def duckdb_ext(self, win: Window, python: Path) -> dict:
        """The helper loads the extension, says ``ready``, and runs its timed part when told;
        the window brackets that part (the helper reports its own CPU for it)."""
        out = self.work / "duckpg.duckdb"
        for p in (out, out.with_name(out.name + ".wal")):
            p.unlink(missing_ok=True)
        pg = self.pg
        conninfo = f"host={pg.host} port={pg.port} user={pg.user} dbname=bench"
        cmd = duckpg.worker_command(python, "benchmarks.duckpg_copy", "--conninfo", conninfo,
                                    "--out", str(out), "--ext-dir", str(duckpg.EXTENSION_DIR))
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            assert proc.stdin is not None and proc.stdout is not None
            ready = proc.stdout.readline().strip()
            if ready != "ready":
                raise RuntimeError(f"duckpg_copy: {ready!r}\n{proc.stderr.read()}")
            win.start()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"duckpg_copy failed:\n{proc.stderr.read()}")
            res = json.loads(line)
            win.stop(extra_client_s=res["process_cpu_s"])
            res |= json.loads(proc.stdout.readline())
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        wall = time.perf_counter() - t0
        win.seconds = res["seconds"]  # measured inside the helper
        check("duckdb postgres extension", (res["rows"], Decimal(res["sum_quantity"])),
              self.truth)
        out.unlink(missing_ok=True)
        return res | {"process_wall_s": wall}

    def adbc_duckdb(self, win: Window) -> dict:
        out = self.work / "adbc.duckdb"
        out.unlink(missing_ok=True)
        win.start()
        with contextlib.closing(duckdb.connect(str(out))) as duck, contextlib.closing(
            adbc_pg.connect(self.pg.uri("bench"), autocommit=True)
        ) as conn, contextlib.closing(conn.cursor()) as cur:
            cur.execute("SELECT * FROM public.events")
            reader = cur.fetch_record_batch()  # noqa: F841 - scanned by name below
            duck.execute(
                "CREATE TABLE events AS SELECT id, customer_id, meter, ts, "
                "CAST(quantity AS DECIMAL(18,6)) AS quantity FROM reader"
            )
            duck.execute("CHECKPOINT")
            win.stop()
            got = duck.execute("SELECT count(*), sum(quantity) FROM events").fetchone()
            groups = row_groups(duck, "events")
        check("plain ADBC -> DuckDB", (got[0], got[1]), self.truth)
        size = out.stat().st_size
        out.unlink(missing_ok=True)
        return {"file_bytes": size, "row_groups": groups}

    def meterql_initial(self, win: Window, run: str) -> dict:
        home = self.work / f"ws-initial-{run}"
        shutil.rmtree(home, ignore_errors=True)
        with meterql.connect(home) as ws:
            ws.sources.add("pg", self.uri["bench"], mode="sync")
            win.start()
            t0 = time.perf_counter()
            reports = ws.sync("pg")
            t1 = time.perf_counter()
            ws._engine.duck.execute('CHECKPOINT "pg"')
            t2 = time.perf_counter()
            win.stop()
            report = reports[0]
            assert report.error is None, f"meterql sync failed: {report.error}"
            (table,) = report.tables
            assert table.rows == self.truth[0], (table.rows, self.truth)
            check("meterql initial sync", replica_truth(ws, "pg"), self.truth)
            groups = row_groups(ws._engine.duck, "pg.public.events")
        size = (home / "replicas" / "pg.duckdb").stat().st_size
        if self.last_home is not None:
            shutil.rmtree(self.last_home, ignore_errors=True)
        self.last_home = home  # kept: the incremental part continues from it
        return {
            "sync_s": t1 - t0,
            "checkpoint_s": t2 - t1,
            "table_s": table.seconds,
            "rows": table.rows,
            "file_bytes": size,
            "row_groups": groups,
        }

    def initial(self) -> dict:
        args = self.args
        self.truth = source_truth(self.pg, "bench")
        self.last_home: Path | None = None
        python = duckpg.ensure_venv()
        paths: dict[str, Callable[[Window, str], dict]] = {
            "meterql": self.meterql_initial,
            "duckdb_postgres_ext": lambda win, run: self.duckdb_ext(win, python),
            "copy_binary_psql": lambda win, run: self.copy_psql(win),
            "adbc_reader_duckdb": lambda win, run: self.adbc_duckdb(win),
        }
        print("(1) warm-up COPY ...", flush=True)
        warm = self.timed(self.copy_psql)
        runs: dict[str, list[dict]] = {name: [] for name in paths}
        names = list(paths)
        for run in range(args.runs):
            order = names if run % 2 == 0 else names[::-1]
            for name in order:
                r = self.timed(lambda win, name=name, run=run: paths[name](win, str(run)))
                runs[name].append(r)
                print(f"    run {run + 1} {name:<22} {r['seconds']:7.2f} s  cpu {r['cpu_s']}",
                      flush=True)
        res: dict = {"rows": self.truth[0], "sum_quantity": str(self.truth[1]),
                     "warmup_copy_s": warm["seconds"], "paths": {}}
        for name, rs in runs.items():
            res["paths"][name] = summary([r["seconds"] for r in rs]) | {"runs": rs}
        p = res["paths"]
        ext = p["duckdb_postgres_ext"]["median_s"]
        res["ratio_meterql_to_ext"] = p["meterql"]["median_s"] / ext
        res["met"] = res["ratio_meterql_to_ext"] <= 1.0
        return res

    # -- (2) incremental --------------------------------------------------------------------
    def incremental(self) -> dict:
        args = self.args
        assert self.last_home is not None
        tables = {"small": ("small", args.small_rows), "pg": ("bench", args.rows)}
        res: dict = {"delta": args.delta, "tables": {}}
        with meterql.connect(self.last_home) as ws:
            ws.sources.add("small", self.uri["small"], mode="sync")
            t0 = time.perf_counter()
            (rep,) = ws.sync("small")
            assert rep.error is None, rep.error
            check("meterql initial sync (small)", replica_truth(ws, "small"),
                  source_truth(self.pg, "small"))
            res["small_initial_sync_s"] = time.perf_counter() - t0
            for name in tables:
                ws.sync.set_strategy(f"{name}.public.events", "append", cursor="id")
            next_id = {name: rows for name, (_db, rows) in tables.items()}
            runs: dict[str, list[dict]] = {name: [] for name in tables}
            names = list(tables)
            for run in range(args.runs + 1):  # run 0 is the warm-up
                order = names if run % 2 == 0 else names[::-1]
                for name in order:
                    db, _ = tables[name]
                    lo, hi = next_id[name] + 1, next_id[name] + args.delta
                    ins = insert_delta(self.pg, db, lo, hi)
                    next_id[name] = hi
                    truth = source_truth(self.pg, db)

                    def one(win: Window, name=name) -> dict:
                        win.start()
                        (rep,) = ws.sync(name)
                        win.stop()
                        assert rep.error is None, f"sync of {name} failed: {rep.error}"
                        (table,) = rep.tables
                        return {"table_s": table.seconds,
                                "rows": table.rows, "strategy": table.strategy}

                    r = self.timed(one)
                    assert r["strategy"] == "append", r
                    # The last run's maximum id is read again (>=), so delta or delta + 1 rows.
                    assert args.delta <= r["rows"] <= args.delta + 1, r
                    check(f"meterql incremental sync ({name}, run {run})",
                          replica_truth(ws, name), truth)
                    r |= {"warmup": run == 0, "source_rows_after": truth[0],
                          "insert_at_source_s": ins}
                    runs[name].append(r)
                    label = "warm-up" if run == 0 else f"run {run}"
                    print(f"    {label:<7} {name:<6} {truth[0]:>11,} rows: "
                          f"{r['seconds'] * 1000:7.1f} ms ({r['rows']:,} rows read)  "
                          f"cpu {r['cpu_s']}", flush=True)
            for name, rs in runs.items():
                timed_runs = [r for r in rs if not r["warmup"]]
                res["tables"][name] = summary([r["seconds"] for r in timed_runs]) | {
                    "table_rows_before": tables[name][1],
                    "table_s_median": statistics.median(r["table_s"] for r in timed_runs),
                    "runs": rs,
                }
            self.ws_home = self.last_home
        t = res["tables"]
        big, small = t["pg"]["median_s"], t["small"]["median_s"]
        res["ratio_big_to_small"] = big / small
        res["met"] = max(big, small) / min(big, small) <= 1.5
        return res

    # -- profiling -------------------------------------------------------------------------
    def ladder_initial(self) -> dict:
        """Partial paths of meterql's initial sync, each timed once (CPU split too), so that
        each step's difference is its cost. Uses meterql's internals (benchmark only)."""
        from meterql.connectors import connector_for
        from meterql.dialects import dialect_for
        from meterql.engine.planner.scan_sql import scan_select

        steps: dict[str, dict] = {}
        home = self.work / "ws-ladder"
        shutil.rmtree(home, ignore_errors=True)
        with meterql.connect(home) as ws, contextlib.ExitStack() as owned:
            ws.sources.add("pg", self.uri["bench"], mode="sync")
            table = ws.catalog.table("pg.public.events")
            # the benchmark's own connector of the source, as a sync makes one
            connector = owned.enter_context(contextlib.closing(connector_for(ws.sources.get("pg"))))
            connector.introspect()  # opens its pooled connection before the timed steps
            scan = scan_select(table, list(table.columns), dialect_for("postgres"))
            steps["sql"] = {"meterql_scan_sql": scan.sql}

            def copy_meterql_sql(win: Window) -> dict:
                return self.copy_psql(win, f"COPY ({scan.sql}) TO STDOUT (FORMAT binary)")

            def adbc_read(sql: str) -> Callable[[Window], dict]:
                def run(win: Window) -> dict:
                    n = 0
                    win.start()
                    with contextlib.closing(
                        adbc_pg.connect(self.pg.uri("bench"), autocommit=True)
                    ) as conn, contextlib.closing(conn.cursor()) as cur:
                        cur.execute(sql)
                        for batch in cur.fetch_record_batch():
                            n += batch.num_rows
                    win.stop()
                    return {"rows": n}

                return run

            def conformed_read(win: Window) -> dict:
                n = 0
                win.start()
                with connector.stream(scan.sql, schema=scan.schema) as reader:
                    for batch in reader:
                        n += batch.num_rows
                win.stop()
                return {"rows": n}

            def conformed_into_duckdb(win: Window, whole_groups: bool = False) -> dict:
                """As the sync writes: one transaction, CREATE TABLE + INSERT ... FROM reader."""
                import pyarrow as pa

                out = self.work / "ladder.duckdb"
                out.unlink(missing_ok=True)
                cols = ", ".join(f'"{c.name}" {c.type}' for c in table.columns)
                batch_rows: list[int] = []
                win.start()
                with contextlib.closing(duckdb.connect(str(out))) as duck:
                    duck.execute("BEGIN TRANSACTION")
                    duck.execute(f"CREATE TABLE events ({cols})")
                    with connector.stream(scan.sql, schema=scan.schema) as raw:
                        batches = whole_row_groups(raw) if whole_groups else raw
                        reader = pa.RecordBatchReader.from_batches(  # noqa: F841 - scanned below
                            raw.schema, (batch_rows.append(b.num_rows) or b for b in batches))
                        duck.execute("INSERT INTO events SELECT * FROM reader")
                    duck.execute("COMMIT")
                    t_commit = time.perf_counter()
                    duck.execute("CHECKPOINT")
                    win.stop()
                    checkpoint = time.perf_counter() - t_commit
                    got = duck.execute("SELECT count(*), sum(quantity) FROM events").fetchone()
                    groups = row_groups(duck, "events")
                check("ladder: conformed reader -> DuckDB", (got[0], got[1]), self.truth)
                size = out.stat().st_size
                out.unlink(missing_ok=True)
                return {"checkpoint_s": checkpoint, "file_bytes": size, "row_groups": groups,
                        "batches": len(batch_rows),
                        "batch_rows_median": statistics.median(batch_rows)}

            ladder = {
                "a COPY of meterql's scan SQL via psql (server-side limit)": copy_meterql_sql,
                "b ADBC read, SELECT * (driver decodes binary numeric)": adbc_read(
                    "SELECT * FROM public.events"),
                "c ADBC read, meterql's scan SQL (types shaped at the source)": adbc_read(scan.sql),
                "d + meterql connector: pool, DECIMAL from the shaped types": conformed_read,
                "e + INSERT into DuckDB file (1 txn) + CHECKPOINT": conformed_into_duckdb,
                "e2 as e, batches re-cut to multiples of 122,880 rows": lambda win:
                    conformed_into_duckdb(win, whole_groups=True),
                "f meterql ws.sync + CHECKPOINT (fresh workspace)":
                    lambda win: self.meterql_initial(win, "ladder"),
            }
            for name, fn in ladder.items():
                steps[name] = self.timed(fn)
                print(f"    {name:<60} {steps[name]['seconds']:7.2f} s  "
                      f"cpu {steps[name]['cpu_s']}", flush=True)
        shutil.rmtree(home, ignore_errors=True)
        return steps

    def ladder_incremental(self) -> dict:
        """The parts of an append sync, timed on both replicas (median of 3 calls each): what
        scales with the table. Uses meterql's internals (benchmark only)."""
        from sqlglot import exp

        from meterql.connectors import connector_for
        from meterql.dialects import dialect_for
        from meterql.engine.planner.scan_sql import scan_select

        steps: dict[str, dict] = {}
        with meterql.connect(self.ws_home) as ws, contextlib.ExitStack() as owned:
            duck = ws._engine.duck.cursor()
            for name in ("small", "pg"):
                target = f'"{name}"."public"."events"'
                last = duck.execute(f"SELECT max(id) FROM {target}").fetchone()[0]
                t = {}

                def clock(label: str, fn: Callable[[], object], t=t) -> None:
                    times = []
                    for _ in range(3):
                        t0 = time.perf_counter()
                        fn()
                        times.append(time.perf_counter() - t0)
                    t[label] = statistics.median(times)

                connector = owned.enter_context(
                    contextlib.closing(connector_for(ws.sources.get(name))))
                connector.introspect()  # opens the pooled connection
                clock("introspect source (warm)", connector.introspect)
                clock("replica max(id)", lambda target=target: duck.execute(
                    f"SELECT max(id) FROM {target}").fetchall())
                clock("replica count(*)", lambda target=target: duck.execute(
                    f"SELECT count(*) FROM {target}").fetchall())

                def delete_rollback(target=target, last=last) -> None:
                    duck.execute("BEGIN TRANSACTION")
                    duck.execute(f"DELETE FROM {target} WHERE id >= ?", [last - self.args.delta])
                    duck.execute("ROLLBACK")

                clock("replica DELETE of the window (rolled back)", delete_rollback)

                table = ws.catalog.table(f"{name}.public.events")
                id_ge = exp.GTE(this=exp.column("id"), expression=exp.Placeholder(this="cursor"))
                scan = scan_select(table, list(table.columns), dialect_for("postgres"), [id_ge])

                def source_read(connector=connector, last=last, scan=scan) -> None:
                    low = last - self.args.delta
                    with connector.stream(scan.sql, [low], schema=scan.schema) as r:
                        r.read_all()

                clock("read the window via the connector (warm, conformed)", source_read)
                steps[name] = t
                print(f"    {name}: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in t.items()),
                      flush=True)
            duck.close()
        return steps

    def py_spy(self, pyspy: str, fn: Callable[[], object], label: str) -> dict:
        """py-spy (native frames) attached to this process while ``fn`` runs."""
        out = self.work / f"pyspy-{label}.txt"
        proc = subprocess.Popen(
            [pyspy, "record", "--pid", str(os.getpid()), "--native", "--threads", "--rate", "50",
             "--format", "raw", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(1.5)  # attached
        try:
            fn()
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        if not out.exists():
            return {"error": err[-2000:]}
        raw = out.read_text()
        output = Path(self.args.output)
        dest = output.with_name(f"{output.stem}.{label}.pyspy.txt")  # ignored by git
        dest.write_text(raw)
        return summarise_pyspy(raw) | {"raw": str(dest)}


def summarise_pyspy(raw: str, top: int = 25) -> dict:
    """Collapsed stacks (``thread;frame;...;frame N``): samples per thread, the frames seen
    most as the leaf (own time) and inside (inclusive)."""
    threads: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        threads[frames[0]] += n
        names = [_frame_name(f) for f in frames[1:]]
        if names:
            own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n

    def share(c: collections.Counter) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(top)]

    return {"samples": total, "threads_pct": share(threads), "own_pct": share(own),
            "inclusive_pct": share(inclusive)}


def _frame_name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (file.py)``; native frames keep their name."""
    name, _, where = frame.partition(" (")
    if where:
        file = where.rstrip(")").rsplit(":", 1)[0]
        return f"{name} ({Path(file).name})"
    return name


# -- report ----------------------------------------------------------------------------------


def print_report(report: dict) -> None:
    m, v, p = report["machine"], report["versions"], report["params"]
    r = report["results"]
    verdict = {True: "MET", False: "MISSED"}
    print()
    print(f"machine: {m['nproc']} cores, {m['cpu']}, {m['memory']}, {m['os']}")
    print(f"load average: start {m['loadavg_start']}, end {m['loadavg_end']}")
    print("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    print(f"data: load {p['rows']:,} rows " + ", ".join(
        f"{k} {s:.1f} s" for k, s in report["setup_s"]["bench"].items()) +
        f"; {p['small_rows']:,} rows " + ", ".join(
        f"{k} {s:.1f} s" for k, s in report["setup_s"]["small"].items()))

    a = r["initial"]
    rows = a["rows"]
    print(f"\n(1) initial sync of public.events, {rows:,} rows; {p['runs']} runs "
          "(interleaved), median with min / max; CPU seconds median: client / postgres / other")
    print(f"  {'path':<44} {'median s':>9} {'min s':>7} {'max s':>7} {'M rows/s':>9}   cpu")
    labels = {
        "meterql": "meterql ws.sync + CHECKPOINT",
        "duckdb_postgres_ext": "DuckDB postgres ext: CTAS + CHECKPOINT",
        "copy_binary_psql": "COPY binary via psql > /dev/null (1 conn)",
        "adbc_reader_duckdb": "ref: plain ADBC reader -> DuckDB CTAS",
    }
    for name, label in labels.items():
        x = a["paths"][name]
        cpu = {k: statistics.median(run["cpu_s"][k] for run in x["runs"])
               for k in ("client", "postgres", "other")}
        print(f"  {label:<44} {x['median_s']:9.2f} {x['min_s']:7.2f} {x['max_s']:7.2f} "
              f"{rows / x['median_s'] / 1e6:9.2f}   {cpu['client']:.1f} / {cpu['postgres']:.1f}"
              f" / {cpu['other']:.1f}")
    mq = a["paths"]["meterql"]["runs"]
    ext = a["paths"]["duckdb_postgres_ext"]["runs"]
    print(f"  meterql split (median): ws.sync {statistics.median(x['sync_s'] for x in mq):.2f} s "
          f"(table {statistics.median(x['table_s'] for x in mq):.2f} s), CHECKPOINT "
          f"{statistics.median(x['checkpoint_s'] for x in mq):.2f} s; replica "
          f"{fmt_bytes(mq[-1]['file_bytes'])}, {mq[-1]['row_groups']} row groups")
    print(f"  extension split (median): ATTACH {statistics.median(x['attach_s'] for x in ext):.2f}"
          f" s, CTAS {statistics.median(x['ctas_s'] for x in ext):.2f} s, CHECKPOINT "
          f"{statistics.median(x['checkpoint_s'] for x in ext):.2f} s; file "
          f"{fmt_bytes(ext[-1]['file_bytes'])}, {ext[-1]['row_groups']} row groups; process wall "
          f"incl. start and LOAD "
          f"{statistics.median(x['process_wall_s'] for x in ext):.2f} s")
    print(f"  meterql / extension = {a['ratio_meterql_to_ext']:.2f}; target {TARGETS['initial']}:"
          f" {verdict[a['met']]}")

    b = r["incremental"]
    print(f"\n(2) incremental sync (append on id), {b['delta']:,} new rows per run; 1 warm-up + "
          f"{p['runs']} runs")
    print(f"  {'table':<28} {'median ms':>10} {'min ms':>8} {'max ms':>8} "
          f"{'in sync_source ms':>18}")
    for name, label in (("small", "small"), ("pg", "big")):
        x = b["tables"][name]
        print(f"  {label} ({x['table_rows_before']:,} rows + deltas){'':<3} "
              f"{x['median_s'] * 1000:10.1f} {x['min_s'] * 1000:8.1f} {x['max_s'] * 1000:8.1f} "
              f"{x['table_s_median'] * 1000:18.1f}")
    print(f"  big / small = {b['ratio_big_to_small']:.2f}; target {TARGETS['incremental']}: "
          f"{verdict[b['met']]}")

    prof = report.get("profiles", {})
    if "initial_ladder" in prof:
        print("\nwhere the initial sync's time goes (each step once):")
        for name, st in prof["initial_ladder"].items():
            if "seconds" in st:
                extra = ", ".join(
                    f"{k} {fmt_bytes(v) if k == 'file_bytes' else round(v, 2)}"
                    for k, v in st.items()
                    if k in ("checkpoint_s", "file_bytes", "row_groups", "batches",
                             "batch_rows_median"))
                print(f"  {name:<54} {st['seconds']:6.2f} s  cpu {st['cpu_s']}"
                      + (f"\n  {'':<54} {extra}" if extra else ""))
            else:
                print(f"  {name}: {st}")
    if "incremental_steps" in prof:
        print("\nparts of an append sync, on each replica:")
        for name, st in prof["incremental_steps"].items():
            print(f"  {name}: " + ", ".join(f"{k} {s * 1000:.1f} ms" for k, s in st.items()))
    for label in ("initial_pyspy", "incremental_pyspy"):
        if label in prof:
            s = prof[label]
            if "error" in s:
                print(f"\npy-spy {label}: {s['error']}")
                continue
            print(f"\npy-spy {label} ({s['samples']} samples; {s['raw']}):")
            print("  threads: " + ", ".join(f"{k} {v}%" for k, v in s["threads_pct"]))
            print("  own time: ")
            for k, val in s["own_pct"][:15]:
                print(f"    {val:5.1f}%  {k}")
            print("  inclusive: ")
            for k, val in s["inclusive_pct"][:25]:
                print(f"    {val:5.1f}%  {k}")
    print()


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sync",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the big table")
    ap.add_argument("--small-rows", type=int, default=1_000_000,
                    help="rows of the small table for (2); at most --rows / 10")
    ap.add_argument("--delta", type=int, default=100_000, help="(2): new rows per run")
    ap.add_argument("--runs", type=int, default=3, help="timed runs")
    ap.add_argument("--wait-idle", type=float, default=10, metavar="S",
                    help="before each timed call wait up to S s for the machine to go quiet "
                    "(this VM is shared); 0 to skip")
    ap.add_argument("--profile", action="store_true", help="profile even when targets are met")
    ap.add_argument("--py-spy", default=shutil.which("py-spy"), metavar="PATH",
                    help="py-spy binary for the profiles (default: py-spy on PATH)")
    ap.add_argument("--output", default=str(RESULTS / "sync.json"))
    args = ap.parse_args()
    args.small_rows = min(args.small_rows, args.rows // 10)
    RESULTS.mkdir(parents=True, exist_ok=True)

    report: dict = {
        "benchmark": "sync",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "-m", "benchmarks.sync", *sys.argv[1:]]),
        "machine": machine(),
        "params": {k: v for k, v in vars(args).items() if k not in ("output",)},
        "targets": TARGETS,
        "results": {},
        "profiles": {},
    }
    m = report["machine"]
    print(f"machine: {m['nproc']} cores, {m['cpu']}; load average {m['loadavg_start']}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="meterql-bench-sync-"))
    try:
        with PostgresCluster() as pg:
            report["versions"] = versions(pg)
            print(f"PostgreSQL {report['versions']['postgresql']} on port {pg.port}; loading "
                  f"{args.rows:,} + {args.small_rows:,} rows ...", flush=True)
            report["setup_s"] = {
                "bench": load_postgres(pg, args.rows),
                "small": load_postgres(_Database(pg, "small"), args.small_rows),
            }
            for db in ("bench", "small"):
                pg.run_sql("ALTER TABLE public.events SET (autovacuum_enabled = off)", dbname=db)
            print("loaded: " + json.dumps(report["setup_s"]), flush=True)
            os.environ[PW_ENV] = pg.password
            bench = Bench(pg, work, args)
            results = report["results"]
            prof = report["profiles"]
            print("(1) initial sync ...", flush=True)
            results["initial"] = bench.initial()
            report["versions"]["duckdb_postgres_ext_venv"] = {
                k: results["initial"]["paths"]["duckdb_postgres_ext"]["runs"][0][k]
                for k in ("duckdb", "extension", "settings")
            }
            # Profiled before (2), which adds rows to the table.
            if args.profile or not results["initial"]["met"]:
                print("profile (1): ladder ...", flush=True)
                prof["initial_ladder"] = bench.ladder_initial()
                if args.py_spy:
                    print("profile (1): py-spy of one ws.sync ...", flush=True)
                    prof["initial_pyspy"] = bench.py_spy(
                        args.py_spy, lambda: bench.meterql_initial(Window(bench.cpu), "pyspy"),
                        "initial")
            print("(2) incremental sync ...", flush=True)
            results["incremental"] = bench.incremental()
            if args.profile or not results["incremental"]["met"]:
                print("profile (2): parts ...", flush=True)
                prof["incremental_steps"] = bench.ladder_incremental()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.environ.pop(PW_ENV, None)

    finish_report(report, args.output, print_report)


if __name__ == "__main__":
    main()
