"""``meterql demo``: a small SQLite + DuckDB workspace and a federated billing query over it.

The SQLite file plays the CRM (customers and plans); the DuckDB file plays the usage store
(metered events with exact decimal quantities). Nothing needs a server. So that every page of
the navigator (``meterql demo --serve``) shows something, the workspace also gets an aggregate
with one evaluation, an event stream of the last two days, a CSV upload and a manual table.
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


DEMO_AGGREGATE = """\
-- name: api_calls
-- description: Billable API calls per customer
-- unit: call
-- customer: customer_id
SELECT e.customer_id, sum(e.quantity) AS quantity
FROM usage.main.events AS e
WHERE e.meter = 'api_calls'
  AND e.ts >= :period_start AND e.ts < :period_end
  AND (:customer_id IS NULL OR e.customer_id = :customer_id)
GROUP BY ALL
"""

DEMO_PRICES = (
    "plan,meter,unit_price\n"
    + "".join(f"{plan},{meter},{price}\n" for plan, prices in
              [("starter", ("0.0020", "0.0150", "0.0009")),
               ("growth", ("0.0015", "0.0120", "0.0007")),
               ("enterprise", ("0.0010", "0.0090", "0.0005"))]
              for meter, price in zip(_METERS, prices, strict=True))
).encode()

#: A demo actor for the demo's own changes (the manual table's audit shows it).
DEMO_ACTOR = "meterql demo"


def prepare_demo(ws: Workspace) -> None:
    """Create the demo files under the workspace and register them, and add the demo's
    aggregate, event stream, upload and manual table (idempotent)."""
    crm, usage = build_demo_data(ws.home / "demo_data")
    names = {s.name for s in ws.sources()}
    if "crm" not in names:
        ws.sources.add("crm", f"sqlite://{crm}")
    if "usage" not in names:
        ws.sources.add("usage", f"duckdb://{usage}")
    if not isinstance(ws, Workspace):
        return  # a client of the server that holds the folder: its sources are enough here
    if not any(a.name == "api_calls" for a in ws.aggregates.list()):
        ws.aggregates.apply_definitions([("api_calls.sql", DEMO_AGGREGATE)])
        ws.aggregates.evaluate("api_calls", date(2026, 10, 1), date(2026, 11, 1))
    if "api_requests" not in {s.name for s in ws.events.streams()}:
        ws.events.ingest("api_requests", demo_events(datetime.now(UTC)))
    local = {t.full_name for t in ws.tables("local")}
    if "local.uploads.prices" not in local:
        ws.uploads.load(DEMO_PRICES, "prices")
    if "local.manual.credits" not in local:
        ws.manual.create("credits", {"customer_id": "BIGINT", "amount": "DECIMAL(12,2)",
                                     "reason": "VARCHAR"}, ["customer_id"], DEMO_ACTOR)
        for customer, amount, reason in [(1, "25.00", "onboarding credit"),
                                         (4, "120.50", "outage on 2026-10-14"),
                                         (7, "9.99", "goodwill")]:
            ws.manual.insert("credits", {"customer_id": customer, "amount": amount,
                                         "reason": reason}, DEMO_ACTOR)


def demo_events(now: datetime, count: int = 600, seed: int = 7) -> list[dict[str, object]]:
    """``count`` API request events over the 48 hours before ``now`` (within the age that
    events are accepted at), busier in the daytime."""
    rng = random.Random(seed)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=48)
    events = []
    for i in range(count):
        hour = rng.choices(range(48), weights=[3 if 8 <= h % 24 < 20 else 1
                                               for h in range(48)])[0]
        at = start + timedelta(hours=hour, seconds=rng.randrange(3600))
        events.append({
            "id": f"req-{i + 1:05d}", "timestamp": min(at, now).isoformat(),
            "customer_id": str(rng.randrange(1, len(_NAMES) + 1)),  # (an id is a string)
            "endpoint": rng.choice(["/v1/invoices", "/v1/usage", "/v1/customers"]),
            "status": rng.choices([200, 201, 404, 500], weights=[80, 10, 7, 3])[0],
            "duration_ms": Decimal(rng.randrange(5, 2500)) / Decimal(10),
        })
    return events
