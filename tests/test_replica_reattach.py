"""After a sync wrote rows, the replica is attached again (DuckDB then reads the rows as stored,
not as the connection wrote them), only when no query reads: queries running beside syncs never
see it missing."""

from __future__ import annotations

import threading
import time

import meterql
from meterql.engine.shared_lock import SharedLock

SETUP = """
CREATE TABLE usage (id bigint PRIMARY KEY, customer_id int, qty numeric(12,3));
INSERT INTO usage SELECT g, g % 7, g / 4.0 FROM generate_series(1, 2000) AS g;
"""


def test_the_exclusive_holder_waits_for_the_readers_and_goes_before_new_ones():
    lock = SharedLock()
    order: list[str] = []
    reading, release = threading.Event(), threading.Event()

    def reader(name: str, hold: threading.Event | None) -> None:
        with lock.shared():
            order.append(f"{name} in")
            if hold is not None:
                reading.set()
                hold.wait(5)
            order.append(f"{name} out")

    def writer() -> None:
        with lock.exclusive():
            order.append("writer")

    first = threading.Thread(target=reader, args=("r1", release))
    first.start()
    assert reading.wait(5)
    w = threading.Thread(target=writer)
    w.start()
    while not lock._waiting:  # the writer is waiting for r1
        time.sleep(0.001)
    late = threading.Thread(target=reader, args=("r2", None))
    late.start()
    time.sleep(0.05)
    assert order == ["r1 in"]  # neither the writer nor the late reader got in
    release.set()
    for t in (first, w, late):
        t.join(5)
    assert order == ["r1 in", "r1 out", "writer", "r2 in", "r2 out"]


def test_queries_beside_syncs_always_find_the_replica(pg_cluster, pg_database, tmp_path):
    db = pg_database("reattach", SETUP)
    ws = meterql.connect(tmp_path / "home")
    ws.sources.add("pg", pg_cluster.uri(db), mode="sync")
    ws.sync.set_strategy("pg.public.usage", "append", cursor="id")
    ws.sync("pg")
    errors: list[BaseException] = []
    seen: list[list[int]] = [[], []]
    stop = threading.Event()

    def query(counts: list[int]) -> None:
        while not stop.is_set():
            try:
                counts.append(ws.query("SELECT count(*) FROM pg.public.usage").rows()[0][0])
            except BaseException as exc:  # (reported below)
                errors.append(exc)
                return

    threads = [threading.Thread(target=query, args=(counts,)) for counts in seen]
    for t in threads:
        t.start()
    try:
        for i in range(5):
            low = 2001 + 100 * i
            pg_cluster.run_sql(f"INSERT INTO usage SELECT g, g % 7, 1 FROM "
                               f"generate_series({low}, {low + 99}) AS g", dbname=db)
            [report] = ws.sync("pg")
            assert report.error is None and report.tables[0].rows == 100
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert errors == []
    for counts in seen:  # each reader: never fewer rows than before, only whole syncs
        assert counts and counts == sorted(counts)
        assert set(counts) <= {2000 + 100 * i for i in range(6)}
    assert ws.query("SELECT count(*) FROM pg.public.usage").rows()[0][0] == 2500
    ws.close()
