"""Every source kind's connector: named by its dialect, loaded on first use (drivers are not
imported with meterql), and a file source whose file is gone reported as unavailable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from meterql.catalog import Source
from meterql.connectors import Connector, connector_for
from meterql.dialects import DIALECTS
from meterql.errors import SourceUnavailableError


@pytest.mark.parametrize("kind", sorted(DIALECTS))
def test_each_kind_names_its_connector(kind, tmp_path):
    dialect = DIALECTS[kind]
    connector = connector_for(Source("s", kind, f"{dialect.uri_schemes[0]}://{tmp_path}/x"))
    try:
        assert isinstance(connector, Connector)
        assert type(connector).__module__ == dialect.connector.partition(":")[0]
    finally:
        connector.close()


def test_an_unknown_kind_has_no_connector():
    with pytest.raises(ValueError, match="no connector for kind 'mysql'"):
        connector_for(Source("s", "mysql", "mysql://h/db"))


def test_importing_meterql_loads_no_driver():
    code = ("import sys, meterql, meterql.connectors, meterql.workspace; "
            "print(sorted(m for m in sys.modules if m.startswith('adbc_driver')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("kind", "what"), [("sqlite", "SQLite"), ("duckdb", "DuckDB")])
def test_a_file_source_whose_file_is_gone_is_unavailable(kind, what, tmp_path):
    path = tmp_path / "gone.db"
    connector = connector_for(Source("gone", kind, f"{kind}://{path}"))
    try:
        with pytest.raises(SourceUnavailableError) as excinfo:
            connector.server_version()
    finally:
        connector.close()
    assert str(excinfo.value).startswith(f"source 'gone': {what} file {path} does not exist")
    assert excinfo.value.hint == "check the path in the source URI"
