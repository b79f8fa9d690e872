"""Package names imported on first use (PEP 562), so that importing a package stays cheap: the
command line starts without pyarrow, sqlglot or DuckDB until a command needs them.

Example:
    >>> import types
    >>> pkg = types.ModuleType("pkg")
    >>> pkg.__getattr__ = lazy_names(pkg.__dict__, {"sqrt": "math"})
    >>> pkg.__getattr__("sqrt")(9.0), "sqrt" in pkg.__dict__
    (3.0, True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(namespace: dict[str, Any], modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports each name of ``modules`` (name -> the module that
    defines it) on first use and keeps it in ``namespace`` (the package's ``globals()``)."""
    package = namespace.get("__name__", "module")

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
