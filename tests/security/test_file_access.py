"""A user's SQL reads catalog tables and nothing else: no file of the server, whatever the form.

Two walls, each tested on its own: the binder refuses every name that is not a catalog table
(with SQL's scoping of CTE names), and the embedded DuckDB is locked down (no file access, no
extensions, no Python replacement scans, configuration locked), so a binder mistake still reads
nothing. The forms are generated: every table function DuckDB has, and every way a quoted path
can stand for a table (plain, double-quoted, FROM-first, in a subquery, a join, a set operation,
behind a CTE of the same name elsewhere in the statement), over CSV, TSV, JSON, NDJSON, Parquet
files, a glob and a folder. Through the Python API, and with a read key through a real
``meterql serve`` (``/v1/query`` and ``/v1/aggregates/{name}/dry-run``), ``meterql query`` and
the REPL."""

from __future__ import annotations

import uuid

import duckdb
import httpx
import pytest

import meterql
from meterql.errors import MeterqlError, QueryError
from tests.support.lake import lake_workspace
from tests.support.served import auth, cli, new_key, serve

MARKER = f"TOPSECRET{uuid.uuid4().hex[:12]}"

#: How a path can stand for a table; {p} is the path, quoted as the form needs.
FORMS = [
    "SELECT * FROM '{p}'",
    'SELECT * FROM "{p}"',
    'SELECT s.* FROM lake.main.prices v, "{p}" s WHERE EXISTS (WITH "{p}" AS (SELECT 1) '
    "SELECT 1)",
    'SELECT s.* FROM lake.main.prices v JOIN (WITH "{p}" AS (SELECT 1) SELECT 1) q ON true, '
    '"{p}" s',
    'WITH x AS (SELECT * FROM "{p}") SELECT * FROM lake.main.prices, x',
    'WITH y AS (SELECT 1), x AS (SELECT * FROM "{p}") SELECT x.* FROM lake.main.prices, x, y',
    "SELECT * FROM lake.main.prices WHERE sku IN (SELECT * FROM '{p}')",
    "FROM '{p}' SELECT *",
    "SELECT sku FROM lake.main.prices UNION ALL SELECT * FROM '{p}'",
    "SELECT * FROM lake.main.prices, LATERAL (SELECT * FROM '{p}')",
    "SELECT * FROM lake.main.prices POSITIONAL JOIN '{p}'",
    "SELECT (SELECT string_agg(CAST(columns(*) AS VARCHAR), ',') FROM '{p}') FROM lake.main.prices",
    "SELECT * FROM lake.main.prices AS '{p}', '{p}'",
]


