"""The workspace: persistence across processes, the one-owner lock, read-only sources, limits,
cancellation, unreachable sources and connection reuse."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

import meterql
from devtools.pgcluster import PostgresCluster
from meterql.errors import (
    QueryCancelledError,
    QueryError,
    QueryTimeoutError,
    RowLimitError,
    SourceQueryError,
    SourceUnavailableError,
    StatementNotAllowedError,
    WorkspaceError,
)
from meterql.workspace import DEFAULT_HOME, default_home
from tests.support.waiting import meterql_backends, sleeping_backends, wait_until

# -- helpers -----------------------------------------------------------------------------------


def run_python(code: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a fresh Python process; it prints one JSON object as its last line."""
    full_env = {k: v for k, v in os.environ.items() if k != "METERQL_HOME"}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pg_value(pg_cluster, sql: str, db: str = "postgres") -> str:
    return pg_cluster.run_sql(sql, dbname=db, tuples_only=True).strip()


def make_sqlite(path: Path) -> str:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", [(i, f"c{i}") for i in range(1, 11)])
    con.commit()
    con.close()
    return f"sqlite://{path}"


def make_duckdb(path: Path) -> str:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meters AS SELECT range::INTEGER AS id, 'gb' AS unit FROM range(4)")
    con.close()
    return f"duckdb://{path}"


USAGE_SQL = (
    "CREATE TABLE usage (id int PRIMARY KEY, amount numeric(12,2));"
    "INSERT INTO usage SELECT g, g FROM generate_series(1, 10) g;"
)


# -- persistence, the default home, the lock ---------------------------------------------------

ADD_SOURCES = """
import json, sys, meterql
ws = meterql.connect()  # METERQL_HOME
ws.sources.add("lite", "sqlite://data/lite.db")  # relative to this process's folder
ws.sources.add("duck", sys.argv[1])
ws.sources.add("pg", sys.argv[2])
ws.sources.add("pgenv", sys.argv[3])
print(json.dumps({"home": str(ws.home), "sources": [s.describe() for s in ws.sources()]}))
ws.close()
"""

READ_BACK = """
import json, sys, meterql
with meterql.connect(sys.argv[1]) as ws:
    out = {
        "sources": [s.describe() for s in ws.sources()],
        "tables": sorted(t.full_name for t in ws.tables()),
        "rows": [ws.query(sql).rows() for sql in sys.argv[2:]],
    }
print(json.dumps(out, default=str))
"""


def test_sources_persist_across_processes(pg_cluster, pg_database, tmp_path):
    db = pg_database("persist", USAGE_SQL)
    home, first, second = tmp_path / "home", tmp_path / "first", tmp_path / "second"
    (first / "data").mkdir(parents=True)
    second.mkdir()
    make_sqlite(first / "data" / "lite.db")
    duck = make_duckdb(tmp_path / "duck.duckdb")
    env_uri = f"postgresql://postgres:env:METERQL_TEST_PW@127.0.0.1:{pg_cluster.port}/{db}"
    env = {"METERQL_TEST_PW": pg_cluster.password}

    added = run_python(
        ADD_SOURCES,
        duck,
        pg_cluster.uri(db),
        env_uri,
        cwd=first,
        env={**env, "METERQL_HOME": str(home)},
    )
    assert added["home"] == str(home.resolve())
    assert (home / "catalog.duckdb").is_file()

    queries = [
        "SELECT count(*) FROM lite.main.customers",
        "SELECT count(*) FROM duck.main.meters",
        "SELECT sum(amount) FROM pg.public.usage",
        "SELECT count(*) FROM pgenv.public.usage WHERE id > 5",
        "SELECT c.name FROM pg.public.usage AS u JOIN lite.main.customers AS c ON c.id = u.id"
        " WHERE u.id = 3",
    ]
    read = run_python(READ_BACK, str(home), *queries, cwd=second, env=env)

    assert read["sources"] == added["sources"]
    by_name = {s["name"]: s for s in read["sources"]}
    assert set(by_name) == {"lite", "duck", "pg", "pgenv"}
    # the relative SQLite path was stored absolute, so another folder finds the file
    assert by_name["lite"]["uri"] == f"sqlite://{(first / 'data' / 'lite.db').resolve()}"
    assert by_name["pg"]["uri"] == f"postgresql://postgres:***@127.0.0.1:{pg_cluster.port}/{db}"
    assert by_name["pgenv"]["uri"] == env_uri
    assert pg_cluster.password not in json.dumps(read["sources"])
    assert read["tables"] == [
        "duck.main.meters",
        "lite.main.customers",
        "pg.public.usage",
        "pgenv.public.usage",
    ]
    assert read["rows"] == [[[10]], [[4]], [["55.00"]], [[5]], [["c3"]]]


