"""SQL text made from names, paths and types: the only place meterql quotes or renders them.

Values are always bound as parameters. What cannot be bound (a table or column name, a file
path in ``ATTACH``, a column type in DDL) becomes SQL text here and nowhere else:

- :func:`quote_ident` and :func:`quote_qualified` quote identifiers (a name can hold anything,
  quotes included, and still name exactly one thing);
- :func:`quote_literal` quotes a string literal, for the few statements that take no parameter;
- :func:`sql_type` parses a column type given by a user (a declared stream column, a manual
  table's column, a CSV column) and renders it from the parsed form, so no text a user wrote
  ever reaches DuckDB as it was written;
- :func:`check_name` checks the names meterql creates objects under (sources, streams, uploads,
  manual tables, aggregates).

``tests/test_sql_text.py`` checks that no other module quotes by hand and that every f-string
handed to DuckDB interpolates only what these functions made.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import TypeGuard

import duckdb

from meterql.errors import MeterqlError

#: Names meterql creates objects under: a lowercase identifier, as PostgreSQL folds them.
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def quote_ident(name: str) -> str:
    """A double-quoted identifier.

    >>> print(quote_ident('a "b" c'))
    "a ""b"" c"
    """
    return '"' + name.replace('"', '""') + '"'


def quote_ident_if_needed(name: str) -> str:
    """An identifier as a person would write it: bare when it is a lowercase name that is no
    SQL keyword (for SQL shown to users to run at a source), else quoted.

    >>> [quote_ident_if_needed(n) for n in ("plans", "order", "Plans")]
    ['plans', '"order"', '"Plans"']
    """
    if NAME.match(name) and name not in _reserved():
        return name
    return quote_ident(name)


@functools.cache
def _reserved() -> frozenset[str]:
    """Words SQL reserves (DuckDB's list, a superset of PostgreSQL's for names of tables);
    sqlglot is imported on first use, so that this module loads without it."""
    from sqlglot.dialects.duckdb import DuckDB

    return frozenset(DuckDB.Generator.RESERVED_KEYWORDS)


def quote_qualified(*parts: str) -> str:
    """A dotted name with every part quoted.

    >>> quote_qualified("local", "events", "api_calls")
    '"local"."events"."api_calls"'
    """
    return ".".join(quote_ident(p) for p in parts)


def quote_literal(text: str) -> str:
    """A single-quoted string literal (for statements that take no parameters, e.g. ATTACH).

    >>> quote_literal("it's")
    "'it''s'"
    """
    if "\x00" in text:
        raise ValueError("a SQL string cannot hold a NUL character")
    return "'" + text.replace("'", "''") + "'"


def is_name(name: object) -> TypeGuard[str]:
    """Whether ``name`` is a valid name for an object meterql creates.

    >>> is_name("api_calls"), is_name("Api-Calls")
    (True, False)
    """
    return isinstance(name, str) and NAME.match(name) is not None


@functools.lru_cache(maxsize=1024)
def sql_type(text: str) -> str:
    """A DuckDB column type given as text, parsed and rendered again in DuckDB's spelling.

    Raises :class:`ValueError` saying why when the text is not exactly one type DuckDB knows
    (anything after the type, such as ``NOT NULL``, a comment or a second statement, is
    refused, not ignored).

    >>> sql_type("decimal(18, 2)"), sql_type("int"), sql_type("varchar")
    ('DECIMAL(18,2)', 'INTEGER', 'VARCHAR')
    >>> sql_type("INTEGER); DROP TABLE x; --")
    Traceback (most recent call last):
    ...
    ValueError: 'INTEGER); DROP TABLE x; --' is not a column type
    """
    if not isinstance(text, str) or not text.strip() or len(text) > 1000:
        raise ValueError(f"{text!r:.80} is not a column type")
    import sqlglot  # (on first use: this module loads without sqlglot)
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    try:
        parsed = sqlglot.parse_one(text, into=exp.DataType, read="duckdb")
    except (ParseError, TokenError):
        raise ValueError(f"{text!r:.80} is not a column type") from None
    if not isinstance(parsed, exp.DataType) or parsed.is_type(exp.DataType.Type.USERDEFINED):
        raise ValueError(f"{text!r:.80} is not a column type DuckDB knows")
    rendered = parsed.sql("duckdb")
    try:
        return str(duckdb.sqltype(rendered))
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0].split(": ", 1)[-1]
        raise ValueError(f"{text!r:.80} is not a column type DuckDB takes: {reason}") from None


def sql_types(columns: Mapping[str, str], where: str,
              error: type[MeterqlError]) -> dict[str, str]:
    """Each column's type through :func:`sql_type`, or ``error`` naming the column and
    ``where`` it was declared.

    >>> from meterql.errors import ParameterError
    >>> sql_types({"amount": "numeric(18, 2)"}, "local.manual.credits", ParameterError)
    {'amount': 'DECIMAL(18,2)'}
    """
    parsed = {}
    for column, typ in columns.items():
        try:
            parsed[column] = sql_type(typ)
        except ValueError as exc:
            raise error(f"column {column!r:.80} of {where}: {exc}",
                        hint="column types are DuckDB types, such as VARCHAR, BIGINT, JSON "
                        "or DECIMAL(18,2)") from None
    return parsed


def check_name(name: object, what: str, error: type[MeterqlError]) -> str:
    """``name`` if it is a valid name (see :data:`NAME`), else ``error`` saying what it names.

    >>> from meterql.errors import InvalidSourceError
    >>> check_name("prices", "table", InvalidSourceError)
    'prices'
    """
    if is_name(name):
        return name
    shown = repr(name) if not isinstance(name, str) else f"'{name[:80]}'"
    raise error(f"{shown} is not a valid {what} name",
                hint="use a lowercase identifier: letters, digits and _, at most 63")


def column_pairs(values: Iterable[str]) -> dict[str, str]:
    """Repeated ``NAME:TYPE`` texts (``--column`` options, ``column=`` query values) as column
    types, in order; the types are checked later, by :func:`sql_types`.

    >>> column_pairs(["amount:DECIMAL(18,2)", " plan : VARCHAR"])
    {'amount': 'DECIMAL(18,2)', 'plan': 'VARCHAR'}
    >>> column_pairs(["amount"])
    Traceback (most recent call last):
    ...
    ValueError: 'amount' is not NAME:TYPE
    """
    out = {}
    for pair in values:
        name, sep, typ = pair.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"'{pair[:80]}' is not NAME:TYPE")
        out[name.strip()] = typ.strip()
    return out
