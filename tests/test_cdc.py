"""The cdc sync strategy against a real PostgreSQL: changes read from a logical replication
slot arrive in the replica exactly once and in commit order, a rolled-back transaction never,
and a run that stops anywhere is resumed without loss or double counting."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

import meterql
from meterql.errors import InvalidSourceError, SourceQueryError

SETUP = """
ALTER DATABASE {db} SET synchronous_commit = on;  -- decoding reads flushed WAL only
CREATE TABLE usage (id bigint PRIMARY KEY, customer_id int, qty numeric(12,3), note text);
CREATE TABLE plans (code text PRIMARY KEY, price numeric(10,2));
CREATE TABLE log_lines (line text);  -- no primary key: synced whole
INSERT INTO usage SELECT g, g % 5, g / 8.0, 'n' || g FROM generate_series(1, 200) AS g;
INSERT INTO plans VALUES ('starter', 10), ('growth', 50);
INSERT INTO log_lines VALUES ('a'), ('b');
CREATE ROLE {db}_reader LOGIN REPLICATION PASSWORD 'reader-secret';
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {db}_reader;
CREATE PUBLICATION meterql_pg FOR TABLE usage, plans;
SELECT pg_create_logical_replication_slot('{db}_slot', 'pgoutput');
"""


@pytest.fixture()
def make_db(pg_cluster, pg_database):
    """A database set up for cdc; its slot (a cluster-wide name: ``<db>_slot``) is dropped
    afterwards so it holds no WAL back."""
    made = []

    def make(prefix: str) -> str:
        db = pg_database(prefix)
        pg_cluster.run_sql(SETUP.format(db=db), dbname=db)
        made.append(db)
        return db

    yield make
    for db in made:
        pg_cluster.run_sql(f"SELECT pg_drop_replication_slot('{db}_slot')", dbname=db)


def rows(ws, source: str, table: str):
    return ws.query(f"SELECT * FROM {source}.public.{table} ORDER BY 1", max_rows=None).rows()


def same_as_source(ws, *tables: str) -> None:
    ws.sources.refresh("src")
    for table in tables:
        # repr: NaN equals itself there, and types show (Decimal('1.0') vs 1.0)
        assert repr(rows(ws, "pg", table)) == repr(rows(ws, "src", table)), table


def slot_position(pg_cluster, db: str) -> str:
    return pg_cluster.run_sql(
        f"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{db}_slot'",
        dbname=db, tuples_only=True).strip()


@pytest.fixture()
def cdc(pg_cluster, make_db, tmp_path):
    db = make_db("cdc")
    ws = meterql.connect(tmp_path / "home")
    # The documented setup: a role with REPLICATION and SELECT, the slot named by an option.
    ws.sources.add("pg", pg_cluster.uri(db, f"{db}_reader", "reader-secret"), mode="sync",
                  options={"cdc_slot": f"{db}_slot", "cdc_publication": "meterql_pg"})
    ws.sources.add("src", pg_cluster.uri(db))
    yield ws, db
    ws.close()


def changes(report, table: str) -> dict[str, int]:
    [entry] = [t for t in report.tables if t.table == f"pg.public.{table}"]
    return entry.changes


def test_mixed_changes_arrive_exactly_once_and_in_order(cdc, pg_cluster):
    ws, db = cdc
    [first] = ws.sync("pg")
    assert first.error is None
    strategies = {t.table: t.strategy for t in first.tables}
    # Primary-key tables of a source with a slot default to cdc; the rest are copied whole.
    assert strategies == {"pg.public.usage": "cdc", "pg.public.plans": "cdc",
                          "pg.public.log_lines": "full"}
    same_as_source(ws, "usage", "plans", "log_lines")

    pg_cluster.run_sql(
        """
        INSERT INTO usage VALUES (201, 1, 1.5, 'new');                     -- insert
        UPDATE usage SET qty = 7 WHERE id = 5;                             -- update ...
        UPDATE usage SET qty = 9, note = 'twice' WHERE id = 5;             -- ... twice: 9 wins
        DELETE FROM usage WHERE id = 6;                                    -- delete
        INSERT INTO usage VALUES (6, 4, 0.125, 'back again');              -- same key again
        DELETE FROM usage WHERE id = 201;                                  -- insert then delete
        BEGIN;
          INSERT INTO usage VALUES (999, 1, 1, 'rolled back');
          UPDATE usage SET qty = -1 WHERE id = 1;
          DELETE FROM usage WHERE id = 2;
        ROLLBACK;
        UPDATE usage SET id = 300 WHERE id = 7;                            -- key change
        BEGIN;
          UPDATE plans SET price = 12.5 WHERE code = 'starter';
          INSERT INTO plans VALUES ('scale', 99.99);
          DELETE FROM plans WHERE code = 'growth';
        COMMIT;
        """,
        dbname=db,
    )
    [second] = ws.sync("pg")
    assert second.error is None
    assert changes(second, "usage") == {"insert": 2, "update": 3, "delete": 2, "truncate": 0}
    assert changes(second, "plans") == {"insert": 1, "update": 1, "delete": 1, "truncate": 0}
    same_as_source(ws, "usage", "plans")
    assert ws.query("SELECT qty, note FROM pg.public.usage WHERE id = 5").rows()[0][1] == "twice"
    assert ws.query("SELECT count(*) FROM pg.public.usage WHERE id IN (7, 201, 999)"
                    ).rows() == [(0,)]

    # Nothing new: nothing applied again, and the slot sits where the replica says it is.
    [third] = ws.sync("pg")
    assert changes(third, "usage") == {"insert": 0, "update": 0, "delete": 0, "truncate": 0}
    [mark] = [w for w in ws.sync.watermarks("pg") if w.table == "pg.public.usage"]
    assert mark.strategy == "cdc" and mark.cursor == slot_position(pg_cluster, db)
    same_as_source(ws, "usage", "plans")


def test_a_run_stopped_before_confirming_applies_nothing_twice(cdc, pg_cluster, monkeypatch):
    ws, db = cdc
    ws.sync("pg")
    pg_cluster.run_sql("UPDATE usage SET qty = qty + 1 WHERE id <= 10;"
                       "INSERT INTO usage VALUES (500, 1, 2, 'x');", dbname=db)
    before = slot_position(pg_cluster, db)
    import meterql.sync.cdc as cdc_module

    # The replica commits, then advancing the slot fails (the process could as well die here).
    monkeypatch.setattr(cdc_module, "_ADVANCE_SQL", "SELECT no_such_function($1, $2)")
    [failed] = ws.sync("pg")
    assert failed.error is not None
    assert slot_position(pg_cluster, db) == before  # not confirmed at the source
    same_as_source(ws, "usage")  # but applied in the replica
    monkeypatch.undo()

    pg_cluster.run_sql("UPDATE usage SET qty = 0 WHERE id = 500;", dbname=db)
    [resumed] = ws.sync("pg")
    assert resumed.error is None
    # The 10 updates and the insert are read again from the slot and skipped: only the new one.
    assert changes(resumed, "usage") == {"insert": 0, "update": 1, "delete": 0, "truncate": 0}
    same_as_source(ws, "usage")
    assert slot_position(pg_cluster, db) != before


def test_a_run_killed_while_applying_leaves_the_previous_state(cdc, pg_cluster, tmp_path):
    ws, db = cdc
    ws.sync("pg")
    before = rows(ws, "pg", "usage")
    ws.close()
    pg_cluster.run_sql("DELETE FROM usage WHERE id > 100;"
                       "INSERT INTO usage SELECT g, 1, 1, 'bulk' "
                       "FROM generate_series(1000, 1500) g;",
                       dbname=db)
    script = textwrap.dedent(f"""
        import os, signal, meterql
        import meterql.sync.cdc as cdc
        written = cdc._TableBuffer._write
        def write_then_die(self, cur):
            written(self, cur)  # the changes are in the open replica transaction ...
            os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies before COMMIT
        cdc._TableBuffer._write = write_then_die
        meterql.connect({str(tmp_path / "home")!r}).sync("pg")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with meterql.connect(tmp_path / "home") as again:
        assert rows(again, "pg", "usage") == before
        [report] = again.sync("pg")
        assert report.error is None
        assert changes(report, "usage")["delete"] == 100
        assert changes(report, "usage")["insert"] == 501
        same_as_source(again, "usage")


