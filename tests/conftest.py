import os

import pytest

from devtools.pgcluster import PostgresCluster, postgres_available


def _unavailable(what: str, reason: str):
    """A server the tests need cannot be had: fail under CI (CI set), else skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} needed under CI: {reason}", pytrace=False)
    pytest.skip(f"{what} unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL server for the whole session.

    Skips when PostgreSQL can't be had, except under CI (CI set), where it fails.
    """
    reason = postgres_available()
    if reason is not None:
        _unavailable("PostgreSQL", reason)
    cluster = PostgresCluster()
    try:
        cluster.start()
    except (RuntimeError, OSError) as exc:
        _unavailable("PostgreSQL", str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def spark_server():
    """A Spark Connect server in local mode (``local[2]``), started by the first test of a
    module that uses it (about 8 s) and stopped after that module, so that its JVM does not
    run beside the rest of the suite. Skips when Java or pyspark is missing, except under CI,
    where it fails."""
    from devtools.sparkconnect import SparkConnectServer, spark_available

    reason = spark_available()
    if reason is not None:
        _unavailable("Spark", reason)
    server = SparkConnectServer(cores=2)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        _unavailable("Spark", str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def billing(pg_cluster, tmp_path_factory):
    """The billing dataset (tests/support/dataset.py) in PostgreSQL (``pg``), SQLite (``lite``)
    and a DuckDB file (``dk``), registered in one workspace, with its DuckDB reference."""
    from tests.support.dataset import open_billing

    env = open_billing(pg_cluster, tmp_path_factory.mktemp("billing"))
    try:
        yield env
    finally:
        env.close()


@pytest.fixture(scope="session")
def pg_database(pg_cluster):
    """Factory: ``pg_database("prefix", "CREATE TABLE ...")`` makes a fresh database on the shared
    cluster (a unique name starting with ``prefix``), runs the setup SQL in it and returns its name.
    Tests that count rows, backends or log lines use their own database so others can't interfere.
    """
    import itertools

    counter = itertools.count(1)

    def make(prefix: str, sql: str = "") -> str:
        name = f"{prefix}_{next(counter)}"
        pg_cluster.create_database(name)
        if sql:
            pg_cluster.run_sql(sql, dbname=name)
        return name

    return make


@pytest.fixture(scope="session")
def random_env(pg_cluster, tmp_path_factory):
    """The random dataset (tests/support/random_data.py) in PostgreSQL (``pg``), SQLite
    (``lite``) and DuckDB files (``duck``, ``ducku``): one workspace with every source in direct
    mode, one with every source in sync mode, and the DuckDB reference."""
    from tests.support.random_data import open_random_env

    env = open_random_env(pg_cluster, tmp_path_factory.mktemp("randomsql"))
    try:
        yield env
    finally:
        env.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per test module (tests/support/browser.py;
    each test opens its own context: its own cookies and storage). Not one per run: Playwright's
    sync API keeps an event loop of its own while it is open."""
    from tests.support.browser import chromium

    with chromium() as b:
        yield b
