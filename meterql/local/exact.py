"""Exact numbers in CSV uploads and manual rows: a value with more decimal places than its
column keeps is refused, not rounded, unless the caller asks for rounding (``round_decimals``).

DuckDB casts ``'1.005'`` to ``DECIMAL(18,2)`` as ``1.01`` and ``'2.5'`` to ``INTEGER`` as ``3``
without a word; a billing table must not. The rule is the one event streams follow
(:mod:`meterql.local.events`): the value, read exactly, must equal itself rounded to the
column's scale (0 for the integer types). Rounding, when asked for, is DuckDB's own: half away
from zero (``1.005`` -> ``1.01``, ``-2.5`` -> ``-3``).

The rule is written twice: for one value in Python (:func:`fit_number`, manual rows) and for a
column of text in SQL (:func:`text_check`, CSV cells read as text by DuckDB).
``tests/test_ingest.py`` checks that the two agree.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

from meterql.sql_text import quote_ident, quote_literal, sql_type

#: The integer types (scale 0) and their ranges, low inclusive, high exclusive. BIGNUM
#: (VARINT before DuckDB 1.4) has none.
_RANGES: dict[str, tuple[int, int] | None] = {
    **{name: (-2 ** (bits - 1), 2 ** (bits - 1)) for name, bits in (
        ("TINYINT", 8), ("SMALLINT", 16), ("INTEGER", 32), ("BIGINT", 64), ("HUGEINT", 128))},
    **{name: (0, 2 ** bits) for name, bits in (
        ("UTINYINT", 8), ("USMALLINT", 16), ("UINTEGER", 32), ("UBIGINT", 64),
        ("UHUGEINT", 128))},
    "BIGNUM": None, "VARINT": None}
INTEGERS = frozenset(_RANGES)
_DECIMAL = re.compile(r"DECIMAL\((\d+), ?(\d+)\)")
#: A number as text: digits with an optional point and an exponent of at most 4 digits, spaces
#: around (what DuckDB's cast reads, less its digit separators ``1_000`` and hexadecimal
#: ``0x10``). The same pattern runs in Python and in DuckDB (RE2).
NUMBER = r"[\t\n\f\r ]*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?[\t\n\f\r ]*"
_NUMBER = re.compile(NUMBER)
_PARTS = r"^[\t\n\f\r ]*[+-]?([0-9]*)\.?([0-9]*)(?:[eE]([+-]?[0-9]+))?[\t\n\f\r ]*$"
_EXACT = Context(prec=80)  # wide enough for every DECIMAL(38, s) and HUGEINT value


class TooPrecise(ValueError):
    """A value with more decimal places than its column keeps (rounding would change it)."""


def exact_scale(typ: str) -> int | None:
    """The decimal places a column of type ``typ`` keeps, if it is an exact number type.

    >>> exact_scale("DECIMAL(18,2)"), exact_scale("BIGINT"), exact_scale("DOUBLE")
    (2, 0, None)
    """
    if typ in INTEGERS:
        return 0
    match = _DECIMAL.fullmatch(typ)
    return int(match.group(2)) if match else None


def parse_number(text: str) -> Decimal | None:
    """``text`` as an exact number, or None when it is not one (see :data:`NUMBER`).

    >>> parse_number(" 1.50 "), parse_number("1e-3"), parse_number("1_000")
    (Decimal('1.50'), Decimal('0.001'), None)
    """
    if not _NUMBER.fullmatch(text):
        return None
    return Decimal(text.strip("\t\n\f\r "))


def fit_number(value: Decimal, typ: str, round_decimals: bool = False,
               shown: str | None = None) -> Decimal:
    """``value`` as a column of exact type ``typ`` stores it; raises :class:`ValueError` with
    the reason (naming the value as ``shown``, by default as it is) when it has more decimal
    places than the column keeps (unless ``round_decimals``) or does not fit a DECIMAL's
    precision.

    >>> fit_number(Decimal("12.3"), "DECIMAL(18,2)")
    Decimal('12.30')
    >>> fit_number(Decimal("12.345"), "DECIMAL(18,2)", round_decimals=True)
    Decimal('12.35')
    >>> fit_number(Decimal("12.345"), "DECIMAL(18,2)")
    Traceback (most recent call last):
    ...
    meterql.local.exact.TooPrecise: 12.345 has more than 2 decimal places (DECIMAL(18,2))
    """
    scale = exact_scale(typ)
    if scale is None:
        raise ValueError(f"{typ} is not an exact number type")
    shown = str(value) if shown is None else shown
    if not value.is_finite():
        raise ValueError(f"{shown} is not a number")
    try:
        fitted = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP,
                                context=_EXACT)
    except InvalidOperation:
        raise ValueError(f"{shown} is out of range for {typ}") from None
    match = _DECIMAL.fullmatch(typ)
    bounds = _RANGES.get(typ)
    if (match and fitted and fitted.adjusted() >= int(match.group(1)) - scale) or (
            bounds is not None and not bounds[0] <= fitted < bounds[1]):
        raise ValueError(f"{shown} is out of range for {typ}")
    if fitted != value and not round_decimals:
        raise TooPrecise(f"{shown} {_too_precise(scale)} ({typ})")
    return fitted


_APOSTROPHE = "'"


def text_check(column: str, typ: str, round_decimals: bool = False) -> tuple[str, str]:
    """SQL over a VARCHAR ``column`` of numbers as text, for exact type ``typ``: the value
    cast to ``typ``, and the reason a cell is refused (NULL when it fits, or is NULL).

    Columnar, no Python per cell. Most cells are plain (``12.50``, ``-3``): for them a cast and
    a few string functions decide. The others (an exponent, too many places, not a number)
    take two regular expressions: the decimal places of a text are its digits after the point,
    less its exponent, less the trailing zeros of all its digits (``1.50`` has 1, ``100e-2``
    none, ``1e-3`` 3).
    """
    typ = sql_type(typ)
    scale = exact_scale(typ)
    if scale is None:
        raise ValueError(f"{typ} is not an exact number type")
    cell = quote_ident(column)
    # (DuckDB casts '100e-2' to DECIMAL(38,2) but not to DECIMAL(3,2): the second cast reads
    # what the first cannot; its rounding is the same, at the same scale)
    value = (f"coalesce(TRY_CAST({cell} AS {typ}), "
             f"TRY_CAST(TRY_CAST({cell} AS DECIMAL(38,{scale})) AS {typ}))")
    # plain: digits, a sign, a point, spaces; at most `scale` places (trailing zeros aside)
    point = f"strpos({cell}, '.')"
    plain = (f"(NOT regexp_matches({cell}, '[^0-9. +-]') AND {value} IS NOT NULL AND "
             f"({point} = 0 OR length(rtrim({cell}, '0 ')) - {point} <= {scale}))")
    parts = f"regexp_extract({cell}, {quote_literal(_PARTS)}, ['i', 'f', 'e'])"
    digits = f"({parts}.i || {parts}.f)"
    exponent = f"CASE WHEN {parts}.e = '' THEN 0 ELSE TRY_CAST({parts}.e AS BIGINT) END"
    places = (f"(length({parts}.f) - ({exponent}) - (length({digits}) - "
              f"length(rtrim({digits}, '0'))))")
    # (DuckDB evaluates a WHEN only for the cells no earlier WHEN took)
    reason = (f"CASE WHEN {cell} IS NULL OR {plain} THEN NULL "
              f"WHEN NOT regexp_full_match({cell}, {quote_literal(NUMBER)}) "
              f"THEN {quote_literal(_APOSTROPHE)} || {cell} || "
              f"{quote_literal(_APOSTROPHE + ' is not a number')} "
              f"WHEN {value} IS NULL "
              f"THEN trim({cell}) || {quote_literal(' is out of range for ' + typ)} ")
    if not round_decimals:
        reason += (f"WHEN coalesce({places} > {scale}, true) THEN trim({cell}) || "
                   f"{quote_literal(' ' + _too_precise(scale) + ' (' + typ + ')')} ")
    return value, reason + "END"


def _too_precise(scale: int) -> str:
    return "is not a whole number" if scale == 0 else f"has more than {scale} decimal places"