def test_default_home_is_meterql_home_env_else_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("METERQL_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_home() == Path(DEFAULT_HOME)
    with meterql.connect() as ws:
        assert ws.home == (tmp_path / "meterql_home").resolve()
        assert (tmp_path / "meterql_home" / "catalog.duckdb").is_file()
    monkeypatch.setenv("METERQL_HOME", str(tmp_path / "elsewhere"))
    with meterql.connect() as ws:
        assert ws.home == (tmp_path / "elsewhere").resolve()
    with meterql.connect(tmp_path / "explicit") as ws:  # an explicit home wins
        assert ws.home == (tmp_path / "explicit").resolve()


HOLD = """
import os, sys, meterql
ws = meterql.connect(sys.argv[1])
ws.sources.add("lite", sys.argv[2])
print(os.getpid(), flush=True)
sys.stdin.read()
ws.close()
"""

TRY_OPEN = """
import json, sys, meterql
try:
    meterql.connect(sys.argv[1]).close()
    print(json.dumps({"opened": True}))
except meterql.errors.WorkspaceError as e:
    print(json.dumps({"opened": False, "message": str(e), "hint": e.hint}))
"""


def test_second_process_is_refused_naming_the_holder(tmp_path):
    home = tmp_path / "home"
    lite = make_sqlite(tmp_path / "lite.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home), lite],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pid = int(holder.stdout.readline())
        with pytest.raises(WorkspaceError) as excinfo:
            meterql.connect(home)
        assert f"in use by process {pid}" in str(excinfo.value)
        assert "close the other meterql process" in excinfo.value.hint
        other = run_python(TRY_OPEN, str(home), cwd=tmp_path)
        assert other["opened"] is False
        assert f"process {pid}" in other["message"]
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0, holder.stderr
    with meterql.connect(home) as ws:  # free again, with what the holder stored
        assert [s.name for s in ws.sources()] == ["lite"]
        assert ws.query("SELECT count(*) AS n FROM customers").rows() == [(10,)]


def test_second_open_in_the_same_process_is_refused_and_harmless(tmp_path):
    home = tmp_path / "home"
    lite = make_sqlite(tmp_path / "lite.db")
    ws = meterql.connect(home)
    ws.sources.add("lite", lite)
    with pytest.raises(WorkspaceError, match=f"in use by process {os.getpid()}"):
        meterql.connect(home)
    # the refused attempt did not release or rewrite the owner's lock (flock belongs to an open
    # file, so a fresh open of the lock file in this same process must still be refused)
    with open(home / ".lock") as probe:
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert probe.read() == f"process {os.getpid()}"
    assert ws.query("SELECT count(*) AS n FROM customers").rows() == [(10,)]
    ws.close()
    with meterql.connect(home) as again:
        assert [s.name for s in again.sources()] == ["lite"]


def test_a_closed_workspace_refuses_work(tmp_path):
    lite = make_sqlite(tmp_path / "lite.db")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("lite", lite)
    ws.close()  # closing twice is fine
    # Regression: these ran on (or reopened connections behind) a workspace already released
    # to other processes, or failed with DuckDB's "Connection already closed".
    calls = [
        lambda: ws.query("SELECT id FROM customers"),
        lambda: ws.submit("SELECT id FROM customers"),
        lambda: ws.explain("SELECT id FROM customers"),
        lambda: ws.sources(),
        lambda: ws.tables(),
        lambda: ws.tables.get("customers"),
        lambda: ws.sources.add("other", lite),
        lambda: ws.sources.refresh("lite"),
        lambda: ws.sources.remove("lite"),
        lambda: ws.sources.test("lite"),
        lambda: ws.sync(),
        lambda: ws.settings(),
        lambda: ws.uploads.load(b"id\n1\n", "t"),
        lambda: ws.aggregates.list(),
        lambda: ws.events.ingest("calls", [{"id": "1"}]),
        lambda: ws.manual.create("rates", {"id": "BIGINT"}, ["id"]),
        lambda: ws.keys.list(),
    ]
    for call in calls:
        with pytest.raises(WorkspaceError, match="is closed"):
            call()
    with meterql.connect(tmp_path / "home") as again:
        assert [s.name for s in again.sources()] == ["lite"]


def test_the_engine_and_local_data_open_on_first_use_once(tmp_path):
    home = tmp_path / "home"
    lite = make_sqlite(tmp_path / "lite.db")
    with meterql.connect(home) as ws:
        ws.sources.add("lite", lite)
        assert [s.name for s in ws.sources()] == ["lite"]
        # adding and listing sources read the catalog only: the local store is not opened
        assert not (home / "local.duckdb").exists()
    # a workspace whose parts never opened closes and frees the folder (and vice versa)
    ws = meterql.connect(home)
    try:
        start = threading.Barrier(6)

        def first_use(_: int) -> tuple[object, ...]:
            start.wait()
            return ws.events, ws.aggregates, ws.manual, ws._engine, ws._local

        with ThreadPoolExecutor(6) as pool:
            seen = list(pool.map(first_use, range(6)))
        # every thread got the same parts: they were opened once
        assert all(len({id(part) for part in parts}) == 1 for parts in zip(*seen, strict=True))
        assert (home / "local.duckdb").exists()
        assert ws.query("SELECT count(*) FROM lite.main.customers").rows() == [(10,)]
    finally:
        ws.close()
    with pytest.raises(WorkspaceError, match="is closed"):
        ws.events  # noqa: B018
    with meterql.connect(home) as again:
        assert again.tables("lite")[0].name == "customers"


def test_unusable_home_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(WorkspaceError, match="cannot create the workspace folder"):
        meterql.connect(blocker / "home")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "catalog.duckdb").write_bytes(b"this is not a database" * 500)
    with pytest.raises(WorkspaceError, match="cannot open the catalog"):
        meterql.connect(damaged)
    (damaged / "catalog.duckdb").unlink()
    meterql.connect(damaged).close()  # the failed open left the folder unlocked


# -- read-only sources -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limits(pg_cluster, pg_database, tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    db = pg_database("limits", USAGE_SQL + "CREATE VIEW slow AS SELECT 1 AS x FROM pg_sleep(30);")
    ws = meterql.connect(root / "home")
    ws.sources.add("pg", pg_cluster.uri(db))
    ws.sources.add("lite", make_sqlite(root / "lite.db"))
    yield ws, db
    ws.close()


def test_postgres_session_is_read_only(limits, pg_cluster):
    ws, db = limits
    connector = ws._connector("pg")
    for sql in (
        "CREATE TABLE ro_probe (a int)",
        "INSERT INTO usage VALUES (100, 1)",
        "UPDATE usage SET amount = 0",
        "DELETE FROM usage",
    ):
        with pytest.raises(SourceQueryError) as excinfo:
            with connector.stream(sql) as reader:
                reader.read_all()
        assert "read-only" in str(excinfo.value), sql
        assert excinfo.value.source == "pg"
    with connector.stream(
        "SELECT current_setting('default_transaction_read_only') AS ro,"
        " current_setting('application_name') AS app, current_setting('TimeZone') AS tz"
    ) as reader:
        assert reader.read_all().to_pylist() == [{"ro": "on", "app": "meterql", "tz": "UTC"}]
    assert pg_value(pg_cluster, "SELECT to_regclass('ro_probe') IS NULL", db) == "t"
    assert pg_value(pg_cluster, "SELECT count(*), sum(amount) FROM usage", db) == "10|55.00"


def test_statement_timeout_option_reaches_the_session(limits, pg_cluster, tmp_path):
    _, db = limits
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db), options={"statement_timeout_ms": 1500})
        with ws._connector("pg").stream("SELECT current_setting('statement_timeout') AS t") as r:
            assert r.read_all().to_pylist() == [{"t": "1500ms"}]


