"""SQLite: weakly typed, so only scans with type-safe filters are pushed down.

SQLite keeps decimals as REAL or TEXT, dates and timestamps as TEXT, and compares them with its
own rules, so a query is never sent to it whole: meterql reads the needed columns (decimals and
dates as text, converted exactly on our side) and runs the rest in DuckDB.
"""

from __future__ import annotations

from meterql.dialects.base import UNCONSTRAINED_DECIMAL, Capabilities, SourceDialect


def map_type(source_type: str) -> str:
    """Map a declared column type to DuckDB following SQLite's affinity rules.

    >>> [map_type(t) for t in ("INTEGER", "DECIMAL(10,2)", "TIMESTAMP", "varchar(20)", "")]
    ['BIGINT', 'DECIMAL(10, 2)', 'TIMESTAMP', 'VARCHAR', 'VARCHAR']
    """
    declared = source_type.strip().upper()
    base = declared.split("(")[0].strip()
    if base in ("DECIMAL", "NUMERIC"):
        inside = declared[len(base) :].strip(" ()")
        if inside:
            parts = [int(p) for p in inside.split(",")]
            precision, scale = parts[0], parts[1] if len(parts) > 1 else 0
            return f"DECIMAL({min(precision, 38)}, {scale})"
        return "DECIMAL({}, {})".format(*UNCONSTRAINED_DECIMAL)
    if base in ("BOOLEAN", "BOOL"):
        return "BOOLEAN"
    if base == "DATE":
        return "DATE"
    if base in ("DATETIME", "TIMESTAMP"):
        return "TIMESTAMP"
    if "INT" in base:
        return "BIGINT"
    if any(word in base for word in ("CHAR", "CLOB", "TEXT")):
        return "VARCHAR"
    if "BLOB" in base:
        return "BLOB"
    if any(word in base for word in ("REAL", "FLOA", "DOUB")):
        return "DOUBLE"
    return "VARCHAR"


DIALECT = SourceDialect(
    kind="sqlite",
    uri_schemes=("sqlite",),
    file_uri=True,
    sqlglot_dialect="sqlite",
    capabilities=Capabilities(
        whole_query=False,
        # Integer and text comparisons mean the same in SQLite (BINARY collation) and DuckDB.
        pushable_filter_types=frozenset({"BIGINT", "TEXT", "VARCHAR"}),
        exact_decimal=False,
        binary_text_order=True,
        key_sets="json",
        parameters_in_filters=False,
        casts_in_filters=False,
    ),
    map_type=map_type,
    connector="meterql.connectors.sqlite:SQLiteConnector",
    fetch_as_text=frozenset({"DECIMAL", "DATE", "TIMESTAMP", "TIMESTAMPNTZ"}),
    fetch_as_integer=frozenset({"BOOLEAN"}),
    parameter_marker="?",
    # A column may be declared COLLATE NOCASE or RTRIM; an explicit COLLATE wins over it.
    text_collation="BINARY",
)
