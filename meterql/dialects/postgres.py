"""PostgreSQL: pushed whole when a query touches only it; types mapped through sqlglot."""

from __future__ import annotations

import re

from sqlglot import exp

from meterql.dialects.base import UNCONSTRAINED_DECIMAL, Capabilities, SourceDialect, via_sqlglot
from meterql.dialects.postgres_functions import FUNCTIONS, NAMED_FUNCTIONS, to_postgres

#: Nodes that mean the same in PostgreSQL and DuckDB when the types agree: what a query sent
#: whole (or a subquery sent as one fragment) may hold.
WHOLE_QUERY_NODES: frozenset[type[exp.Expression]] = frozenset({
    exp.Select, exp.From, exp.Join, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered,
    exp.Limit, exp.Offset, exp.With, exp.CTE, exp.Subquery, exp.Union, exp.Intersect, exp.Except,
    exp.Column, exp.Identifier, exp.Table, exp.TableAlias, exp.Star, exp.Literal, exp.Null,
    exp.Boolean, exp.Alias, exp.And, exp.Or, exp.Not, exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE,
    exp.LT, exp.LTE, exp.Is, exp.In, exp.Between, exp.Add, exp.Sub, exp.Mul, exp.Neg, exp.Count,
    exp.Sum, exp.Min, exp.Max, exp.Case, exp.If, exp.Coalesce, exp.Placeholder, exp.Distinct,
    exp.Window, exp.WindowSpec, exp.RowNumber, exp.Rank, exp.DenseRank, exp.Exists, exp.DataType,
    exp.Cast, exp.Tuple,
    exp.Var,
})


def map_type(source_type: str) -> str:
    """Map a type as ``format_type()`` prints it to DuckDB.

    >>> map_type("numeric(18,6)"), map_type("timestamp with time zone"), map_type("jsonb")
    ('DECIMAL(18, 6)', 'TIMESTAMP WITH TIME ZONE', 'JSON')
    """
    if source_type.endswith("[]"):
        # Arrays arrive as Arrow lists; their element mapping is not needed yet, so keep text.
        return "VARCHAR"
    return via_sqlglot(source_type, "postgres", UNCONSTRAINED_DECIMAL)


_NATIVE_TEXT = ("text", "character varying", "varchar", "character", "char", "bpchar", "name")


def read_as_text(source_type: str) -> bool:
    """Types meterql carries as VARCHAR that are not text at the source (arrays, inet, money,
    ranges, ...): scans read their text form, and no filter or whole query using them is sent,
    since PostgreSQL would compare them by their own type.

    >>> read_as_text("integer[]"), read_as_text("inet"), read_as_text("character varying(8)")
    (True, True, False)
    """
    if map_type(source_type) != "VARCHAR":
        return False
    return source_type.split("(")[0].strip().lower() not in _NATIVE_TEXT


def computes_differently(source_type: str) -> str | None:
    """Why PostgreSQL compares or computes a column of this type otherwise than DuckDB does on
    the values as read, or ``None``.

    >>> computes_differently("character(3)")
    'a character(3): PostgreSQL ignores its trailing spaces, DuckDB compares the padded value'
    >>> computes_differently("real"), computes_differently("text")
    ('a real: PostgreSQL compares it with decimals as a double and overflows in float4 where \
DuckDB computes in DOUBLE', None)
    """
    base = source_type.split("(")[0].strip().lower()
    if base in ("character", "char", "bpchar"):
        return (f"a {source_type}: PostgreSQL ignores its trailing spaces, DuckDB compares the "
                "padded value")
    if base in ("real", "float4"):
        return (f"a {source_type}: PostgreSQL compares it with decimals as a double and "
                "overflows in float4 where DuckDB computes in DOUBLE")
    if read_as_text(source_type):
        return f"a {source_type} carried as text"
    return None


def text_function(source_type: str) -> str | None:
    """The function printing a type as PostgreSQL's output function does, where
    ``CAST(... AS TEXT)`` prints it otherwise: ``text(inet)`` always adds the netmask
    (``10.0.0.1/32``) where psql shows ``10.0.0.1``; ``abbrev(inet)`` is the output function's
    text.

    >>> text_function("inet"), text_function("cidr"), text_function("inet[]")
    ('abbrev', None, None)
    """
    return "abbrev" if source_type.strip().lower() == "inet" else None


_NUMERIC_TYPMOD = re.compile(r"numeric\((\d+),(\d+)\)")
#: The widest numeric(p,s) read as a scaled BIGINT: |value * 10^s| < 10^p <= 10^18 < 2^63.
SCALED_INTEGER_PRECISION = 18


def scaled_integer(source_type: str) -> int | None:
    """The scale of a ``numeric(p,s)`` column (as ``format_type()`` prints it) whose values
    times ``10^s`` fit a bigint exactly, or ``None``.

    The typmod guarantees at most ``s`` decimals and fewer than ``p`` digits in all, so
    ``(v * 10^s)::bigint`` is an integer PostgreSQL computes exactly, and meterql rebuilds
    the decimal from it bit for bit. A numeric without a typmod (any number of decimals), a
    negative scale or one above the precision (PostgreSQL 15 allows both; DuckDB has no such
    DECIMAL) are read as text.

    >>> [scaled_integer(t) for t in ("numeric(18,6)", "numeric(5,0)", "numeric")]
    [6, 0, None]
    >>> [scaled_integer(t) for t in ("numeric(19,2)", "numeric(3,5)", "numeric(5,-2)")]
    [None, None, None]
    """
    match = _NUMERIC_TYPMOD.fullmatch(source_type.strip().lower())
    if match is None:
        return None
    precision, scale = int(match.group(1)), int(match.group(2))
    return scale if scale <= precision <= SCALED_INTEGER_PRECISION else None


DIALECT = SourceDialect(
    kind="postgres",
    uri_schemes=("postgresql", "postgres"),
    sqlglot_dialect="postgres",
    capabilities=Capabilities(
        typed_parameters=True, key_sets="array", whole_query_nodes=WHOLE_QUERY_NODES,
        change_log=True, functions=FUNCTIONS, named_functions=NAMED_FUNCTIONS,
    ),
    map_type=map_type,
    connector="meterql.connectors.postgres:PostgresConnector",
    # The driver decodes NUMERIC into strings itself; PostgreSQL's own text output is exact and
    # about twice as fast to read (measured on a 1M-row scan: 1.24 s -> 0.70 s). A sync reads a
    # numeric(p,s) of up to 18 digits as a scaled bigint instead (scaled_integer).
    # UUIDs arrive from the driver as 16 raw bytes; their text form converts exactly.
    fetch_as_text=frozenset({"DECIMAL", "UUID"}),
    read_as_text=read_as_text,
    text_function=text_function,
    computes_differently=computes_differently,
    translate=to_postgres,
    scaled_integer=scaled_integer,
)