def _fingerprint(folder: Path, name: str) -> tuple:
    path = folder / name
    return (
        hashlib.sha256(path.read_bytes()).hexdigest(),
        path.stat().st_mtime_ns,
        sorted(p.name for p in folder.iterdir()),
    )


def test_file_sources_are_never_written(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    lite = make_sqlite(files / "lite.db")
    duck = make_duckdb(files / "duck.duckdb")
    before = (_fingerprint(files, "lite.db"), _fingerprint(files, "duck.duckdb"))
    time.sleep(0.01)  # a write now would show in the mtime
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("lite", lite)
        ws.sources.add("duck", duck)
        assert ws.query("SELECT count(*) AS n FROM lite.main.customers").rows() == [(10,)]
        assert ws.query("SELECT count(*) AS n FROM duck.main.meters").rows() == [(4,)]
        rows = ws.query(
            "SELECT c.name FROM customers AS c JOIN meters AS m ON m.id = c.id WHERE m.id = :i",
            {"i": 2},
        ).rows()
        assert rows == [("c2",)]
        ws.explain("SELECT name FROM customers")
        ws.sources.refresh("lite")
        ws.sources.refresh("duck")
        assert ws.sources.test("lite").startswith("SQLite")
        assert ws.sources.test("duck").startswith("DuckDB")
        for sql in ("DELETE FROM lite.main.customers", "DROP TABLE duck.main.meters"):
            with pytest.raises(StatementNotAllowedError):
                ws.query(sql)
        for source, sql in (
            ("lite", "CREATE TABLE x (a int)"),
            ("lite", "DELETE FROM customers"),
            ("duck", "CREATE TABLE x (a int)"),
            ("duck", "DELETE FROM meters"),
        ):
            # (DuckDB calls a write to a read-only file the query's fault: a QueryError)
            with pytest.raises((SourceQueryError, QueryError)) as excinfo:
                with ws._connector(source).stream(sql) as reader:
                    reader.read_all()
            assert "read" in str(excinfo.value).lower(), (source, sql, str(excinfo.value))
    assert (_fingerprint(files, "lite.db"), _fingerprint(files, "duck.duckdb")) == before


# -- unreachable sources ------------------------------------------------------------------------


def test_unreachable_source_is_retryable_and_others_keep_working(limits, pg_cluster, tmp_path):
    _, db = limits
    home = tmp_path / "home"
    private = PostgresCluster()
    try:
        private.start()
        private.run_sql("CREATE TABLE usage (id int); INSERT INTO usage VALUES (1), (2);")
        with meterql.connect(home) as ws:
            ws.sources.add("priv", private.uri("postgres"))
            ws.sources.add("pg", pg_cluster.uri(db))
            ws.sources.add("lite", make_sqlite(tmp_path / "lite.db"))
            assert ws.query("SELECT count(*) AS n FROM priv.public.usage").rows() == [(2,)]
    finally:
        private.stop()

    with meterql.connect(home) as ws:
        t0 = time.monotonic()
        with pytest.raises(SourceUnavailableError) as excinfo:
            ws.query("SELECT count(*) AS n FROM priv.public.usage")
        assert time.monotonic() - t0 < 5
        err = excinfo.value
        assert err.retryable and err.to_dict()["retryable"] is True
        assert err.source == "priv" and "'priv'" in str(err)
        assert "other sources keep working" in err.hint
        assert private.password not in str(err)
        # the other sources, in the same workspace, are unaffected
        assert ws.query("SELECT count(*) AS n FROM pg.public.usage").rows() == [(10,)]
        assert ws.query("SELECT count(*) AS n FROM lite.main.customers").rows() == [(10,)]
        with pytest.raises(SourceUnavailableError):
            ws.sources.test("priv")
        with pytest.raises(SourceUnavailableError):  # still the right error the second time
            ws.query("SELECT count(*) AS n FROM priv.public.usage")
        assert ws.query("SELECT sum(amount) AS s FROM pg.public.usage").rows()[0][0] == 55


def test_failing_fragment_reports_its_own_error(tmp_path):
    # Regression: the executor cancelled the other fragments and then reported
    # QueryCancelledError, hiding the real (retryable) error.
    # no server listens on this port: the PostgreSQL fragment fails at once
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("lite", make_sqlite(tmp_path / "lite.db"))
        ws.catalog.add_source(
            meterql.Source("down", "postgres", f"postgresql://u:pw@127.0.0.1:{_closed_port()}/db"),
            [
                meterql.Table(
                    "down", "public", "usage", (meterql.Column("id", "INTEGER", "integer"),)
                )
            ],
        )
        with pytest.raises(SourceUnavailableError):
            ws.query("SELECT id FROM down.public.usage")  # alone: the right error
        with pytest.raises(SourceUnavailableError):
            ws.query(
                "SELECT c.name FROM down.public.usage AS u"
                " JOIN lite.main.customers AS c ON c.id = u.id"
            )


def _closed_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_dropped_by_the_server_is_not_a_query_error(pg_cluster, pg_database, tmp_path):
    db = pg_database("dropped", USAGE_SQL)
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri(db))
        assert ws.query("SELECT count(*) AS n FROM pg.public.usage").rows() == [(10,)]
        killed = pg_value(
            pg_cluster,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{db}' AND application_name = 'meterql'",
        )
        assert int(killed) >= 1
        assert wait_until(lambda: meterql_backends(pg_cluster, db) == 0)
        try:
            rows = ws.query("SELECT count(*) AS n FROM pg.public.usage").rows()
        except SourceUnavailableError as exc:
            assert exc.retryable
        else:
            assert rows == [(10,)]


