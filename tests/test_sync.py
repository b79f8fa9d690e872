"""Sync mode against a real PostgreSQL: every change reaches the replica, nothing is lost or
doubled, and a failed or killed sync leaves the last committed state."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

import meterql
from meterql.errors import InvalidSourceError, SourceUnavailableError

SETUP = """
CREATE TABLE usage (id bigint PRIMARY KEY, customer_id int, at timestamptz, qty numeric(12,3),
                    note text);
INSERT INTO usage SELECT g, g % 5, TIMESTAMPTZ '2026-10-01' + g * interval '1 minute',
                         g / 8.0, 'n' || g FROM generate_series(1, 500) AS g;
"""
COMPARE = "SELECT * FROM usage ORDER BY id"


def source_rows(ws):
    """The source's rows, read directly through the same database registered as ``src`` in
    direct mode (direct mode's exactness is the differential suite's business)."""
    ws.sources.refresh("src")
    return ws.query("SELECT * FROM src.public.usage ORDER BY id", max_rows=None).rows()


def replica_rows(ws):
    return ws.query("SELECT * FROM pg.public.usage ORDER BY id", max_rows=None).rows()


@pytest.fixture()
def synced(pg_cluster, pg_database, tmp_path):
    db = pg_database("sync", SETUP)
    ws = meterql.connect(tmp_path / "home")
    ws.sources.add("pg", pg_cluster.uri(db), mode="sync")
    ws.sources.add("src", pg_cluster.uri(db))
    yield ws, db
    ws.close()


def test_full_sync_carries_inserts_updates_and_deletes(synced, pg_cluster):
    ws, db = synced
    with pytest.raises(SourceUnavailableError, match="meterql sync pg"):
        ws.query("SELECT count(*) FROM pg.public.usage")
    [report] = ws.sync()
    assert report.error is None and report.rows == 500
    assert replica_rows(ws) == source_rows(ws)
    pg_cluster.run_sql(
        "INSERT INTO usage VALUES (501, 1, now(), 1.5, 'new');"
        "UPDATE usage SET qty = qty + 1 WHERE id <= 10;"
        "UPDATE usage SET note = 'twice' WHERE id = 3;"
        "UPDATE usage SET note = 'thrice' WHERE id = 3;"
        "DELETE FROM usage WHERE id BETWEEN 100 AND 149;",
        dbname=db,
    )
    ws.sync("pg")
    assert replica_rows(ws) == source_rows(ws)
    assert len(replica_rows(ws)) == 451
    [mark] = ws.sync.watermarks("pg")
    assert mark.rows == 451 and mark.strategy == "full"


def test_append_rereads_the_boundary_and_late_rows(synced, pg_cluster):
    ws, db = synced
    ws.sync.set_strategy("pg.public.usage", "append", cursor="at", lag=120)
    ws.sync("pg")
    last = "TIMESTAMPTZ '2026-10-01' + 500 * interval '1 minute'"
    pg_cluster.run_sql(
        f"INSERT INTO usage VALUES (1001, 1, {last}, 9, 'same instant as the last row');"
        f"INSERT INTO usage VALUES (1002, 2, {last} - interval '90 seconds', 8, 'late, in lag');"
        f"INSERT INTO usage VALUES (1003, 3, {last} + interval '1 hour', 7, 'later');",
        dbname=db,
    )
    [report] = ws.sync("pg")
    table = report.tables[0]
    assert table.strategy == "append" and table.rows < 10  # read the window, not the table
    assert replica_rows(ws) == source_rows(ws)
    ws.sync("pg")  # nothing new: nothing doubled
    assert replica_rows(ws) == source_rows(ws)
    assert ws.sync.watermarks("pg")[0].cursor_column == "at"


def test_a_new_column_reaches_the_replica(synced, pg_cluster):
    ws, db = synced
    ws.sync.set_strategy("pg.public.usage", "append", cursor="id")
    ws.sync("pg")
    pg_cluster.run_sql("ALTER TABLE usage ADD COLUMN region text DEFAULT 'eu'", dbname=db)
    [report] = ws.sync("pg")
    note = "columns changed at the source (new column region): copied whole"
    assert report.tables[0].note == note
    assert report.tables[0].rows == 500
    assert ws.query("SELECT DISTINCT region FROM pg.public.usage").rows() == [("eu",)]
    assert replica_rows(ws) == source_rows(ws)


def test_switching_modes_keeps_the_sql_and_the_answer(synced, pg_cluster):
    ws, _ = synced
    ws.sync("pg")
    sql = "SELECT customer_id, sum(qty) AS q, count(*) AS n FROM pg.public.usage GROUP BY 1"
    local = ws.query(sql)
    ws.sources.set_mode("pg", "direct")
    direct = ws.query(sql)
    assert sorted(local.rows()) == sorted(direct.rows())
    assert local.to_arrow().schema.types == direct.to_arrow().schema.types
    assert local.watermarks and not direct.watermarks
    with pytest.raises(InvalidSourceError, match="direct mode"):
        ws.sync("pg")


def test_source_down_keeps_the_last_replica(pg_cluster, tmp_path):
    from devtools.pgcluster import PostgresCluster

    with PostgresCluster() as private:
        private.create_database("down")
        private.run_sql(SETUP, dbname="down")
        with meterql.connect(tmp_path / "home") as ws:
            ws.sources.add("pg", private.uri("down"), mode="sync")
            ws.sync()
            before = replica_rows(ws)
            private.stop()
            [report] = ws.sync()
            assert isinstance(report.error, SourceUnavailableError)
            assert replica_rows(ws) == before and len(before) == 500


def test_a_sync_killed_mid_copy_leaves_the_previous_state(pg_cluster, pg_database, tmp_path):
    db = pg_database("killed", SETUP)
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg_cluster.uri(db), mode="sync")
        ws.sources.add("src", pg_cluster.uri(db))
        ws.sync()
        before = replica_rows(ws)
    pg_cluster.run_sql(
        "INSERT INTO usage SELECT g, 1, now(), 1, 'bulk' FROM generate_series(1000, 300000) g;",
        dbname=db,
    )
    script = textwrap.dedent(f"""
        import os, signal, meterql
        ws = meterql.connect({str(home)!r})
        def die(table, rows):
            if rows > 0:
                os.kill(os.getpid(), signal.SIGKILL)
        ws.sync("pg", progress=die)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with meterql.connect(home) as ws:
        assert replica_rows(ws) == before  # exactly the last committed run
        [report] = ws.sync()
        assert report.error is None
        assert replica_rows(ws) == source_rows(ws)
        assert ws.sync.watermarks("pg")[0].rows == 500 + 299001


