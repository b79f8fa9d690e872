"""DuckDB type -> Arrow type: the types meterql hands out for a catalog column."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

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
    "INT128": pa.decimal128(38, 0),  # HUGEINT, as DuckDB hands it to Arrow
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "BLOB": pa.binary(),
    "VARBINARY": pa.binary(),
}


def arrow_type(duckdb_type: str) -> pa.DataType | None:
    """The Arrow type for a DuckDB type, or ``None`` when meterql leaves the driver's choice.

    >>> arrow_type("DECIMAL(18, 6)"), arrow_type("TIMESTAMP WITH TIME ZONE")
    (Decimal128Type(decimal128(18, 6)), TimestampType(timestamp[us, tz=UTC]))
    >>> arrow_type("TIMESTAMP")
    TimestampType(timestamp[us])
    """
    dtype = exp.DataType.build(duckdb_type, dialect="duckdb")
    family = dtype.this.value
    if family == "DECIMAL":
        params = [int(p.name) for p in dtype.expressions]
        precision = params[0] if params else 18
        scale = params[1] if len(params) > 1 else (3 if not params else 0)
        return pa.decimal128(precision, scale)
    return _SIMPLE.get(family)
