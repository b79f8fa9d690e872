"""Source kinds as data: sqlglot dialect, capability profile and type mapping per kind."""

from __future__ import annotations

from meterql.dialects import duckdb, postgres, sqlite
from meterql.dialects.base import UNCONSTRAINED_DECIMAL, Capabilities, SourceDialect, type_family

DIALECTS: dict[str, SourceDialect] = {
    d.kind: d for d in (postgres.DIALECT, sqlite.DIALECT, duckdb.DIALECT)
}


def dialect_for(kind: str) -> SourceDialect:
    """The dialect of a source kind (the kind has been validated when the source was added)."""
    return DIALECTS[kind]


def kind_for_scheme(scheme: str) -> str | None:
    """The source kind a URI scheme selects, or ``None``."""
    for dialect in DIALECTS.values():
        if scheme in dialect.uri_schemes:
            return dialect.kind
    return None


__all__ = [
    "DIALECTS",
    "UNCONSTRAINED_DECIMAL",
    "Capabilities",
    "SourceDialect",
    "dialect_for",
    "kind_for_scheme",
    "type_family",
]