# -- limits: time, rows, cancellation ---------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT x FROM pg.public.slow",  # sent whole to PostgreSQL
        "SELECT s.x, c.name FROM pg.public.slow AS s JOIN lite.main.customers AS c ON c.id = s.x",
    ],
)
def test_timeout_stops_the_query_at_the_source(limits, pg_cluster, sql):
    ws, db = limits
    seen = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set() and not seen.is_set():
            if sleeping_backends(pg_cluster, db):
                seen.set()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(QueryTimeoutError) as excinfo:
            ws.query(sql, timeout=1.0)
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        watcher.join()
    assert seen.is_set(), "the slow query never ran at the source"
    assert 0.95 <= elapsed < 3.5, elapsed
    assert excinfo.value.retryable
    assert "time limit of 1 s" in str(excinfo.value)
    assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 0, timeout=3)
    assert ws.query("SELECT count(*) AS n FROM pg.public.usage").rows() == [(10,)]


def test_cancel_stops_a_running_query(limits, pg_cluster):
    ws, db = limits
    running = ws.submit("SELECT x FROM pg.public.slow")
    assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 1, timeout=10)
    assert not running.done()
    t0 = time.monotonic()
    running.cancel()
    with pytest.raises(QueryCancelledError):
        running.result(timeout=10)
    assert time.monotonic() - t0 < 2
    assert running.done()
    assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 0, timeout=3)
    assert ws.query("SELECT count(*) AS n FROM pg.public.usage").rows() == [(10,)]