MERGE_SETUP = """
CREATE TABLE accounts (id int PRIMARY KEY, plan text, balance numeric(12,2),
                       updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO accounts (id, plan, balance, updated_at)
SELECT g, 'starter', g * 1.5, TIMESTAMPTZ '2026-11-01' + g * interval '1 second'
FROM generate_series(1, 300) AS g;
"""


def test_merge_carries_updates_and_deletes_reading_only_the_change(
    pg_cluster, pg_database, tmp_path
):
    db = pg_database("merge", MERGE_SETUP)
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db), mode="sync")
        ws.sources.add("src", pg_cluster.uri(db))
        assert ws.tables.get("pg.public.accounts").primary_key == ("id",)
        ws.sync.set_strategy("pg.public.accounts", "merge", cursor="updated_at")
        ws.sync("pg")
        pg_cluster.run_sql(
            "UPDATE accounts SET plan = 'growth', updated_at = TIMESTAMPTZ '2026-12-01' "
            "WHERE id IN (5, 6);"
            "UPDATE accounts SET balance = 0, updated_at = TIMESTAMPTZ '2026-12-02' WHERE id = 5;"
            "DELETE FROM accounts WHERE id BETWEEN 10 AND 19;"
            "INSERT INTO accounts VALUES (301, 'new', 1, TIMESTAMPTZ '2026-12-03');",
            dbname=db,
        )
        [report] = ws.sync("pg")
        assert report.error is None
        # ids 5, 6, 301, plus id 300 at the last cursor value (re-read, never doubled)
        # read: 5, 6, 301 and the cursor's boundary row again; changed: 2 updated, 1 new and
        # 10 deleted (the boundary row, read as the replica has it, is not a change)
        assert report.tables[0].strategy == "merge" and report.tables[0].read == 4
        assert report.tables[0].rows == 3 + 10
        sql = "SELECT * FROM {}.public.accounts ORDER BY id"
        ws.sources.refresh("src")
        assert ws.query(sql.format("pg")).rows() == ws.query(sql.format("src")).rows()
        assert ws.query("SELECT count(*) FROM pg.public.accounts").rows() == [(291,)]