TYPES = """
CREATE TABLE typed (
    id int PRIMARY KEY, small smallint, big bigint, amount numeric(18,6), ratio double precision,
    real4 real, flag boolean, label text, code varchar(8), day date, at timestamp,
    at_tz timestamptz, clock time, span interval, raw bytea, doc jsonb, tags text[], uid uuid,
    long_text text);
ALTER PUBLICATION meterql_pg ADD TABLE typed;
GRANT SELECT ON typed TO {db}_reader;
"""

TYPED_ROWS = r"""
INSERT INTO typed VALUES
 (1, -32768, 9223372036854775807, -123456789012.123456, 0.1, 1.5, true, 'it''s "quoted"',
  'abc', '2024-02-29', '2026-03-29 01:30:00.123456', '2026-10-25 00:59:59.999999+00',
  '23:59:59.5', '-1 days +02:00:00', '\x00ff41', '{"a": [1, 2.5, null]}', '{x,"y z"}',
  '5ad4e9c8-1c4e-4d55-9e3a-7d6c5b2a1f00', repeat('long ', 5000)),
 (2, NULL, NULL, NULL, 'Infinity', 'NaN', false, 'ünïcødé ✓', NULL, '1999-12-31', NULL,
  '2026-03-29 01:00:00+00', NULL, '1 year 2 mons 3 days 04:05:06', '\x', '[]', '{}', NULL,
  NULL),
 (3, 0, 0, 0, -0.0, -1e-30, NULL, '', '', NULL, '1970-01-01 00:00:00', NULL, '00:00:00',
  '00:00:00', NULL, 'null', NULL, NULL, 'short');
-- An update that leaves the TOASTed long_text out of the change ("unchanged").
UPDATE typed SET small = 1 WHERE id = 1;
"""


