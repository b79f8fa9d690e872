"""A replica table's clustering key: the rows are kept in its order (each whole copy sorted,
each batch a sync adds sorted), and reads on its first column skip the other row groups."""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

import meterql
from meterql.cli import main as cli
from meterql.errors import InvalidSourceError
from meterql.sync.replica import replica_path

SETUP = """
CREATE TABLE usage (id bigint PRIMARY KEY, customer_id int, at timestamptz, qty numeric(12,3));
INSERT INTO usage SELECT g, CASE WHEN g % 41 = 0 THEN NULL ELSE g % 37 END,
                         TIMESTAMPTZ '2026-10-01' + g * interval '1 minute', g / 8.0
FROM generate_series(1, 3000) AS g;
"""


@pytest.fixture()
def clustered(pg_cluster, pg_database, tmp_path):
    db = pg_database("cluster", SETUP)
    home = tmp_path / "home"
    ws = meterql.connect(home)
    ws.sources.add("pg", pg_cluster.uri(db), mode="sync")
    ws.sources.add("src", pg_cluster.uri(db))
    yield ws, db, home
    ws.close()


def _stored_order(ws, home) -> list[tuple]:
    """The replica's rows in the order DuckDB stores them (the workspace closed: the file is
    read by a connection of its own)."""
    ws.close()
    con = duckdb.connect(str(replica_path(home, "pg")), read_only=True)
    try:
        return con.execute(
            'SELECT customer_id, "at", id FROM public.usage ORDER BY rowid').fetchall()
    finally:
        con.close()


def _key(row: tuple) -> tuple:
    # DuckDB's default order puts NULLs last
    return (row[0] is None, row[0] or 0, row[1])


def test_a_whole_copy_is_sorted_by_the_key_and_answers_as_the_source(clustered, pg_cluster):
    ws, db, home = clustered
    ws.sync.set_strategy("pg.public.usage", "full", cluster_by=["Customer_ID", "at"])
    [report] = ws.sync("pg")
    assert report.error is None and report.rows == 3000
    sql = ("SELECT customer_id, count(*) AS n, sum(qty) AS q FROM {t} "
           "WHERE customer_id = 7 AND \"at\" >= TIMESTAMPTZ '2026-10-01 10:00:00+00' GROUP BY 1")
    assert (ws.query(sql.format(t="pg.public.usage")).rows()
            == ws.query(sql.format(t="src.public.usage")).rows())
    rows = _stored_order(ws, home)
    assert len(rows) == 3000
    assert rows == sorted(rows, key=_key)
    assert rows != sorted(rows, key=lambda r: r[2])  # (not the source's order by id)


def test_each_appended_batch_lands_sorted(clustered, pg_cluster):
    ws, db, home = clustered
    ws.sync.set_strategy("pg.public.usage", "append", cursor="id", cluster_by=["customer_id"])
    ws.sync("pg")
    pg_cluster.run_sql(
        "INSERT INTO usage SELECT g, g % 5, TIMESTAMPTZ '2026-12-01' + g * interval '1 second', "
        "1 FROM generate_series(3001, 3500) AS g", dbname=db)
    [report] = ws.sync("pg")
    assert report.tables[0].rows == 500
    assert (ws.query("SELECT count(*), sum(qty) FROM pg.public.usage").rows()
            == ws.query("SELECT count(*), sum(qty) FROM src.public.usage").rows())
    rows = _stored_order(ws, home)
    # the last row copied (id 3000, the cursor's last value) is read again with the new ones
    first, added = rows[:2999], rows[2999:]
    assert first == sorted(first, key=lambda r: (r[0] is None, r[0] or 0))
    assert [r[0] for r in added] == sorted(r[0] for r in added)
    assert {r[2] for r in added} == set(range(3000, 3501))


def test_the_key_is_stored_and_shown_through_every_interface(clustered):
    ws, _, home = clustered
    ws.sync.set_strategy("pg.public.usage", "append", cursor="id",
                         cluster_by=["customer_id", "AT"])
    assert ws.catalog.sync_configs("pg")[("public", "usage")][4] == ("customer_id", "at")
    ws.close()
    result = CliRunner().invoke(cli, ["source", "strategy", "pg.public.usage", "full",
                                      "--cluster-by", "at,customer_id", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "clustered by at, customer_id" in result.output
    again = meterql.connect(home)
    try:
        assert again.catalog.sync_configs("pg")[("public", "usage")][4] == ("at", "customer_id")
    finally:
        again.close()


def test_an_unknown_column_is_refused_with_a_suggestion(clustered):
    ws, _, _ = clustered
    with pytest.raises(InvalidSourceError, match="has no column 'custmer_id'") as caught:
        ws.sync.set_strategy("pg.public.usage", "full", cluster_by=["custmer_id"])
    assert "did you mean 'customer_id'" in (caught.value.hint or "")
    with pytest.raises(InvalidSourceError, match="twice"):
        ws.sync.set_strategy("pg.public.usage", "full", cluster_by=["at", "AT"])
    assert ("public", "usage") not in ws.catalog.sync_configs("pg")


def test_the_replica_route_counts_on_the_key(clustered, pg_cluster):
    """In auto mode the cost of reading the replica knows its order: with the key on
    customer_id, one customer's rows are a few row groups of the replica."""
    ws, db, _ = clustered
    pg_cluster.run_sql("ANALYZE usage", dbname=db)
    ws.sources.refresh("pg")
    ws.sync.set_strategy("pg.public.usage", "full", cluster_by=["customer_id", "at"])
    ws.sync("pg")
    ws.sources.set_mode("pg", "auto")
    text = str(ws.explain("SELECT count(*) FROM pg.public.usage WHERE customer_id = 7"))
    assert "zone maps on customer_id" in text, text
    ws.sync.set_strategy("pg.public.usage", "full")
    text = str(ws.explain("SELECT count(*) FROM pg.public.usage WHERE customer_id = 7"))
    assert "zone maps on customer_id" not in text, text
