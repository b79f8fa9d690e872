"""The usage-billing dataset: deterministic (hash of the row number, no random()), built
server-side with INSERT ... SELECT generate_series in chunks, resumable per chunk."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc_pg
import pyarrow.parquet as pq

METERS = ["api_calls", "storage_gb_hours", "compute_seconds", "egress_gb", "seats"]
PRICES = {  # the price list CSV (meter, unit_price)
    "api_calls": "0.0004",
    "storage_gb_hours": "0.0125",
    "compute_seconds": "0.0031",
    "egress_gb": "0.0900",
    "seats": "12.5000",
}
PLANS = [  # code, name, unit_price
    ("free", "Free", "0.0000"),
    ("starter", "Starter", "0.0100"),
    ("growth", "Growth", "0.0080"),
    ("scale", "Scale", "0.0060"),
    ("enterprise", "Enterprise", "0.0045"),
]
COUNTRIES = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "AU", "NL"]
START = "2025-12-01 00:00:00+00"  # 12 months: 2025-12 .. 2026-11 (365 days)
SPAN_S = 365 * 86400 - 3600  # leaves room for the hour of jitter
CHUNK = 1_000_000
SCALES_GB = {"1gb": 1, "10gb": 10, "30gb": 30}  # PostgreSQL data per --scale

DDL = {
    "plans": "CREATE TABLE IF NOT EXISTS public.plans (code text PRIMARY KEY, name text NOT NULL,"
    " unit_price numeric(12,4) NOT NULL)",
    "customers": "CREATE TABLE IF NOT EXISTS public.customers (id int PRIMARY KEY, name text NOT"
    " NULL, plan_code text NOT NULL, country text NOT NULL, created_at timestamptz NOT NULL)",
    "events": "CREATE TABLE IF NOT EXISTS public.events (id bigint PRIMARY KEY, customer_id int"
    " NOT NULL, meter text NOT NULL, ts timestamptz NOT NULL, quantity numeric(18,6) NOT NULL,"
    " properties jsonb)",
}


def h(expr: str, seed: int, mod: int) -> str:
    """A deterministic integer in [0, mod) from ``expr`` (PostgreSQL's hashint8extended)."""
    return f"(abs(hashint8extended(({expr})::bigint, {seed})) % {mod})"


def events_select(lo: int, hi: int, total: int, customers: int) -> str:
    """Rows lo..hi of ``total``: ts rises with id (an append-only log) with up to 1 h of
    jitter; customer ids skewed toward low ids (1 + floor(N u^2)), as real usage is."""
    meters = "ARRAY[" + ",".join(f"'{m}'" for m in METERS) + "]"
    u = f"({h('g', 1, 1_000_000)}::float8 / 1e6)"
    return f"""
        SELECT g,
               1 + floor({customers} * {u} * {u})::int,
               ({meters})[1 + {h('g', 2, len(METERS))}],
               TIMESTAMPTZ '{START}'
                 + make_interval(secs => (g - 1) * ({SPAN_S}.0 / {total}) + {h('g', 3, 3600)}),
               ({h('g', 4, 1_000_000_000)}::numeric / 1000000)::numeric(18,6),
               jsonb_build_object('region', (ARRAY['eu','us','ap'])[1 + {h('g', 5, 3)}],
                                  'sku', 'sku-' || {h('g', 6, 100)})
        FROM generate_series({lo}::bigint, {hi}::bigint) AS g"""


class Pg:
    """An autocommit ADBC connection to one database (works for the throwaway cluster and for
    an existing server given by --pg-uri)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.conn = adbc_pg.connect(uri, autocommit=True)

    def exec(self, sql: str) -> None:
        with contextlib.closing(self.conn.cursor()) as cur:
            cur.execute(sql)

    def one(self, sql: str):
        with contextlib.closing(self.conn.cursor()) as cur:
            cur.execute(sql)
            return cur.fetchone()

    def arrow(self, sql: str):
        with contextlib.closing(self.conn.cursor()) as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table()

    def count(self, table: str) -> int | None:
        if self.one(f"SELECT to_regclass('public.{table}')")[0] is None:
            return None
        return int(self.one(f"SELECT count(*) FROM public.{table}")[0])

    def close(self) -> None:
        self.conn.close()


def sizes(events: int) -> dict[str, int]:
    return {"events": events, "customers": max(50, events // 1000), "plans": len(PLANS)}


def load(pg: Pg, events: int, progress=None) -> dict:
    """Create and fill the three tables; a table whose row count already matches is skipped,
    a partly loaded events table continues after its last full chunk. Seconds per step."""
    n = sizes(events)
    out: dict = {"skipped": []}
    pg.exec("SET TimeZone = 'UTC'")
    t0 = time.perf_counter()
    if pg.count("plans") != n["plans"]:
        pg.exec("DROP TABLE IF EXISTS public.plans")
        pg.exec(DDL["plans"])
        vals = ",".join(f"('{c}', '{nm}', {p})" for c, nm, p in PLANS)
        pg.exec(f"INSERT INTO public.plans VALUES {vals}")
    else:
        out["skipped"].append("plans")
    if pg.count("customers") != n["customers"]:
        pg.exec("DROP TABLE IF EXISTS public.customers")
        pg.exec(DDL["customers"])
        plans = "ARRAY['free','starter','starter','growth','growth','growth','scale','scale'," \
            "'scale','scale','scale','scale','scale','scale','scale','scale','scale','scale'," \
            "'scale','enterprise']"  # 5% enterprise
        countries = "ARRAY[" + ",".join(f"'{c}'" for c in COUNTRIES) + "]"
        pg.exec(f"""INSERT INTO public.customers
            SELECT g, 'Customer ' || lpad(g::text, 7, '0'), ({plans})[1 + {h('g', 11, 20)}],
                   ({countries})[1 + {h('g', 12, len(COUNTRIES))}],
                   TIMESTAMPTZ '2024-01-01 00:00:00+00'
                     + make_interval(days => {h('g', 13, 700)}::int)
            FROM generate_series(1, {n['customers']}) AS g""")
    else:
        out["skipped"].append("customers")
    out["dimensions_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if pg.count("events") is not None:  # rows a stopped run appended past the dataset
        pg.exec(f"DELETE FROM public.events WHERE id > {events}")
    have = pg.count("events")
    if have == events:
        out["skipped"].append("events")
    else:
        if have is None:
            pg.exec(DDL["events"])
            have = 0
        done = int(pg.one("SELECT coalesce(max(id), 0) FROM public.events")[0])
        if done != have or done > events:  # not a clean prefix: start over
            pg.exec("TRUNCATE public.events")
            done = 0
        if progress:
            progress.start(events, done)
        while done < events:
            hi = min(events, done + CHUNK)
            pg.exec("INSERT INTO public.events " + events_select(done + 1, hi, events,
                                                                n["customers"]))
            done = hi
            if progress:
                progress.advance(done)
        if progress:
            progress.stop()
    out["events_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pg.exec("SET maintenance_work_mem = '512MB'")
    pg.exec("CREATE INDEX IF NOT EXISTS events_customer_ts_idx ON public.events (customer_id, ts)")
    pg.exec("CREATE INDEX IF NOT EXISTS events_ts_idx ON public.events (ts)")
    pg.exec("VACUUM ANALYZE public.events")
    pg.exec("ANALYZE public.customers")
    pg.exec("ANALYZE public.plans")
    out["indexes_analyze_s"] = time.perf_counter() - t0
    out["bytes"] = {t: int(pg.one(f"SELECT pg_total_relation_size('public.{t}')")[0])
                    for t in ("events", "customers", "plans")}
    out["rows"] = n
    return out


def bytes_per_event(loaded: dict) -> float:
    """PostgreSQL bytes (all three tables, indexes included) per event row."""
    return sum(loaded["bytes"].values()) / loaded["rows"]["events"]


def append_events(pg: Pg, new: int, total_before: int, customers: int) -> None:
    """``new`` rows after the last one (ids and ts continue past the existing log)."""
    lo = total_before + 1
    pg.exec("INSERT INTO public.events " + events_select(lo, lo + new - 1, total_before,
                                                         customers))


def write_side_files(pg: Pg, run_dir: Path) -> dict[str, Path]:
    """The price list CSV, and the customers in a SQLite file (the cross-source side) with a
    Parquet copy for the engines that read it natively."""
    prices = run_dir / "prices.csv"
    prices.write_text("meter,unit_price\n" + "".join(f"{m},{p}\n" for m, p in PRICES.items()))
    cust = pg.arrow("SELECT id, name, plan_code, country FROM public.customers ORDER BY id")
    lite = run_dir / "dim.sqlite"
    lite.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(lite)) as con:
        con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "plan_code TEXT NOT NULL, country TEXT NOT NULL)")
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)",
                        zip(*(c.to_pylist() for c in cust.columns), strict=True))
        con.commit()
    parquet = run_dir / "dim_customers.parquet"
    pq.write_table(cust, parquet)
    return {"prices": prices, "dim_sqlite": lite, "dim_parquet": parquet}
