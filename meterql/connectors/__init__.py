"""I/O with sources: one connector per kind, created lazily so drivers load only when used."""

from __future__ import annotations

from meterql.catalog.model import Source
from meterql.connectors.base import CancelHandle, Connector


def connector_for(source: Source) -> Connector:
    """A new connector for a source (drivers are imported here, not at package import)."""
    if source.kind == "postgres":
        from meterql.connectors.postgres import PostgresConnector

        return PostgresConnector(source)
    if source.kind == "sqlite":
        from meterql.connectors.sqlite import SQLiteConnector

        return SQLiteConnector(source)
    if source.kind == "duckdb":
        from meterql.connectors.duckdb_file import DuckDBFileConnector

        return DuckDBFileConnector(source)
    raise ValueError(f"no connector for kind {source.kind!r}")  # kinds are validated on add


__all__ = ["CancelHandle", "Connector", "connector_for"]
