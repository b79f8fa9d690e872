"""A DuckDB database file, opened read-only: the same engine, so everything may be pushed."""

from __future__ import annotations

from meterql.dialects.base import Capabilities, SourceDialect


def map_type(source_type: str) -> str:
    """DuckDB types need no mapping.

    >>> map_type("DECIMAL(18,6)")
    'DECIMAL(18,6)'
    """
    return source_type


DIALECT = SourceDialect(
    kind="duckdb",
    uri_schemes=("duckdb",),
    file_uri=True,
    sqlglot_dialect="duckdb",
    capabilities=Capabilities(same_engine=True, binary_text_order=True, key_sets="list"),
    map_type=map_type,
    connector="meterql.connectors.duckdb_file:DuckDBFileConnector",
    # 128-bit integers cross Arrow as text (see arrow_types.CARRIED_AS_TEXT)
    fetch_as_text=frozenset({"INT128", "UINT128"}),
)
