"""meterql: a federated SQL engine and virtual data layer for usage-based billing.

Example:
    >>> import meterql
    >>> ws = meterql.connect("meterql_home")  # doctest: +SKIP
    >>> ws.sources.add("lite", "sqlite:///data/usage.db")  # doctest: +SKIP
    >>> ws.query("SELECT count(*) FROM lite.main.events").to_pylist()  # doctest: +SKIP

    The same calls through a running server (``meterql serve``), with an API key's scope:

    >>> ws = meterql.connect("https://meterql.internal:8080", key="mq_...")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meterql import errors
from meterql.errors import MeterqlError
from meterql.lazy import lazy_names

if TYPE_CHECKING:
    from meterql.catalog import Column, Source, Table
    from meterql.client import Client
    from meterql.engine import Plan, Result
    from meterql.workspace import RunningQuery, Workspace

#: The public names that live in heavier modules, imported on first use (``import meterql``
#: stays cheap, so the command line starts fast): name -> module.
_LAZY = {
    "Column": "meterql.catalog",
    "Source": "meterql.catalog",
    "Table": "meterql.catalog",
    "Client": "meterql.client",
    "Plan": "meterql.engine",
    "Result": "meterql.engine",
    "RunningQuery": "meterql.workspace",
    "Workspace": "meterql.workspace",
}


_lazy = lazy_names(globals(), _LAZY)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("meterql")  # one version, pyproject.toml's
        except PackageNotFoundError:  # pragma: no cover - a source tree without an install
            found = "0+unknown"
        globals()["__version__"] = found
        return found
    return _lazy(name)


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
    from meterql.workspace import connect as open_folder

    return open_folder(target)


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
