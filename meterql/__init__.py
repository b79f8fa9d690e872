"""meterql: a federated SQL engine and virtual data layer for usage-based billing.

Example:
    >>> import meterql
    >>> ws = meterql.connect("meterql_home")  # doctest: +SKIP
    >>> ws.sources.add("lite", "sqlite:///data/usage.db")  # doctest: +SKIP
    >>> ws.query("SELECT count(*) FROM lite.main.events").to_pylist()  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from meterql import errors
from meterql.catalog import Column, Source, Table
from meterql.engine import Plan, Result
from meterql.errors import MeterqlError
from meterql.workspace import RunningQuery, Workspace, connect

try:
    __version__ = _version("meterql")  # one version, pyproject.toml's
except PackageNotFoundError:  # pragma: no cover - a source tree without an install
    __version__ = "0+unknown"

__all__ = [
    "Column",
    "MeterqlError",
    "Plan",
    "Result",
    "RunningQuery",
    "Source",
    "Table",
    "Workspace",
    "__version__",
    "connect",
    "errors",
]
