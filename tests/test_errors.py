"""Errors: the exception tree, bad input that must change nothing, bound parameters, secrets.

Statements that could write are proven harmless against a real PostgreSQL: meterql connects as a
*superuser* there (so nothing but meterql itself stands between a statement and the data), and
that role logs every statement it runs (``log_statement = all``), so the server log shows exactly
what arrived.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import time
import traceback

import pytest

import meterql
from meterql import errors
from meterql.catalog.uri import parse_uri, redact_text, redact_uri, with_password
from meterql.errors import (
    CatalogError,
    InvalidSourceError,
    MeterqlError,
    ParameterError,
    QueryError,
    SourceAuthError,
    SqlParseError,
    StatementNotAllowedError,
    UnknownColumnError,
)

# -- the tree --------------------------------------------------------------------------------

TREE = {
    "WorkspaceError": "MeterqlError",
    "CatalogError": "MeterqlError",
    "SourceExistsError": "CatalogError",
    "UnknownSourceError": "CatalogError",
    "InvalidSourceError": "CatalogError",
    "InvalidSettingError": "CatalogError",
    "UnknownTableError": "CatalogError",
    "AmbiguousNameError": "CatalogError",
    "QueryError": "MeterqlError",
    "SqlParseError": "QueryError",
    "StatementNotAllowedError": "QueryError",
    "UnknownColumnError": "QueryError",
    "ParameterError": "QueryError",
    "SourceError": "MeterqlError",
    "SourceUnavailableError": "SourceError",
    "StaleReplicaError": "SourceUnavailableError",
    "SourceAuthError": "SourceError",
    "SourceQueryError": "SourceError",
    "LimitError": "MeterqlError",
    "QueryTimeoutError": "LimitError",
    "RowLimitError": "LimitError",
    "InputLimitError": "LimitError",
    "ConflictError": "DataError",
    "QueryCancelledError": "MeterqlError",
    "UnknownQueryError": "MeterqlError",
    "UnknownAggregateError": "CatalogError",
    "InvalidAggregateError": "QueryError",
    "AccessError": "MeterqlError",
    "DataError": "MeterqlError",
    "IngestError": "MeterqlError",
    "UnknownStreamError": "IngestError",
    "UnknownBackfillError": "IngestError",
    "InvalidBodyError": "IngestError",
    "UnsupportedMediaTypeError": "InvalidBodyError",
    "AuthenticationError": "AccessError",
    "ScopeError": "AccessError",
    "CsrfError": "AccessError",
}


def test_the_tree_is_as_drawn():
    for name, parent in TREE.items():
        cls = getattr(errors, name)
        assert cls.__bases__ == (getattr(errors, parent),), name
        assert issubclass(cls, Exception)
        assert name in errors.__all__
        assert name in (errors.__doc__ or ""), f"{name} missing from the drawing"
    assert set(errors.__all__) == set(TREE) | {"MeterqlError"}


def test_only_unavailability_and_timeouts_are_retryable():
    retryable = {n for n in TREE if getattr(errors, n).retryable}
    # (a replica past the bound with its source down: it answers once the source is back)
    assert retryable == {"SourceUnavailableError", "StaleReplicaError", "QueryTimeoutError"}
    assert errors.SourceUnavailableError("x").to_dict()["retryable"] is True


def test_message_position_hint_and_caret():
    sql = "SELECT a\nFROM t WHER x"
    err = QueryError("cannot parse", hint="check the SQL", sql=sql, line=2, column=8)
    assert str(err) == "cannot parse at line 2, column 8 (check the SQL)"
    assert err.caret() == "FROM t WHER x\n       ^"
    assert QueryError("x", sql=sql, line=5, column=1).caret() is None  # line out of range
    assert QueryError("x", line=1, column=1).caret() is None  # no SQL
    assert str(CatalogError("plain")) == "plain"


def test_to_dict_is_json_ready_and_carries_no_sql():
    err = errors.UnknownColumnError(
        "no column named 'amont'",
        hint="did you mean 'amount'?",
        sql="SELECT amont FROM t",
        line=1,
        column=12,
        source="pg",
        table="pg.public.t",
    )
    data = json.loads(json.dumps(err.to_dict()))
    assert data == {
        "type": "UnknownColumnError",
        "message": "no column named 'amont'",
        "hint": "did you mean 'amount'?",
        "source": "pg",
        "table": "pg.public.t",
        "line": 1,
        "column": 12,
        "retryable": False,
    }


# -- a workspace over a SQLite file (no server needed) ---------------------------------------


@pytest.fixture(scope="module")
def lite_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors_lite")
    con = sqlite3.connect(root / "lite.db")
    con.executescript(
        "CREATE TABLE t (id INTEGER, note TEXT);"
        "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'x'' OR ''1''=''1');"
    )
    con.commit()
    con.close()
    ws = meterql.connect(root / "home")
    ws.sources.add("lite", f"sqlite://{root / 'lite.db'}")
    yield ws
    ws.close()


@pytest.mark.parametrize(
    ("sql", "line", "column", "caret_line"),
    [
        ("SELECT id\nFROM lite.main.t\nWHERE id = = 3", 3, 12, "WHERE id = = 3"),
        ("SELECT id FROM lite.main.t WHERE", 1, 32, "SELECT id FROM lite.main.t WHERE"),
        ("SELECT (id FROM lite.main.t", 1, 15, "SELECT (id FROM lite.main.t"),
        (
            "EXPLAIN SELECT id FROM lite.main.t WHERE id = = 1",
            1,
            47,
            "EXPLAIN SELECT id FROM lite.main.t WHERE id = = 1",
        ),
    ],
)
def test_parse_error_points_at_line_and_column(lite_ws, sql, line, column, caret_line):
    with pytest.raises(SqlParseError) as excinfo:
        lite_ws.query(sql)
    err = excinfo.value
    assert isinstance(err, QueryError)
    assert (err.line, err.column) == (line, column)
    assert f"at line {line}, column {column}" in str(err)
    assert err.hint
    text, caret = err.caret().split("\n")
    assert text == caret_line
    assert caret == " " * (column - 1) + "^"
    assert err.to_dict()["line"] == line


def test_parse_error_position_after_leading_blank_line_and_explain(lite_ws):
    with pytest.raises(SqlParseError) as excinfo:
        lite_ws.query("\nEXPLAIN SELECT id FROM lite.main.t WHERE id = = 1")
    assert excinfo.value.line == 2
    assert excinfo.value.caret().startswith("EXPLAIN SELECT")


@pytest.mark.parametrize("sql", ["", "   ", "-- just a comment", "SELECT 'unterminated FROM t"])
def test_empty_or_unreadable_sql(lite_ws, sql):
    with pytest.raises(SqlParseError) as excinfo:
        lite_ws.query(sql)
    assert excinfo.value.hint


@pytest.mark.parametrize(
    "params",
    [
        {"n": "x' OR '1'='1"},
        {"n": "a' --"},
        {"n": "'; DELETE FROM t; --"},
    ],
)
def test_sqlite_parameters_are_bound_not_spliced(lite_ws, params):
    rows = lite_ws.query("SELECT id FROM lite.main.t WHERE note = :n", params).rows()
    # only the row whose note really is the text matches (row 3 holds the injection text itself)
    expected = [(3,)] if params["n"] == "x' OR '1'='1" else []
    assert rows == expected
    assert lite_ws.query("SELECT count(*) AS n FROM lite.main.t").rows() == [(3,)]


def test_parameter_errors(lite_ws):
    sql = "SELECT id FROM lite.main.t WHERE note = :n AND id > :low"
    with pytest.raises(ParameterError, match=":low") as excinfo:
        lite_ws.query(sql, {"n": "a"})
    assert ":n" not in excinfo.value.message
    with pytest.raises(ParameterError, match="missing value for parameters :n, :low"):
        lite_ws.query(sql)
    with pytest.raises(ParameterError, match="unknown parameter :extra"):
        lite_ws.query(sql, {"n": "a", "low": 0, "extra": 1})
    for positional in (
        "SELECT id FROM lite.main.t WHERE note = ?",
        "SELECT id FROM lite.main.t WHERE note = $1",
    ):
        with pytest.raises(ParameterError, match="positional"):
            lite_ws.query(positional, {"1": "a"})
    # a sequence would bind by position: refused (it raised a bare ValueError before)
    with pytest.raises(ParameterError, match="by name"):
        lite_ws.query("SELECT id FROM lite.main.t WHERE note = :n", ["a"])
    with pytest.raises(ParameterError, match="by name"):
        lite_ws.submit("SELECT id FROM lite.main.t WHERE note = :n", ("a",))
    assert lite_ws.query("SELECT id FROM lite.main.t WHERE note = $n", {"n": "b"}).rows() == [(2,)]
    assert lite_ws.query(sql, {"n": "a", "low": 0}).rows() == [(1,)]


def test_parameter_of_unsupported_type(lite_ws):
    with pytest.raises(ParameterError):
        lite_ws.query("SELECT id FROM lite.main.t WHERE note = :n", {"n": object()})


# -- statements that could write: refused before any source is asked --------------------------


@pytest.fixture(scope="module")
def guarded(pg_cluster, pg_database, tmp_path_factory):
    """A PostgreSQL database meterql reaches as a logged superuser, plus SQLite/DuckDB files."""
    import duckdb

    root = tmp_path_factory.mktemp("guarded")
    db = pg_database(
        "guarded",
        "CREATE TABLE events (id int PRIMARY KEY, amount numeric(12,2), note text);"
        "INSERT INTO events SELECT g, g, 'n' || g FROM generate_series(1, 5) g;",
    )
    role, password = f"{db}_rw", secrets.token_urlsafe(12)
    pg_cluster.run_sql(
        f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}';"
        f"ALTER ROLE {role} IN DATABASE {db} SET log_statement = 'all';"
    )
    con = sqlite3.connect(root / "lite.db")
    con.executescript("CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1);")
    con.commit()
    con.close()
    duck = duckdb.connect(str(root / "duck.duckdb"))
    duck.execute("CREATE TABLE d (id INTEGER); INSERT INTO d VALUES (1)")
    duck.close()
    (root / "in.csv").write_text("id,amount,note\n99,1,x\n")
    ws = meterql.connect(root / "home")
    ws.sources.add("pg", pg_cluster.uri(db, user=role, password=password))
    ws.sources.add("lite", f"sqlite://{root / 'lite.db'}")
    ws.sources.add("duck", f"duckdb://{root / 'duck.duckdb'}")
    yield ws, db, root
    ws.close()


def _log_size(pg_cluster) -> int:
    return pg_cluster.logfile.stat().st_size


def _log_since(pg_cluster, offset: int) -> str:
    with open(pg_cluster.logfile, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _wait_for_log(pg_cluster, offset: int, needle: str) -> str:
    deadline = time.monotonic() + 5
    while True:
        text = _log_since(pg_cluster, offset)
        if needle.lower() in text.lower() or time.monotonic() > deadline:
            return text
        time.sleep(0.02)


def _logged_statements(log: str) -> list[str]:
    """The SQL of every statement the server logged (``statement: ...`` / ``execute x: ...``)."""
    found = re.findall(r"LOG:\s+(?:statement|execute [^:]*):\s+(.*)", log)
    return [st.strip() for st in found]


def _table_state(pg_cluster, db: str) -> str:
    return pg_cluster.run_sql(
        "SELECT count(*), sum(amount), n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd,"
        " to_regclass('public.x') IS NULL, to_regclass('public.events_copy') IS NULL"
        " FROM events, pg_stat_user_tables WHERE relname = 'events'"
        " GROUP BY n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd",
        dbname=db,
        tuples_only=True,
    ).strip()


WRITES = [
    ("INSERT INTO pg.public.events VALUES (99, 1, 'x')", "duckdb"),
    ("INSERT INTO events SELECT id + 100, amount, note FROM events", "duckdb"),
    ("UPDATE pg.public.events SET amount = 0", "duckdb"),
    ("UPDATE events SET amount = 0 WHERE id = 1", "postgres"),
    ("DELETE FROM pg.public.events", "duckdb"),
    ("DROP TABLE pg.public.events", "duckdb"),
    ("TRUNCATE pg.public.events", "duckdb"),
    ("ALTER TABLE pg.public.events ADD COLUMN z int", "duckdb"),
    ("CREATE TABLE pg.public.x (a int)", "duckdb"),
    ("CREATE TABLE events_copy AS SELECT * FROM pg.public.events", "duckdb"),
    ("CREATE VIEW pg.public.x AS SELECT 1", "postgres"),
    ("COPY pg.public.events TO '{root}/out.csv'", "duckdb"),
    ("COPY events FROM '{root}/in.csv' WITH (FORMAT csv, HEADER)", "postgres"),
    ("COPY (SELECT * FROM events) TO '{root}/out.csv'", "postgres"),
    ("ATTACH '{root}/attached.duckdb' AS a", "duckdb"),
    ("INSTALL httpfs", "duckdb"),
    ("LOAD httpfs", "duckdb"),
    ("SET default_transaction_read_only = off", "postgres"),
    (
        "MERGE INTO events AS e USING events AS s ON e.id = s.id "
        "WHEN MATCHED THEN UPDATE SET amount = 0",
        "postgres",
    ),
    ("WITH d AS (DELETE FROM pg.public.events RETURNING *) SELECT * FROM d", "duckdb"),
    ("WITH d AS (DELETE FROM events RETURNING id) SELECT id FROM d", "postgres"),
    ("WITH u AS (UPDATE events SET amount = 0 RETURNING id) SELECT count(*) FROM u", "postgres"),
    (
        "WITH i AS (INSERT INTO events VALUES (77, 1, 'x') RETURNING id) SELECT id FROM i",
        "postgres",
    ),
    ("SELECT id FROM pg.public.events; DELETE FROM pg.public.events", "duckdb"),
    ("SELECT 1 FROM pg.public.events; SELECT 2 FROM pg.public.events", "duckdb"),
    ("EXPLAIN DELETE FROM pg.public.events", "duckdb"),
    ("EXPLAIN ANALYZE DELETE FROM pg.public.events", "duckdb"),
    ("DELETE FROM lite.main.t", "duckdb"),
    ("DROP TABLE duck.main.d", "duckdb"),
]


@pytest.mark.parametrize(("sql", "dialect"), WRITES)
def test_writing_statement_is_refused_before_reaching_the_source(guarded, pg_cluster, sql, dialect):
    ws, db, root = guarded
    before = _table_state(pg_cluster, db)
    offset = _log_size(pg_cluster)
    with pytest.raises(StatementNotAllowedError) as excinfo:
        ws.query(sql.format(root=root), dialect=dialect)
    assert excinfo.value.hint
    assert excinfo.value.sql == sql.format(root=root)
    # Positive control: a read right after it does arrive in the log, so logging works ...
    assert ws.query("SELECT count(*) AS n FROM pg.public.events").rows() == [(5,)]
    text = _wait_for_log(pg_cluster, offset, "events")
    assert "events" in text
    # ... and only reads arrived: the refused statement was never sent.
    statements = _logged_statements(text)
    assert any("count(" in st.lower() for st in statements), text
    assert all(re.match(r"(COPY \()?SELECT\b", st, re.IGNORECASE) for st in statements), text
    assert _table_state(pg_cluster, db) == before
    assert not (root / "out.csv").exists()
    assert not (root / "attached.duckdb").exists()
    assert not (root / "export").exists()


def test_statements_that_do_not_parse_are_refused_too(guarded, pg_cluster):
    ws, _, root = guarded
    offset = _log_size(pg_cluster)
    for sql in (f"EXPORT DATABASE '{root}/export'", "DELETE pg.public.events WHERE"):
        with pytest.raises(SqlParseError):
            ws.query(sql)
    assert _log_since(pg_cluster, offset) == ""
    assert not (root / "export").exists()


def test_refused_statements_leave_no_trace_in_the_statistics(guarded, pg_cluster):
    ws, db, root = guarded
    before = _table_state(pg_cluster, db)
    for sql, dialect in WRITES:
        with pytest.raises(StatementNotAllowedError):
            ws.query(sql.format(root=root), dialect=dialect)
    time.sleep(1.1)  # PostgreSQL flushes a backend's table statistics at most once a second
    assert _table_state(pg_cluster, db) == before
    state = before.split("|")
    assert state[:2] == ["5", "15.00"]
    assert state[3:6] == ["0", "0", "0"]  # never an update or delete
    assert state[6:] == ["t", "t"]  # no table x, no events_copy


def test_select_into_is_refused(guarded):
    ws, _, _ = guarded
    with pytest.raises(StatementNotAllowedError):
        ws.query("SELECT * INTO lite.main.t FROM pg.public.events")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_csv('{root}/in.csv')",
        "SELECT * FROM read_csv_auto('{root}/in.csv')",
        "SELECT * FROM read_parquet('{root}/x.parquet')",
        "SELECT * FROM glob('{root}/*')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM sqlite_scan('{root}/lite.db', 't')",
        "SELECT e.id FROM pg.public.events AS e JOIN read_csv('{root}/in.csv') AS c ON c.id = e.id",
        "SELECT id FROM pg.public.events WHERE id IN (SELECT id FROM read_csv('{root}/in.csv'))",
        "WITH c AS (SELECT * FROM read_csv('{root}/in.csv')) SELECT * FROM c",
    ],
)
def test_table_functions_that_read_files_are_refused(guarded, pg_cluster, sql):
    ws, _, root = guarded
    offset = _log_size(pg_cluster)
    with pytest.raises(QueryError, match="not allowed"):
        ws.query(sql.format(root=root))
    assert _log_since(pg_cluster, offset) == ""


def test_file_path_as_table_name_is_not_read(guarded):
    ws, _, root = guarded
    with pytest.raises(MeterqlError) as excinfo:
        ws.query(f"SELECT * FROM '{root}/in.csv'")
    assert not isinstance(excinfo.value, errors.SourceError)


@pytest.mark.parametrize(
    ("sql", "sent_whole"),
    [
        ("SELECT id FROM pg.public.events WHERE note = :n", True),
        (
            "SELECT e.id FROM pg.public.events AS e JOIN lite.main.t AS t ON t.id = e.id"
            " WHERE e.note = :n",
            False,  # a scan fragment plus a DuckDB residual
        ),
    ],
)
def test_postgres_parameters_are_bound_not_spliced(guarded, pg_cluster, sql, sent_whole):
    ws, _, _ = guarded
    injection = "x' OR '1'='1"
    offset = _log_size(pg_cluster)
    assert ws.query(sql, {"n": injection}).rows() == []
    assert ws.query(sql, {"n": "n1"}).rows() == [(1,)]
    assert ws.query("SELECT count(*) AS n FROM pg.public.events").rows() == [(5,)]
    text = _wait_for_log(pg_cluster, offset, "count(")
    statements = _logged_statements(text)
    assert statements, text
    assert not any("OR '1'" in st or "OR ''1''" in st for st in statements), text
    if sent_whole:
        # PostgreSQL got the value as a parameter: "$1" in the text, the value on the side
        executes = [st for st in statements if "note" in st]
        assert len(executes) == 2 and all("$1" in st for st in executes), text
        assert "parameters: $1 = 'x'' OR ''1''=''1'" in text


# -- credentials ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader(pg_cluster, pg_database):
    """A database and a login role that may read it: (db, role, password)."""
    db = pg_database("creds", "CREATE TABLE usage (id int); INSERT INTO usage VALUES (1), (2);")
    role, password = f"{db}_reader", "Right-" + secrets.token_urlsafe(12)
    pg_cluster.run_sql(
        f"CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT SELECT ON usage TO {role};",
        dbname=db,
    )
    return db, role, password


def _everything_shown(err: MeterqlError, ws=None) -> str:
    shown = [str(err), repr(err), json.dumps(err.to_dict()), err.hint or ""]
    shown.append("".join(traceback.format_exception(err)))
    if ws is not None:
        shown += [repr(ws.sources()), str(ws.sources())]
        for s in ws.sources():
            shown += [json.dumps(s.describe()), s.display_uri, str(s)]
    return "\n".join(shown)


def test_wrong_password_when_adding(pg_cluster, reader, tmp_path):
    db, role, _ = reader
    wrong = "Wrong-" + secrets.token_urlsafe(12)
    with meterql.connect(tmp_path / "home") as ws:
        with pytest.raises(SourceAuthError) as excinfo:
            ws.sources.add("pg", pg_cluster.uri(db, user=role, password=wrong))
        err = excinfo.value
        assert err.source == "pg"
        assert "password" in str(err).lower() and "credentials" in str(err)
        assert not err.retryable
        assert wrong not in _everything_shown(err, ws)
        assert ws.sources() == []


def test_written_password_is_stored_but_never_shown(pg_cluster, reader, tmp_path):
    db, role, password = reader
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        source = ws.sources.add("pg", pg_cluster.uri(db, user=role, password=password))
        assert source.display_uri == f"postgresql://{role}:***@127.0.0.1:{pg_cluster.port}/{db}"
        assert password not in repr(source) + json.dumps(source.describe()) + str(ws.sources())
    with meterql.connect(home) as ws:  # stored: works after reopening
        assert ws.query("SELECT count(*) AS n FROM pg.public.usage").rows() == [(2,)]
        assert ws.sources.get("pg").describe()["uri"].count("***") == 1


def test_password_that_became_wrong_is_not_leaked(pg_cluster, pg_database, tmp_path):
    db = pg_database("rotated", "CREATE TABLE usage (id int);")
    role, old = f"{db}_r", "Old-" + secrets.token_urlsafe(12)
    pg_cluster.run_sql(
        f"CREATE ROLE {role} LOGIN PASSWORD '{old}'; GRANT SELECT ON usage TO {role};", dbname=db
    )
    home = tmp_path / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg_cluster.uri(db, user=role, password=old))
    pg_cluster.run_sql(f"ALTER ROLE {role} PASSWORD 'New-{secrets.token_urlsafe(12)}'")
    with meterql.connect(home) as ws:
        with pytest.raises(SourceAuthError) as excinfo:
            ws.query("SELECT id FROM pg.public.usage")
        assert old not in _everything_shown(excinfo.value, ws)
        with pytest.raises(SourceAuthError) as excinfo:
            ws.sources.test("pg")
        assert old not in _everything_shown(excinfo.value, ws)


def test_env_password_is_read_at_connect_time_and_never_stored(
    pg_cluster, reader, tmp_path, monkeypatch
):
    db, role, password = reader
    home = tmp_path / "home"
    var = "METERQL_TEST_PG_PASSWORD"
    uri = f"postgresql://{role}:env:{var}@127.0.0.1:{pg_cluster.port}/{db}"
    written = "Written-" + secrets.token_urlsafe(12)  # positive control for the byte search
    monkeypatch.delenv(var, raising=False)
    with meterql.connect(home) as ws:
        with pytest.raises(InvalidSourceError) as excinfo:
            ws.sources.add("pg", uri)
        assert var in str(excinfo.value) and var in excinfo.value.hint
        assert ws.sources() == []

        monkeypatch.setenv(var, password)
        source = ws.sources.add("pg", uri)
        assert source.display_uri == uri  # a reference is not a secret: shown as written
        assert ws.query("SELECT count(*) AS n FROM pg.public.usage").rows() == [(2,)]
        ws.catalog.add_source(
            meterql.Source("w", "postgres", f"postgresql://u:{written}@127.0.0.1:1/db"), []
        )
    stored = b"".join(p.read_bytes() for p in home.iterdir() if p.is_file())
    assert written.encode() in stored  # the search does find what is stored ...
    assert f"env:{var}".encode() in stored
    assert password.encode() not in stored  # ... and the env password is not there

    monkeypatch.setenv(var, "Wrong-" + secrets.token_urlsafe(12))
    with meterql.connect(home) as ws:
        with pytest.raises(SourceAuthError) as excinfo:
            ws.query("SELECT count(*) AS n FROM pg.public.usage")
        assert os.environ[var] not in _everything_shown(excinfo.value, ws)
        monkeypatch.delenv(var)
        ws.sources.remove("w")
    with meterql.connect(home) as ws:  # unset at query time: a clear error naming the variable
        with pytest.raises(InvalidSourceError) as excinfo:
            ws.query("SELECT count(*) AS n FROM pg.public.usage")
        assert var in str(excinfo.value) and excinfo.value.source == "pg"


def test_password_in_the_query_string(pg_cluster, reader, tmp_path, monkeypatch):
    db, role, password = reader
    base = f"postgresql://{role}@127.0.0.1:{pg_cluster.port}/{db}"
    with meterql.connect(tmp_path / "home") as ws:
        # Regression: '?password=' was shown in clear by describe() and display_uri.
        source = ws.sources.add("pg", f"{base}?password={password}")
        assert password not in json.dumps(source.describe()) + repr(ws.sources())
        assert source.display_uri == f"{base}?password=***"
        assert ws.query("SELECT count(*) AS n FROM pg.public.usage").rows() == [(2,)]
        monkeypatch.setenv("METERQL_TEST_QS_PW", password)
        ws.sources.add("pgenv", f"{base}?sslmode=disable&password=env:METERQL_TEST_QS_PW")
        assert ws.query("SELECT count(*) AS n FROM pgenv.public.usage").rows() == [(2,)]


def test_uri_helpers():
    assert redact_uri("postgresql://u:hunter2@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_uri("postgresql://u:env:PW@h/db") == "postgresql://u:env:PW@h/db"
    assert redact_uri("postgresql://u:env%3APW@h/db") == "postgresql://u:env%3APW@h/db"
    assert redact_uri("postgresql://u@h/db?password=hunter2&x=1") == (
        "postgresql://u@h/db?password=***&x=1"
    )
    assert redact_uri("sqlite:///a/b.db") == "sqlite:///a/b.db"
    text = "failed: password hunter2 for postgresql://u:hunter2@h/db and hunter%32"
    assert "hunter2" not in redact_text(text, ["hunter2"])
    assert parse_uri("postgresql://u@h/db?password=env:PW").password == "env:PW"
    assert parse_uri("postgresql://u:p%40ss@h:5/db").password == "p@ss"
    assert (
        with_password("postgresql://u:env:PW@h:5/db", "s3cr@t") == "postgresql://u:s3cr%40t@h:5/db"
    )
    assert with_password("postgresql://u@h/db?password=env:PW&a=b", "s&t") == (
        "postgresql://u@h/db?password=s%26t&a=b"
    )


@pytest.mark.parametrize(("sql", "words"), [
    ("CHECKPOINT", "not CHECKPOINT (meterql never writes"),
    ("  -- a comment\n vacuum", "not VACUUM"),
    ("SHOW TABLES", "not SHOW (list tables with 'meterql tables'"),
    ("DESCRIBE pg.public.events", "not DESCRIBE (list tables"),
])
def test_a_refused_statement_is_named_as_written(guarded, sql, words):
    ws, _, _ = guarded
    with pytest.raises(StatementNotAllowedError) as caught:
        ws.query(sql)
    assert words in str(caught.value)


@pytest.mark.parametrize("sql", [
    "(SELECT id FROM pg.public.events WHERE id < 3)",
    "((SELECT id FROM pg.public.events WHERE id < 3))",
    "(SELECT id FROM pg.public.events) ORDER BY id LIMIT 2",
])
def test_a_query_in_parentheses_is_the_query(guarded, sql):
    ws, _, _ = guarded
    assert ws.query(sql).to_pylist() == [{"id": 1}, {"id": 2}]


def test_a_name_that_exists_but_cannot_be_resolved_is_not_a_did_you_mean_of_itself(guarded):
    ws, _, _ = guarded
    with pytest.raises(UnknownColumnError) as caught:
        ws.query("SELECT amount FROM pg.public.events e, "
                 "(SELECT 1 AS amount) q")
    text = str(caught.value)
    assert "column 'amount' cannot be resolved here: it is ambiguous" in text
    assert "qualify it with its table's alias, e.g. e.amount" in text
    assert "did you mean 'amount'" not in text
    assert caught.value.line == 1 and caught.value.column == 8
    assert ws.query('SELECT "v""x".id FROM pg.public.events "v""x" WHERE "v""x".id = 2'
                    ).to_pylist() == [{"id": 2}]