def test_merge_needs_a_primary_key(synced):
    ws, _ = synced
    from meterql.errors import InvalidSourceError as Invalid

    ws.sources.refresh("pg")
    assert ws.tables.get("pg.public.usage").primary_key == ("id",)
    with pytest.raises(Invalid, match="needs a cursor column"):
        ws.sync.set_strategy("pg.public.usage", "merge")


def test_one_run_reads_every_table_in_one_snapshot(pg_cluster, pg_database, tmp_path):
    db = pg_database("snap", """
        CREATE TABLE a_first (id int PRIMARY KEY);
        INSERT INTO a_first SELECT generate_series(1, 10);
        CREATE TABLE b_second (id int PRIMARY KEY);
        INSERT INTO b_second SELECT generate_series(1, 10);
    """)
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db), mode="sync")
        written = []

        def meanwhile(table: str, rows: int) -> None:
            # While the run reads the first table, another session commits to the second.
            if table.endswith("a_first") and not written:
                pg_cluster.run_sql("INSERT INTO b_second SELECT generate_series(11, 20)", dbname=db)
                written.append(True)

        [report] = ws.sync("pg", progress=meanwhile)
        assert report.error is None and written
        assert ws.query("SELECT count(*) FROM pg.public.b_second").rows() == [(10,)]
        ws.sync("pg")
        assert ws.query("SELECT count(*) FROM pg.public.b_second").rows() == [(20,)]


def test_watermarks_are_a_table_sql_can_read(synced):
    ws, _ = synced
    ws.sync("pg")
    # (bookkeeping, not a table of the source: named and read, never listed)
    assert [t.full_name for t in ws.tables("pg")] == ["pg.public.usage"]
    assert "pg.__meterql__.sync_state" not in [t.full_name for t in ws.tables()]
    assert ws.tables.get("pg.__meterql__.sync_state").kind == "sync state"
    rows = ws.query(
        "SELECT table_name, strategy, rows FROM pg.__meterql__.sync_state"
    ).rows()
    assert rows == [("usage", "full", 500)]
    joined = ws.query(
        "SELECT s.rows = count(u.id) AS same FROM pg.__meterql__.sync_state s, pg.public.usage u "
        "GROUP BY s.rows"
    ).rows()
    assert joined == [(True,)]


def test_rows_reach_duckdb_in_whole_row_groups():
    import pyarrow as pa

    from meterql.sync.runner import whole_row_groups

    schema = pa.schema([("a", pa.int64())])
    sizes = [100, 250, 7, 0, 300]
    batches, start = [], 0
    for n in sizes:
        batches.append(pa.record_batch([pa.array(range(start, start + n), pa.int64())],
                                       schema=schema))
        start += n
    out = list(whole_row_groups(pa.RecordBatchReader.from_batches(schema, batches), size=128))
    assert [b.num_rows % 128 for b in out[:-1]] == [0] * (len(out) - 1)
    assert pa.Table.from_batches(out).column("a").to_pylist() == list(range(sum(sizes)))


def test_a_type_change_is_refused_when_full_copies_are_off(synced, pg_cluster):
    ws, db = synced
    ws.sync("pg")
    before = replica_rows(ws)
    ws.settings.set("sync_full_copy_on_schema_change", False)
    pg_cluster.run_sql("ALTER TABLE usage ALTER COLUMN qty TYPE numeric(14,4)", dbname=db)
    [report] = ws.sync("pg")
    assert "qty DECIMAL(12,3) -> DECIMAL(14,4)" in str(report.error)
    assert replica_rows(ws) == before
    ws.settings.set("sync_full_copy_on_schema_change", True)
    [report] = ws.sync("pg")
    assert report.error is None and replica_rows(ws) == source_rows(ws)


