import os

import pytest

from tests.support.pgcluster import PostgresCluster, postgres_available


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL server for the whole session.

    Skips when PostgreSQL can't be had, except under CI (CI set), where it fails.
    """

    def unavailable(reason: str):
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL needed under CI: {reason}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {reason}")

    reason = postgres_available()
    if reason is not None:
        unavailable(reason)
    cluster = PostgresCluster()
    try:
        cluster.start()
    except (RuntimeError, OSError) as exc:
        unavailable(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()
