"""A PostgreSQL connector's snapshot stays one transaction whatever is bound inside it: every
statement of a sync run reads the same committed state, also after a statement with a
time-zone-aware timestamp parameter (an append or merge window's cursor)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from meterql.catalog import Source
from meterql.connectors import connector_for

SETUP = ("CREATE TABLE t (id int, at timestamptz);"
         "INSERT INTO t VALUES (1, '2026-01-01 10:00+00'), (2, '2026-01-02 10:00+00');")


def _rows(connector, sql, params=()):
    with connector.stream(sql, params) as reader:
        return reader.read_all().to_pylist()


def test_a_bound_aware_timestamp_keeps_the_snapshot(pg_cluster, pg_database):
    db = pg_database("snap", SETUP)
    connector = connector_for(Source("pg", "postgres", pg_cluster.uri(db)))
    try:
        with connector.snapshot():
            before = _rows(connector, "SELECT count(*) AS n FROM t")
            # The same instant in another zone as UTC: the window's bound must compare exactly.
            low = datetime(2026, 1, 2, 11, 0, tzinfo=timezone(timedelta(hours=1)))
            window = _rows(connector, "SELECT id FROM t WHERE at >= $1 ORDER BY id", [low])
            pg_cluster.run_sql("INSERT INTO t VALUES (3, '2026-01-03 10:00+00')", dbname=db)
            after = _rows(connector, "SELECT count(*) AS n FROM t")
            iso = _rows(connector, "SELECT current_setting('transaction_isolation') AS i")
        assert window == [{"id": 2}]
        assert before == after == [{"n": 2}]  # the row committed meanwhile is not seen
        assert iso == [{"i": "repeatable read"}]
        # Outside a snapshot the aware value is bound as it is.
        assert _rows(connector, "SELECT id FROM t WHERE at > $1 ORDER BY id",
                     [datetime(2026, 1, 2, 10, tzinfo=UTC)]) == [{"id": 3}]
    finally:
        connector.close()
