"""Source kinds as data: sqlglot dialect, capability profile and type mapping per kind.

The dialects (and sqlglot with them) are imported on first use: a catalog that only lists its
sources imports no sqlglot.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meterql.dialects.base import (
        UNCONSTRAINED_DECIMAL,
        Capabilities,
        SourceDialect,
        type_family,
    )

    DIALECTS: dict[str, SourceDialect]


@functools.cache
def _dialects() -> dict[str, SourceDialect]:
    from meterql.dialects import duckdb, postgres, sqlite

    return {d.kind: d for d in (postgres.DIALECT, sqlite.DIALECT, duckdb.DIALECT)}


def dialect_for(kind: str) -> SourceDialect:
    """The dialect of a source kind (the kind has been validated when the source was added)."""
    return _dialects()[kind]


def kind_for_scheme(scheme: str) -> str | None:
    """The source kind a URI scheme selects, or ``None``."""
    for dialect in _dialects().values():
        if scheme in dialect.uri_schemes:
            return dialect.kind
    return None


def uri_schemes() -> list[str]:
    """Every URI scheme meterql knows, in the dialects' order."""
    return [s for d in _dialects().values() for s in d.uri_schemes]


def __getattr__(name: str) -> Any:
    if name == "DIALECTS":
        value: Any = _dialects()
    elif name in ("UNCONSTRAINED_DECIMAL", "Capabilities", "SourceDialect", "type_family"):
        value = getattr(importlib.import_module("meterql.dialects.base"), name)
    else:
        raise AttributeError(f"module 'meterql.dialects' has no attribute '{name}'")
    globals()[name] = value
    return value


__all__ = [
    "DIALECTS",
    "UNCONSTRAINED_DECIMAL",
    "Capabilities",
    "SourceDialect",
    "dialect_for",
    "kind_for_scheme",
    "type_family",
    "uri_schemes",
]
