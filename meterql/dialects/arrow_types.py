"""DuckDB type -> Arrow type: the types meterql hands out for a catalog column."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import ParseError

_SIMPLE: dict[str, pa.DataType] = {
    "BOOLEAN": pa.bool_(),
    "TINYINT": pa.int8(),
    "SMALLINT": pa.int16(),
    "INT": pa.int32(),
    "BIGINT": pa.int64(),
    "UTINYINT": pa.uint8(),
    "USMALLINT": pa.uint16(),
    "UINT": pa.uint32(),
    "UBIGINT": pa.uint64(),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
    "TEXT": pa.string(),
    "CHAR": pa.string(),
    "JSON": pa.string(),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMPNTZ": pa.timestamp("us"),  # sqlglot's name for DuckDB's TIMESTAMP
    "DATETIME": pa.timestamp("us"),
    "TIMESTAMP_S": pa.timestamp("s"),
    "TIMESTAMP_MS": pa.timestamp("ms"),
    "TIMESTAMP_NS": pa.timestamp("ns"),
    "INTERVAL": pa.month_day_nano_interval(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "BLOB": pa.binary(),
    "VARBINARY": pa.binary(),
}


#: Field metadata naming the DuckDB type a column has where Arrow has no type for it.
DUCKDB_TYPE = b"meterql.duckdb_type"
#: DuckDB types Arrow cannot hold (HUGEINT and UHUGEINT are 128-bit integers; DuckDB hands
#: them out as DECIMAL(38,0), which changes their arithmetic and wraps UHUGEINT past 2^127):
#: they cross Arrow as their text, and DuckDB casts them back when it reads them.
CARRIED_AS_TEXT = frozenset({"INT128", "UINT128"})


def arrow_field(name: str, duckdb_type: str) -> pa.Field:
    """The Arrow field a column of ``duckdb_type`` crosses Arrow as (see CARRIED_AS_TEXT).

    >>> arrow_field("n", "HUGEINT").metadata
    {b'meterql.duckdb_type': b'HUGEINT'}
    """
    if _family(duckdb_type) in CARRIED_AS_TEXT:
        return pa.field(name, pa.string(), metadata={DUCKDB_TYPE: duckdb_type.encode()})
    return pa.field(name, arrow_type(duckdb_type) or pa.string())


def carried_types(schema: pa.Schema) -> dict[str, str]:
    """Column -> the DuckDB type of each column of ``schema`` carried as text.

    >>> carried_types(pa.schema([arrow_field("n", "HUGEINT"), arrow_field("x", "INTEGER")]))
    {'n': 'HUGEINT'}
    """
    return {f.name: f.metadata[DUCKDB_TYPE].decode() for f in schema
            if f.metadata and DUCKDB_TYPE in f.metadata}


def carried_schema(schema: pa.Schema, duckdb_types: list[str]) -> pa.Schema:
    """``schema`` (DuckDB's Arrow for a result) with the columns Arrow cannot hold carried as
    text instead."""
    return pa.schema([arrow_field(f.name, t) if _family(t) in CARRIED_AS_TEXT else f
                      for f, t in zip(schema, duckdb_types, strict=True)])


def _family(duckdb_type: str) -> str:
    try:
        family: str = exp.DataType.build(duckdb_type, dialect="duckdb").this.value
        return family
    except (ParseError, ValueError):  # (DuckDB's "NULL" type of an untyped NULL, ...)
        return ""


def arrow_type(duckdb_type: str) -> pa.DataType | None:
    """The Arrow type for a DuckDB type, or ``None`` when meterql leaves the driver's choice.

    >>> arrow_type("DECIMAL(18, 6)"), arrow_type("TIMESTAMP WITH TIME ZONE")
    (Decimal128Type(decimal128(18, 6)), TimestampType(timestamp[us, tz=UTC]))
    >>> arrow_type("TIMESTAMP")
    TimestampType(timestamp[us])
    """
    dtype = exp.DataType.build(duckdb_type, dialect="duckdb")
    family = dtype.this.value
    if family in CARRIED_AS_TEXT:
        return pa.string()
    if family == "DECIMAL":
        params = [int(p.name) for p in dtype.expressions]
        precision = params[0] if params else 18
        scale = params[1] if len(params) > 1 else (3 if not params else 0)
        return pa.decimal128(precision, scale)
    return _SIMPLE.get(family)