def test_merge_with_a_soft_delete_column_skips_the_key_read(pg_cluster, pg_database, tmp_path):
    db = pg_database("soft", MERGE_SETUP + "ALTER TABLE accounts ADD deleted_at timestamptz;")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db), mode="sync")
        ws.sources.add("src", pg_cluster.uri(db))
        with pytest.raises(InvalidSourceError, match="soft_delete='nope' does not apply"):
            ws.sync.set_strategy("pg.public.accounts", "merge", cursor="updated_at",
                                 soft_delete="nope")
        ws.sync.set_strategy("pg.public.accounts", "merge", cursor="updated_at",
                             soft_delete="deleted_at")
        ws.sync("pg")
        pg_cluster.run_sql(
            "UPDATE accounts SET deleted_at = TIMESTAMPTZ '2026-12-01', "
            "updated_at = TIMESTAMPTZ '2026-12-01' WHERE id = 7;"
            "DELETE FROM accounts WHERE id = 8;",  # a hard delete: not looked for
            dbname=db,
        )
        [report] = ws.sync("pg")
        assert report.error is None
        live = ("SELECT id FROM {}.public.accounts WHERE deleted_at IS NULL AND id IN (7, 9) "
                "ORDER BY 1")
        assert ws.query(live.format("pg")).rows() == ws.query(live.format("src")).rows() == [(9,)]
        # The opt-in trade-off, as documented: the hard-deleted row is still in the replica.
        assert ws.query("SELECT count(*) FROM pg.public.accounts WHERE id = 8").rows() == [(1,)]


def _synced_sqlite_workspace(tmp_path):
    import sqlite3

    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, plan TEXT)")
        con.execute("INSERT INTO accounts VALUES (1, 'starter'), (2, 'growth')")
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("crm", f"sqlite:///{path}", mode="sync")
        [report] = ws.sync("crm")
        assert report.error is None
    return home, home / "replicas" / "crm.duckdb"


def test_a_replica_from_before_its_bookkeeping_had_a_version_is_upgraded(tmp_path):
    import duckdb

    from meterql.sync.replica import SCHEMA_VERSION

    home, replica = _synced_sqlite_workspace(tmp_path)
    con = duckdb.connect(str(replica))
    assert con.execute("SELECT value FROM __meterql__.meta WHERE key = 'schema_version'"
                       ).fetchall() == [(str(SCHEMA_VERSION),)]
    con.execute("DROP TABLE __meterql__.meta")  # as replicas were written before
    con.close()
    with meterql.connect(home) as ws:
        [mark] = ws.sync.watermarks("crm")
        assert mark.rows == 2  # the sync state was kept
        assert ws.query("SELECT count(*) FROM crm.main.accounts").rows() == [(2,)]
        assert ws.query("SELECT rows FROM crm.__meterql__.sync_state").rows() == [(2,)]
    con = duckdb.connect(str(replica))
    assert con.execute("SELECT value FROM __meterql__.meta WHERE key = 'schema_version'"
                       ).fetchall() == [(str(SCHEMA_VERSION),)]
    con.close()