def test_a_submitted_query_runs_beside_a_running_one(limits, pg_cluster):
    """Submitted queries run at once (the server submits every query): a quick one answers
    while a slow one is still in flight."""
    ws, db = limits
    slow = ws.submit("SELECT x FROM pg.public.slow")
    try:
        assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 1, timeout=10)
        quick = ws.submit("SELECT count(*) AS n FROM pg.public.usage")
        assert quick.result(timeout=10).rows() == [(10,)]
        assert not slow.done()  # both were in flight at once
    finally:
        slow.cancel()
    with pytest.raises(QueryCancelledError):
        slow.result(timeout=10)
    assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 0, timeout=3)


def test_submit_returns_the_result(limits):
    ws, _ = limits
    running = ws.submit("SELECT id FROM pg.public.usage WHERE id <= :n ORDER BY id", {"n": 3})
    assert running.result(timeout=10).rows() == [(1,), (2,), (3,)]
    with pytest.raises(RowLimitError):
        ws.submit("SELECT id FROM usage", max_rows=3, on_row_limit="error").result(timeout=10)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM pg.public.usage ORDER BY id",  # whole query on PostgreSQL
        "SELECT id FROM lite.main.customers ORDER BY id",  # SQLite scan + DuckDB
        "SELECT u.id FROM pg.public.usage AS u JOIN lite.main.customers AS c ON c.id = u.id"
        " ORDER BY u.id",  # two sources joined in DuckDB
    ],
)
def test_max_rows_truncates_or_raises(limits, sql):
    ws, _ = limits
    result = ws.query(sql, max_rows=3)
    assert result.truncated is True
    assert result.num_rows == 3
    assert result.rows() == [(1,), (2,), (3,)]
    exact = ws.query(sql, max_rows=10)  # exactly the cap: nothing cut
    assert exact.truncated is False and exact.num_rows == 10
    assert ws.query(sql, max_rows=None).num_rows == 10
    empty = ws.query(sql, max_rows=0)
    assert empty.num_rows == 0 and empty.truncated is True
    with pytest.raises(RowLimitError) as excinfo:
        ws.query(sql, max_rows=3, on_row_limit="error")
    assert "more than 3 rows" in str(excinfo.value)
    assert excinfo.value.hint
    assert ws.query(sql, max_rows=10, on_row_limit="error").num_rows == 10