def test_every_column_type_arrives_as_a_full_copy_would_read_it(cdc, pg_cluster):
    ws, db = cdc
    pg_cluster.run_sql(TYPES.format(db=db), dbname=db)
    ws.sources.refresh("pg")
    ws.sync("pg")  # typed is empty: every row below arrives through the change log
    pg_cluster.run_sql(TYPED_ROWS, dbname=db)
    [report] = ws.sync("pg")
    assert report.error is None
    assert changes(report, "typed") == {"insert": 3, "update": 1, "delete": 0, "truncate": 0}
    same_as_source(ws, "typed")
    assert len(ws.query("SELECT long_text FROM pg.public.typed WHERE id = 1").rows()[0][0]) == 25000
    # and the same once more after the TOASTed row was updated by a second run
    pg_cluster.run_sql("UPDATE typed SET flag = NULL WHERE id = 1;", dbname=db)
    ws.sync("pg")
    same_as_source(ws, "typed")


def test_truncate_and_a_new_column_reach_the_replica(cdc, pg_cluster):
    ws, db = cdc
    ws.sync("pg")
    pg_cluster.run_sql("INSERT INTO plans VALUES ('gone', 1);"
                       "TRUNCATE plans;"
                       "INSERT INTO plans VALUES ('after', 3);", dbname=db)
    [report] = ws.sync("pg")
    assert changes(report, "plans") == {"insert": 2, "update": 0, "delete": 0, "truncate": 1}
    same_as_source(ws, "plans")
    pg_cluster.run_sql("ALTER TABLE usage ADD COLUMN region text DEFAULT 'eu';"
                       "UPDATE usage SET region = 'us' WHERE id = 3;", dbname=db)
    [report] = ws.sync("pg")
    [entry] = [t for t in report.tables if t.table == "pg.public.usage"]
    assert "new column region" in entry.note
    same_as_source(ws, "usage")


def test_missing_source_setup_is_named_with_its_fix(pg_cluster, make_db, tmp_path):
    db = make_db("cdcsetup")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db), mode="sync", options={"cdc_slot": "nope"})
        [report] = ws.sync("pg")
        assert isinstance(report.error, SourceQueryError)
        assert "replication slot 'nope' does not exist" in str(report.error)
        assert "pg_create_logical_replication_slot('nope', 'pgoutput')" in report.error.hint
        ws.sources.set_options("pg", {"cdc_slot": f"{db}_slot", "cdc_publication": "meterql_pg"})
        pg_cluster.run_sql("ALTER PUBLICATION meterql_pg DROP TABLE plans", dbname=db)
        [report] = ws.sync("pg")
        assert "pg.public.plans is not in publication 'meterql_pg'" in str(report.error)
        assert report.error.hint == "ALTER PUBLICATION meterql_pg ADD TABLE public.plans"
        with pytest.raises(InvalidSourceError, match="needs a primary key"):
            ws.sync.set_strategy("pg.public.log_lines", "cdc")
        with pytest.raises(InvalidSourceError, match="cdc_slot=.*not valid"):
            ws.sources.set_options("pg", {"cdc_slot": "Bad-Name"})


def test_cdc_is_for_postgresql_only(tmp_path):
    import sqlite3

    path = tmp_path / "lite.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("lite", f"sqlite:///{path}", mode="sync")
        with pytest.raises(InvalidSourceError, match="sqlite source"):
            ws.sync.set_strategy("lite.main.t", "cdc")
