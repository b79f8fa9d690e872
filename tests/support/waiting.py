"""Waiting for something to happen, and what PostgreSQL's backends are doing (tests only)."""

from __future__ import annotations

import time


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def meterql_backends(pg_cluster, db: str, extra: str = "") -> int:
    """meterql's sessions on database ``db`` (``extra``: more conditions)."""
    out = pg_cluster.run_sql(
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE datname = '{db}' AND application_name = 'meterql' {extra}",
        dbname="postgres", tuples_only=True)
    return int(out.strip())


def sleeping_backends(pg_cluster, db: str) -> int:
    """meterql's sessions on ``db`` inside pg_sleep (the tests' slow query)."""
    return meterql_backends(pg_cluster, db, "AND wait_event = 'PgSleep'")