def test_connections_are_reused(pg_cluster, pg_database, tmp_path):
    db = pg_database(
        "reuse", USAGE_SQL + "CREATE TABLE extra (id int); INSERT INTO extra VALUES (1);"
    )
    ws = meterql.connect(tmp_path / "home")
    try:
        ws.sources.add("pg", pg_cluster.uri(db))
        ws.sources.add("lite", make_sqlite(tmp_path / "lite.db"))
        for i in range(4):
            assert ws.query("SELECT count(*) AS n FROM pg.public.usage").rows() == [(10,)]
            assert ws.query("SELECT id FROM usage WHERE id = :i", {"i": i + 1}).rows() == [(i + 1,)]
            joined = ws.query(
                "SELECT count(*) AS n FROM pg.public.usage AS u"
                " JOIN lite.main.customers AS c ON c.id = u.id"
            )
            assert joined.rows() == [(10,)]
        ws.sources.refresh("pg")
        ws.sources.test("pg")
        backends = meterql_backends(pg_cluster, db)
        assert 1 <= backends <= 2, backends
    finally:
        ws.close()
    assert wait_until(lambda: meterql_backends(pg_cluster, db) == 0)


# -- settings and the plan cache ------------------------------------------------------------


def test_settings_persist_and_validate(tmp_path):
    from meterql.errors import InvalidSettingError

    with meterql.connect(tmp_path / "home") as ws:
        assert ws.settings()["dynamic_filter"] is True
        assert ws.settings.set("dynamic_filter", "off") is False
        assert ws.settings.set("dynamic_filter_max_keys", "500") == 500
        with pytest.raises(InvalidSettingError, match="did you mean 'dynamic_filter'"):
            ws.settings.set("dynamic_filtr", "on")
        with pytest.raises(InvalidSettingError, match="whole number"):
            ws.settings.set("dynamic_filter_max_keys", "many")
    with meterql.connect(tmp_path / "home") as ws:
        assert ws.settings()["dynamic_filter"] is False
        assert ws.settings()["dynamic_filter_max_keys"] == 500
        assert ws.settings.set("dynamic_filter_max_keys", None) == 10_000


def test_plan_cache_hits_and_is_invalidated_by_catalog_changes(tmp_path):
    import sqlite3

    db = tmp_path / "a.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER, name TEXT)")
    con.execute("INSERT INTO t VALUES (1, 'a')")
    con.commit()
    con.close()
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("lite", f"sqlite://{db}")
        sql = "SELECT name FROM lite.main.t WHERE id = :id"
        first = ws.explain(sql)
        assert ws.explain(sql) is first
        hits = ws._engine.plans.hits
        assert ws.query(sql, {"id": 1}).rows() == [("a",)]
        assert ws._engine.plans.hits == hits + 1
        con = sqlite3.connect(db)
        con.execute("ALTER TABLE t ADD COLUMN extra TEXT")
        con.commit()
        con.close()
        ws.sources.refresh("lite")
        assert ws.explain(sql) is not first
        assert "extra" in [c.name for c in ws.tables.get("lite.main.t").columns]
        ws.settings.set("plan_cache_size", 0)
        assert ws.explain(sql) is not ws.explain(sql)
