"""``meterql demo``: a small SQLite + DuckDB workspace and a federated billing query over it.

The SQLite file plays the CRM (customers and plans); the DuckDB file plays the usage store
(metered events with exact decimal quantities). Nothing needs a server.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from meterql.workspace import Workspace

DEMO_QUERY = """\
SELECT c.name AS customer, c.plan, e.meter,
       count(*) AS events,
       sum(e.quantity) AS quantity
FROM usage.main.events AS e
JOIN crm.main.customers AS c ON c.id = e.customer_id
WHERE e.ts >= TIMESTAMPTZ '2026-10-01' AND e.ts < TIMESTAMPTZ '2026-11-01'
  AND c.plan = :plan
GROUP BY ALL
ORDER BY quantity DESC, customer, e.meter
LIMIT 10"""

_NAMES = ["Acme GmbH", "O'Reilly & Sons", "Zoë Analytics", "東京 Robotics", "Nordwind AB",
          "Pampa SRL", "Kiwi Ltd", "Fjord AS", "Café Olé", "Blue Whale Inc"]
_PLANS = ["starter", "growth", "enterprise"]
_METERS = ["api_calls", "storage_gb_hours", "compute_seconds"]


def build_demo_data(folder: Path, events: int = 20_000, seed: int = 7) -> tuple[Path, Path]:
    """Write ``crm.db`` (SQLite) and ``usage.duckdb`` into ``folder`` (deterministic)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    crm, usage = folder / "crm.db", folder / "usage.duckdb"
    if not crm.exists():
        tmp = crm.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        con = sqlite3.connect(tmp)
        con.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, plan TEXT, "
            "country TEXT, signed_up DATE, credit DECIMAL(12,2))"
        )
        rows = [
            (i + 1, name, _PLANS[i % 3], rng.choice(["DE", "US", "JP", "SE", "AR"]),
             (date(2025, 1, 1) + timedelta(days=rng.randrange(600))).isoformat(),
             f"{rng.randrange(0, 100000) / 100:.2f}")
            for i, name in enumerate(_NAMES)
        ]
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", rows)
        con.commit()
        con.close()
        tmp.rename(crm)
    if not usage.exists():
        tmp = usage.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        start = datetime(2026, 9, 1, tzinfo=UTC)
        duck = duckdb.connect(str(tmp))
        duck.execute(
            "CREATE TABLE events (id BIGINT PRIMARY KEY, customer_id BIGINT, meter VARCHAR, "
            "ts TIMESTAMPTZ, quantity DECIMAL(18, 6))"
        )
        data = [
            (i + 1, rng.randrange(1, len(_NAMES) + 1), rng.choice(_METERS),
             start + timedelta(seconds=rng.randrange(0, 91 * 86400)),
             Decimal(rng.randrange(1, 5_000_000)) / Decimal(1000))
            for i in range(events)
        ]
        columns = list(zip(*data, strict=True))
        batch = pa.table(
            {
                "id": pa.array(columns[0], pa.int64()),
                "customer_id": pa.array(columns[1], pa.int64()),
                "meter": pa.array(columns[2], pa.string()),
                "ts": pa.array(columns[3], pa.timestamp("us", tz="UTC")),
                "quantity": pa.array(columns[4], pa.decimal128(18, 6)),
            }
        )
        duck.register("batch", batch)
        duck.execute("INSERT INTO events SELECT * FROM batch")
        duck.close()
        tmp.rename(usage)
    return crm, usage


def prepare_demo(ws: Workspace) -> None:
    """Create the demo files under the workspace and register them (idempotent)."""
    crm, usage = build_demo_data(ws.home / "demo_data")
    names = {s.name for s in ws.sources()}
    if "crm" not in names:
        ws.sources.add("crm", f"sqlite://{crm}")
    if "usage" not in names:
        ws.sources.add("usage", f"duckdb://{usage}")