def test_a_replica_from_a_newer_meterql_is_refused_and_leaves_the_folder_free(tmp_path):
    import duckdb

    from meterql.errors import WorkspaceError

    home, replica = _synced_sqlite_workspace(tmp_path)
    con = duckdb.connect(str(replica))
    con.execute("UPDATE __meterql__.meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    # The replica is attached when the workspace opens its engine (on first use): listing the
    # sources reads only the catalog; a query is refused, and so is the next one (nothing of
    # the failed opening is kept).
    with meterql.connect(home) as ws:
        assert [s.name for s in ws.sources()] == ["crm"]
        with pytest.raises(WorkspaceError, match="replica of source 'crm'.*newer meterql"
                           ) as first:
            ws.query("SELECT 1")
        assert first.value.source == "crm" and "crm.duckdb" in first.value.hint
        with pytest.raises(WorkspaceError, match="newer meterql"):
            ws.sync.watermarks("crm")
    with meterql.connect(home) as ws, pytest.raises(WorkspaceError,
                                                   match="newer meterql") as again:
        ws.open_parts()  # the folder was left free: refused again for the same reason
    assert "in use" not in str(again.value)
    # the replica itself was not touched
    con = duckdb.connect(str(replica))
    assert con.execute("SELECT value FROM __meterql__.meta").fetchall() == [("99",)]
    assert con.execute("SELECT count(*) FROM main.accounts").fetchall() == [(2,)]
    con.close()


# -- the schedule (meterql/sync/schedule.py) ----------------------------------------------------
class _FakeSources(list):
    """``ws.sources``: called, the list; ``get(name)``, one."""

    def __call__(self):
        return list(self)

    def get(self, name):
        return next(s for s in self if s.name == name)


class _FakeWorkspace:
    """Sources in sync mode and a scripted answer per run (an error class or None)."""

    def __init__(self, answers: dict[str, list], options: dict | None = None) -> None:
        from meterql.catalog import Source

        self.answers, self.runs = answers, []
        self._sources = [Source(n, "sqlite", "sqlite:///x.db", "sync", (options or {}).get(n, {}))
                         for n in answers] + [Source("direct", "sqlite", "sqlite:///x.db")]

        self.sources = _FakeSources(self._sources)

    def sync(self, name=None, progress=None):
        from meterql.sync import SyncReport

        self.runs.append(name)
        error = self.answers[name].pop(0) if self.answers[name] else None
        return [SyncReport(name, error=None if error is None else error("scripted"))]


def test_the_schedule_retries_a_retryable_failure_twice_then_comes_back_in_30_s():
    from meterql.errors import SourceUnavailableError
    from meterql.sync.schedule import RETRY, SyncSchedule

    ws = _FakeWorkspace({"a": [SourceUnavailableError] * 5, "b": []})
    seen = []
    policy = type(RETRY)(first_wait_s=0.01)
    schedule = SyncSchedule(ws, 900, policy=policy, notify=seen.append)
    reports = schedule.run_due()
    assert ws.runs == ["a", "a", "a", "b"]  # the direct source is not synced
    assert [r.error is not None for r in reports] == [True, False]
    assert [(s.source, s.attempt, s.retry_in, s.next_turn_in) for s in seen] == [
        ("a", 1, 0.01, None), ("a", 2, 0.02, None), ("a", 3, None, 30.0), ("b", 1, None, 900.0)]
    assert schedule.run_due() == [] and ws.runs == ["a", "a", "a", "b"]  # nothing due yet


def test_the_schedule_does_not_retry_an_error_that_needs_a_person():
    from meterql.errors import SourceAuthError
    from meterql.sync.schedule import SyncSchedule

    ws = _FakeWorkspace({"a": [SourceAuthError]}, options={"a": {"sync_every_s": 60}})
    seen = []
    SyncSchedule(ws, 900, notify=seen.append).run_due()
    assert ws.runs == ["a"]
    assert [(s.attempt, s.retry_in, s.next_turn_in) for s in seen] == [(1, None, 60.0)]


def test_the_schedule_stops_during_a_retry_wait_and_in_the_background():
    import time

    from meterql.errors import SourceUnavailableError
    from meterql.sync.schedule import RETRY, SyncSchedule

    ws = _FakeWorkspace({"a": [SourceUnavailableError] * 9})
    schedule = SyncSchedule(ws, 900, policy=type(RETRY)(first_wait_s=60), notify=lambda s: None)
    schedule.start()
    deadline = time.monotonic() + 10
    while not ws.runs and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    schedule.stop()
    assert time.monotonic() - started < 5 and ws.runs == ["a"]  # (not 60 s later)


def test_the_schedule_logs_each_run(caplog):
    import logging

    from meterql.errors import SourceUnavailableError
    from meterql.sync.schedule import RETRY, SyncSchedule, log_attempts

    ws = _FakeWorkspace({"a": [SourceUnavailableError], "b": []})
    log = logging.getLogger("test.sync")
    with caplog.at_level(logging.INFO, logger="test.sync"):
        SyncSchedule(ws, 900, policy=type(RETRY)(first_wait_s=0.01),
                     notify=log_attempts(log)).run_due()
    assert [r.getMessage() for r in caplog.records] == [
        "sync a failed (attempt 1), retrying in 0.01s: scripted",
        "sync a: 0 rows in 0s", "sync b: 0 rows in 0s"]
