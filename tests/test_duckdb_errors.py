"""DuckDB's complaints about a query read as meterql's own errors: one line naming the problem,
the caret where the user wrote the name, a hint; never "DuckDB failed the query"."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import meterql
from meterql.cli import main
from meterql.connectors.duckdb_errors import query_fault
from meterql.errors import QueryError, UnknownColumnError
from tests.support.small_home import small_home


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return small_home(tmp_path_factory.mktemp("duckdb_errors"))


@pytest.fixture()
def ws(home):
    workspace = meterql.connect(home)
    yield workspace
    workspace.close()


def failure(ws, sql: str) -> QueryError:
    with pytest.raises(QueryError) as err:
        ws.query(sql)
    text = str(err.value)
    assert "DuckDB failed" not in text and "Error:" not in text, text
    assert "\n" not in text, text
    assert err.value.hint
    return err.value


GROUP_BY_CASES = [
    # the residual (two sources)
    ("SELECT name, count(*) FROM crm.main.customers c JOIN usage.main.events e "
     "ON c.id = e.customer_id", "name", (1, 8)),
    # a DuckDB-file source running the whole query
    ("SELECT customer_id, count(*) FROM usage.main.events", "customer_id", (1, 8)),
    # a query over no table, on a second line
    ("SELECT count(*),\n       x FROM (SELECT 1 AS x)", "x", (2, 8)),
]


@pytest.mark.parametrize(("sql", "column", "position"), GROUP_BY_CASES)
def test_group_by_mistake(ws, sql, column, position):
    err = failure(ws, sql)
    assert err.message == f"column '{column}' must be in GROUP BY or inside an aggregate function"
    assert (err.line, err.column) == position
    assert f"add {column} to GROUP BY" in (err.hint or "")
    caret = err.caret()
    assert caret is not None
    text, marker = caret.splitlines()
    assert text[marker.index("^"):].startswith(column)


def test_wrong_column_in_the_residual(ws):
    sql = ("SELECT c.id, sum(qty) FROM crm.main.customers c JOIN usage.main.events e "
           "ON c.id = e.customer_id GROUP BY 1 HAVING sum(nam) > 1")
    err = failure(ws, sql)
    assert isinstance(err, UnknownColumnError)
    assert err.message == "no column named 'nam'"
    assert (err.line, err.column) == (1, sql.index("nam)") + 1)


def test_function_errors(ws):
    err = failure(ws, "SELECT sum(name) FROM crm.main.customers c JOIN usage.main.events e "
                      "ON c.id = e.customer_id")
    assert err.message == "function 'sum' does not take (VARCHAR)"
    assert err.column == 8 and "CAST" in (err.hint or "")
    err = failure(ws, "SELECT florr(2.5) AS x")
    assert err.message == "no function named 'florr'" and err.hint == "did you mean 'floor'?"
    assert err.column == 8
    err = failure(ws, "SELECT CAST('abc' AS INTEGER) AS n")
    assert "'abc'" in err.message and err.column == 14


def test_output_schema_maps_the_same(ws):
    with pytest.raises(QueryError) as err:
        ws._engine.output_schema("SELECT name, count(*) FROM crm.main.customers")
    assert err.value.message.startswith("column 'name' must be in GROUP BY")
    assert err.value.column == 8


def test_an_unknown_kind_keeps_its_first_line():
    con = duckdb.connect()
    sql = "SELECT 1 / 0::INTEGER // 'x'"
    with pytest.raises(duckdb.Error) as raised:
        con.execute(sql)
    err = query_fault(raised.value, sql)
    assert "Error:" not in err.message and "\n" not in err.message and err.hint


def test_cli_prints_one_line_and_a_caret(home):
    done = CliRunner().invoke(main, ["query", "SELECT name, count(*) FROM crm.main.customers "
                                     "c JOIN usage.main.events e ON c.id = e.customer_id",
                                     "--home", str(home)])
    assert done.exit_code == 1
    lines = done.output.splitlines()
    assert lines[0].startswith("error: column 'name' must be in GROUP BY")
    assert "Binder Error" not in done.output and "DuckDB failed" not in done.output
    assert lines[2] == "       ^"