#: Table functions a query may use: they compute rows and read nothing.
COMPUTED = {"generate_series", "range", "unnest"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A folder of secret files holding MARKER, in every format DuckDB reads."""
    root = tmp_path_factory.mktemp("secrets")
    folder = root / "dir"
    folder.mkdir()
    con = duckdb.connect()
    con.execute(f"CREATE TABLE s AS SELECT '{MARKER}' AS a, 1 AS b")
    paths = {}
    for ext, options in {"csv": "FORMAT csv", "tsv": "FORMAT csv, DELIMITER '\t'",
                         "json": "FORMAT json, ARRAY true", "ndjson": "FORMAT json",
                         "parquet": "FORMAT parquet"}.items():
        path = folder / f"secret.{ext}"
        con.execute(f"COPY s TO '{path}' ({options})")
        paths[ext] = str(path)
    con.close()
    paths["glob"] = str(folder / "*.csv")
    paths["folder"] = str(folder)
    return paths


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with lake_workspace(tmp_path_factory.mktemp("fileaccess")) as ws:
        return ws.home


def generated(files) -> list[str]:
    out = [form.format(p=path) for form in FORMS for path in files.values()]
    functions = duckdb.connect().sql(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'table' "
        "ORDER BY 1").fetchall()
    out += [f"SELECT s.* FROM lake.main.prices v, {name}('{files['csv']}') s"
            for (name,) in functions if name not in COMPUTED]
    return out


def test_the_binder_refuses_every_form_with_a_reason_and_no_content(home, files):
    with meterql.connect(home) as ws:
        assert ws.query("SELECT count(*) AS n FROM lake.main.prices").to_pylist() == [{"n": 3}]
        for sql in generated(files):
            with pytest.raises(MeterqlError) as caught:
                ws.query(sql)
            assert MARKER not in str(caught.value), sql
            assert isinstance(caught.value, QueryError | meterql.errors.CatalogError), (
                sql, caught.value)


def test_a_cte_name_shadows_only_inside_its_own_with(home):
    with meterql.connect(home) as ws:
        # in scope: the CTE is read, not the table of that name
        assert ws.query("WITH prices AS (SELECT 42 AS price) SELECT prices.price FROM prices, "
                        "lake.main.prices p LIMIT 1").to_pylist() == [{"price": 42}]
        # an earlier CTE cannot see a later one; a CTE cannot see itself unless RECURSIVE
        with pytest.raises(meterql.errors.UnknownTableError):
            ws.query("WITH b AS (SELECT * FROM a), a AS (SELECT 1 AS x) "
                     "SELECT * FROM b, lake.main.prices")
        with pytest.raises(meterql.errors.UnknownTableError):
            ws.query("SELECT * FROM lake.main.prices WHERE EXISTS "
                     "(WITH w AS (SELECT 1) SELECT 1) AND EXISTS (SELECT * FROM w)")
        # a CTE of a subquery is not seen by the outer query
        with pytest.raises(meterql.errors.UnknownTableError):
            ws.query("SELECT * FROM (WITH q AS (SELECT 1 AS x) SELECT * FROM q) t, q, "
                     "lake.main.prices")


def test_the_embedded_duckdb_opens_no_file_even_if_asked_directly(home, files):
    """The second wall: what the binder should never let through fails in DuckDB itself."""
    with meterql.connect(home) as ws:
        ws.query("SELECT * FROM lake.main.prices")  # opens the DuckDB-file source too
        lake = ws._connector("lake")._database()
        for con in (ws._engine.duck, ws._engine.duck.cursor(), lake, lake.cursor()):
            for sql in (f"SELECT * FROM '{files['csv']}'", f"SELECT * FROM read_csv("
                        f"'{files['csv']}')", f"SELECT * FROM read_parquet('{files['parquet']}')",
                        f"SELECT * FROM glob('{files['glob']}')",
                        f"ATTACH '{files['folder']}/other.duckdb' AS other",
                        f"COPY (SELECT 1) TO '{files['folder']}/written.csv'"):
                with pytest.raises(duckdb.PermissionException):
                    con.execute(sql)
            for sql in ("SET enable_external_access = true", "SET lock_configuration = false",
                        "SET autoload_known_extensions = true",
                        "SET python_enable_replacements = true"):
                with pytest.raises(duckdb.InvalidInputException, match="locked"):
                    con.execute(sql)
            with pytest.raises(duckdb.Error):
                con.execute("INSTALL httpfs")
        spill = ws._engine.duck.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        assert spill == str(ws.home / "tmp")  # spilled rows stay in the (0700) workspace
        secret = {"a": [MARKER]}  # noqa: F841 - a Python variable must not be scannable
        with pytest.raises(duckdb.CatalogException):
            ws._engine.duck.cursor().execute("SELECT * FROM secret")


def test_a_read_key_gets_a_4xx_and_no_file_content_from_a_real_server(home, files):
    key = new_key(home, "read")
    with serve(home) as server, httpx.Client(base_url=server.base, timeout=30) as http:
        ok = http.post("/v1/query", headers=auth(key),
                       json={"sql": "SELECT count(*) AS n FROM lake.main.prices"})
        assert ok.status_code == 200 and ok.json()["rows"] == [[3]]
        for sql in generated(files):
            answer = http.post("/v1/query", headers=auth(key), json={"sql": sql})
            assert 400 <= answer.status_code < 500, (sql, answer.status_code, answer.text)
            assert MARKER not in answer.text, sql
        for form in FORMS:
            sql = ("SELECT v.sku AS customer_id, count(*) AS quantity FROM ("
                   + form.format(p=files["csv"]) + ") v GROUP BY 1")
            answer = http.post("/v1/aggregates/leak/dry-run", headers=auth(key), json={
                "sql": sql, "from": "2026-10-01", "to": "2026-11-01"})
            assert 400 <= answer.status_code < 500, (sql, answer.status_code, answer.text)
            assert MARKER not in answer.text, sql
        assert MARKER not in server.log()


def test_the_cli_and_the_repl_refuse_it_too(home, files):
    repro = FORMS[2].format(p=files["csv"])
    query = cli("query", repro, "--home", str(home), check=False)
    assert query.returncode == 1 and "no table named" in query.stderr
    assert MARKER not in query.stdout + query.stderr
    repl = cli("repl", "--home", str(home), stdin=repro + ";\n", check=False)
    assert "no table named" in repl.stdout + repl.stderr
    assert MARKER not in repl.stdout + repl.stderr
