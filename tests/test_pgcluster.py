"""The throwaway PostgreSQL cluster used by the tests and benchmarks."""

import adbc_driver_postgresql.dbapi as pg_dbapi
import pytest

pytestmark = pytest.mark.postgres


def test_connects_over_tcp_with_password(pg_cluster):
    assert pg_cluster.uri("postgres").startswith(
        f"postgresql://postgres:{pg_cluster.password}@127.0.0.1:{pg_cluster.port}/"
    )
    with pg_dbapi.connect(pg_cluster.uri("postgres")) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)


def test_wrong_password_is_refused(pg_cluster):
    with pytest.raises(Exception) as excinfo:
        conn = pg_dbapi.connect(pg_cluster.uri("postgres", password="wrong-" + "x" * 8))
        conn.close()
    assert "authentication" in str(excinfo.value).lower()


def test_create_database_run_sql_and_copy_in(pg_cluster, tmp_path):
    pg_cluster.create_database("pgcluster_smoke")
    pg_cluster.run_sql(
        "CREATE TABLE usage (account text, qty int); INSERT INTO usage VALUES ('a', 1);",
        dbname="pgcluster_smoke",
    )
    pg_cluster.copy_in("pgcluster_smoke", "usage", "account,qty\nb,2\nc,\n")
    csv_file = tmp_path / "more.csv"
    csv_file.write_text("account,qty\nd,4\n")
    pg_cluster.copy_in("pgcluster_smoke", "usage", csv_file)
    out = pg_cluster.run_sql(
        "SELECT count(*), sum(qty) FROM usage", dbname="pgcluster_smoke", tuples_only=True
    )
    assert out.strip() == "4|7"
    with pytest.raises(RuntimeError, match="does_not_exist"):
        pg_cluster.run_sql("SELECT * FROM does_not_exist", dbname="pgcluster_smoke")
    with pg_dbapi.connect(pg_cluster.uri("pgcluster_smoke")) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT account FROM usage WHERE qty IS NULL")
            assert cur.fetchall() == [("c",)]
