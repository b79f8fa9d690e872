"""meterql: a federated SQL engine and virtual data layer for usage-based billing.

Example:
    >>> import meterql
    >>> ws = meterql.connect("meterql_home")  # doctest: +SKIP
    >>> ws.sources.add("lite", "sqlite:///data/usage.db")  # doctest: +SKIP
    >>> ws.query("SELECT count(*) FROM lite.main.events").to_pylist()  # doctest: +SKIP

    The same calls through a running server (``meterql serve``), with an API key's scope:

    >>> ws = meterql.connect("https://meterql.internal:8080", key="mq_...")  # doctest: +SKIP
"""

import os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from pathlib import Path

from meterql import errors
from meterql.catalog import Column, Source, Table
from meterql.client import Client
from meterql.engine import Plan, Result
from meterql.errors import MeterqlError
from meterql.workspace import RunningQuery, Workspace
from meterql.workspace import connect as _open


def connect(target: str | Path | None = None, *, key: str | None = None) -> Workspace | Client:
    """Open a workspace folder (default ``$METERQL_HOME`` or ``./meterql_home``), or, given
    an ``http://`` or ``https://`` URL, a :class:`Client` of that server with the API key
    ``key`` (default ``$METERQL_API_KEY``): the same calls, made over HTTP with the key's
    scope."""
    if isinstance(target, str) and target.startswith(("http://", "https://")):
        key = key or os.environ.get("METERQL_API_KEY")
        if not key:
            raise errors.AuthenticationError(
                f"connecting to {target} needs an API key",
                hint="pass key=... or set METERQL_API_KEY (meterql apikey create)")
        from meterql.client import remote

        return remote(target, key)
    if key is not None:
        raise errors.WorkspaceError("key= is for a server's URL, not a workspace folder",
                                    hint="give an http:// or https:// URL, or drop key=")
    return _open(target)

try:
    __version__ = _version("meterql")  # one version, pyproject.toml's
except PackageNotFoundError:  # pragma: no cover - a source tree without an install
    __version__ = "0+unknown"

__all__ = [
    "Client",
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
