"""DuckDB type -> Arrow type: the types meterql hands out for a catalog column; and back, the
SQL name of an Arrow type as people read it (:func:`sql_type_name`)."""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import ParseError

from meterql.sql_text import quote_ident_if_needed

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


#: Field metadata of a scan's DECIMAL column that the source sends as its value times ``10^scale``
#: in a BIGINT (``SourceDialect.scaled_integer``); the value is the scale. The connector turns
#: the integers back into the decimals exactly (``connectors.arrow``).
SCALED_INTEGER = b"meterql.scaled_integer"


def scaled_field(name: str, duckdb_type: str, scale: int) -> pa.Field | None:
    """The field of a DECIMAL column read as a scaled integer, or ``None`` when ``duckdb_type``
    is not a decimal of that scale that a BIGINT holds (the column is read otherwise).

    >>> scaled_field("q", "DECIMAL(18, 6)", 6).metadata
    {b'meterql.scaled_integer': b'6'}
    >>> scaled_field("q", "DECIMAL(18, 6)", 2), scaled_field("q", "DECIMAL(38, 6)", 6)
    (None, None)
    """
    typ = arrow_type(duckdb_type)
    if (typ is None or not pa.types.is_decimal(typ) or typ.scale != scale
            or typ.precision > 18):
        return None
    return pa.field(name, typ, metadata={SCALED_INTEGER: str(scale).encode()})


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


#: Arrow types whose SQL name has no parameter, as DuckDB spells it.
_NAMES: dict[pa.DataType, str] = {
    pa.null(): "NULL",
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT",
    pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
    pa.float16(): "FLOAT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.date32(): "DATE",
    pa.date64(): "DATE",
    pa.month_day_nano_interval(): "INTERVAL",
}
_TIMESTAMPS = {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}


def sql_type_name(typ: pa.DataType | pa.Field) -> str:
    """The SQL name of an Arrow type (or of a field's type) as DuckDB spells it: the one name a
    column type has in table headers, error messages and the HTTP API's JSON. A field carried
    as text (:func:`arrow_field`) has the name of the DuckDB type it carries.

    >>> sql_type_name(pa.decimal128(38, 10)), sql_type_name(pa.timestamp("us", tz="UTC"))
    ('DECIMAL(38,10)', 'TIMESTAMPTZ')
    >>> sql_type_name(pa.string()), sql_type_name(pa.int64()), sql_type_name(pa.list_(pa.int32()))
    ('VARCHAR', 'BIGINT', 'INTEGER[]')
    >>> sql_type_name(pa.struct([("a b", pa.int32()), ("n", pa.string())]))
    'STRUCT("a b" INTEGER, n VARCHAR)'
    >>> sql_type_name(arrow_field("n", "HUGEINT"))
    'HUGEINT'
    """
    if isinstance(typ, pa.Field):
        carried = carried_types(pa.schema([typ]))
        return carried[typ.name] if carried else sql_type_name(typ.type)
    if typ in _NAMES:
        return _NAMES[typ]
    if pa.types.is_decimal(typ):
        return f"DECIMAL({typ.precision},{typ.scale})"
    if pa.types.is_timestamp(typ):
        return "TIMESTAMPTZ" if typ.tz is not None else _TIMESTAMPS[typ.unit]
    if pa.types.is_time(typ):
        return "TIME"
    if pa.types.is_duration(typ) or pa.types.is_interval(typ):
        return "INTERVAL"
    if (pa.types.is_string(typ) or pa.types.is_large_string(typ)
            or pa.types.is_string_view(typ)):
        return "VARCHAR"
    if (pa.types.is_binary(typ) or pa.types.is_large_binary(typ)
            or pa.types.is_fixed_size_binary(typ) or pa.types.is_binary_view(typ)):
        return "BLOB"
    if pa.types.is_fixed_size_list(typ):
        return f"{sql_type_name(typ.value_type)}[{typ.list_size}]"
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_list_view(typ):
        return f"{sql_type_name(typ.value_type)}[]"
    if pa.types.is_map(typ):
        return f"MAP({sql_type_name(typ.key_type)}, {sql_type_name(typ.item_type)})"
    if pa.types.is_struct(typ):
        return "STRUCT(" + ", ".join(f"{quote_ident_if_needed(f.name)} {sql_type_name(f.type)}"
                                     for f in typ) + ")"
    if pa.types.is_dictionary(typ):
        return sql_type_name(typ.value_type)
    if isinstance(typ, pa.ExtensionType):
        name = typ.extension_name.removeprefix("arrow.")
        return name.upper() if name in ("uuid", "json") else sql_type_name(typ.storage_type)
    return str(typ).upper()  # (a type DuckDB has no name for: Arrow's own, upper case)


def type_name(duckdb_type: str) -> str:
    """A catalog column's DuckDB type as meterql names it everywhere else
    (:func:`sql_type_name`, the names of query headers); the catalog keeps its own spelling.
    A type with no Arrow counterpart here (an enum, HUGEINT, ...) keeps its name.

    >>> type_name("TIMESTAMP WITH TIME ZONE"), type_name("DECIMAL(18, 6)"), type_name("INT")
    ('TIMESTAMPTZ', 'DECIMAL(18,6)', 'INTEGER')
    >>> type_name("JSON"), type_name("HUGEINT"), type_name("TEXT"), type_name("INTEGER[]")
    ('JSON', 'HUGEINT', 'VARCHAR', 'INTEGER[]')
    """
    try:
        family = _family(duckdb_type)
        arrow = arrow_type(duckdb_type) if family not in CARRIED_AS_TEXT | {"JSON"} else None
    except (ParseError, ValueError):
        return duckdb_type
    return duckdb_type if arrow is None else sql_type_name(arrow)
