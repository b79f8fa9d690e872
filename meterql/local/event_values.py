"""Event field values: the column types events can fill, how a value is checked against one
and made an Arrow array, and the limits on an event's shape.

Every check an event goes through before it is answered lives here or in events/checks.py, and
the value a check lets through is one its column stores: an event answered ``accepted`` must
never fail later, when DuckDB gets it (see docs/ingestion.md, "a 2xx means stored").

Column types events can fill (a declared column of any other type is refused when the stream
is created, with this list)::

    BOOLEAN                                  JSON true / false
    TINYINT .. BIGINT, HUGEINT, UTINYINT ..  JSON integers in the type's range
      UBIGINT
    FLOAT, DOUBLE                            JSON numbers (or numbers as strings), finite
    DECIMAL(p,s)                             JSON numbers (or numbers as strings), exactly
    VARCHAR                                  JSON strings
    JSON                                     any JSON value
    DATE                                     ISO 8601 dates
    TIMESTAMP, TIMESTAMP WITH TIME ZONE      ISO 8601 times (UTC without an offset)

Example:
    >>> fits(300, "TINYINT")
    '300 is not an integer from -128 to 127 (TINYINT)'
    >>> fits("2.5", "DECIMAL(4,1)") is None, fits(Decimal("12345.6"), "DECIMAL(4,1)")
    (True, '12345.6 is too large for DECIMAL(4,1)')
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from meterql.sql_text import quote_ident, quote_literal

DECIMAL = "DECIMAL(38,9)"  # what a fraction is inferred as (and a BIGINT field widened to)
EXACT = Context(prec=80)  # decimal arithmetic wide enough for DECIMAL(38, s) values

_INTEGERS: dict[str, tuple[int, int, pa.DataType | None]] = {
    "TINYINT": (-2**7, 2**7 - 1, pa.int8()),
    "SMALLINT": (-2**15, 2**15 - 1, pa.int16()),
    "INTEGER": (-2**31, 2**31 - 1, pa.int32()),
    "BIGINT": (-2**63, 2**63 - 1, pa.int64()),
    "HUGEINT": (-2**127, 2**127 - 1, None),  # (no 128-bit integers in Arrow: sent as text)
    "UTINYINT": (0, 2**8 - 1, pa.uint8()),
    "USMALLINT": (0, 2**16 - 1, pa.uint16()),
    "UINTEGER": (0, 2**32 - 1, pa.uint32()),
    "UBIGINT": (0, 2**64 - 1, pa.uint64()),
}
#: Types DuckDB stores but a query result does not carry exactly: refused, with the reason.
_UNREADABLE = {
    "UHUGEINT": "its values from 2^127 on come back wrong in query results (Arrow has no "
                "unsigned 128-bit integer); declare HUGEINT or DECIMAL(38,0)",
}
_FLOATS: dict[str, tuple[float, pa.DataType]] = {
    "FLOAT": (float.fromhex("0x1.fffffep+127"), pa.float32()),
    "DOUBLE": (float.fromhex("0x1.fffffffffffffp+1023"), pa.float64()),
}
_TIMES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
FILLABLE = ("BOOLEAN", *_INTEGERS, *_FLOATS, "DECIMAL(p,s)", "VARCHAR", "JSON", "DATE", *_TIMES)


@dataclass(frozen=True)
class ColumnKind:
    """What events can put in a column of one DuckDB type."""

    type: str  # DuckDB's spelling, as duckdb_columns() gives it
    check: Callable[[Any], str | None]  # a parsed JSON value -> why it does not fit, or None
    build: Callable[[list[Any]], pa.Array]  # checked values (or None) -> the column's array
    reader: pa.DataType | None = None  # what Arrow's JSON reader reads it as exactly (None:
    # not read as columns; such a stream's batches take the event-by-event way)
    refusal: str | None = None  # why events cannot fill it (None: they can)


@functools.cache
def kind(typ: str) -> ColumnKind:
    """The kind of a column type (as DuckDB spells it). A type events cannot fill gives a
    kind that refuses every value (a column declared before types were checked).

    >>> kind("INTEGER").reader
    DataType(int32)
    """
    if typ == "BOOLEAN":
        return ColumnKind(typ, _boolean, lambda v: pa.array(v, pa.bool_()), pa.bool_())
    if typ in _INTEGERS:
        low, high, arrow = _INTEGERS[typ]
        return ColumnKind(typ, functools.partial(_integer, typ, low, high),
                          functools.partial(_integers, arrow), arrow)
    if typ in _FLOATS:
        top, arrow = _FLOATS[typ]
        # FLOAT is not read by Arrow: its reader rounds text to float32 directly, Python via
        # a double; the two could differ in the last bit (and so in the body's fingerprint).
        return ColumnKind(typ, functools.partial(_float, typ, top),
                          functools.partial(_floats, arrow),
                          arrow if typ == "DOUBLE" else None)
    if typ.startswith("DECIMAL(") and typ.endswith(")"):
        precision, scale = (int(x) for x in typ[8:-1].split(","))
        arrow = pa.decimal128(precision, scale)
        return ColumnKind(typ, functools.partial(_decimal, typ, precision, scale),
                          functools.partial(_decimals, arrow, scale), arrow)
    if typ == "VARCHAR":
        return ColumnKind(typ, _string, lambda v: pa.array(v, pa.string()), pa.string())
    if typ == "JSON":
        return ColumnKind(typ, lambda v: None, lambda v: pa.array(v, pa.string()))
    if typ == "DATE":
        return ColumnKind(typ, _date_problem, lambda v: pa.array(
            [None if x is None else _date(x) for x in v], pa.date32()))
    if typ in _TIMES:
        return ColumnKind(typ, _time_problem, lambda v: pa.array(
            [None if x is None else timestamp(x) for x in v], pa.timestamp("us", tz="UTC")))
    refusal = _UNREADABLE.get(typ, "declare one of " + ", ".join(FILLABLE))
    return ColumnKind(typ, lambda v: f"a column of type {typ} cannot be filled by events",
                      lambda v: pa.nulls(len(v)), refusal=refusal)


def fillable(typ: str) -> str:
    """``typ`` (DuckDB's spelling) if events can fill a column of that type, else
    :class:`ValueError` saying why not (and naming the types they can fill)."""
    refusal = kind(typ).refusal
    if refusal is not None:
        raise ValueError(f"events cannot fill a column of type {typ}: {refusal}")
    return typ


def fits(value: Any, typ: str) -> str | None:
    """Why ``value`` (parsed JSON, not None) does not fit a column of type ``typ``, or None."""
    return kind(typ).check(value)


def to_arrow(values: list[Any], typ: str) -> pa.Array:
    """Values checked by :func:`fits` (or None) as an array of the column's type."""
    return kind(typ).build(values)


def infer(value: Any) -> str:
    """The column type a new field is created with, from its first value."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT" if -2**63 <= value < 2**63 else DECIMAL  # (beyond 64 bits: exact)
    if isinstance(value, Decimal):
        return DECIMAL
    if isinstance(value, (dict, list)):
        return "JSON"
    return "VARCHAR"


def timestamp(value: Any) -> datetime | None:
    """An ISO 8601 time (UTC if it has no offset) as an aware datetime, or None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"{_shown(value)} is not a boolean"


def _integer(typ: str, low: int, high: int, value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return None
    if typ == "BIGINT":
        return f"{_shown(value)} is not an integer"
    return f"{_shown(value)} is not an integer from {low} to {high} ({typ})"


def _integers(arrow: pa.DataType | None, values: list[Any]) -> pa.Array:
    if arrow is None:  # HUGEINT: as text, which DuckDB casts exactly
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.array(values, arrow)


def _number(value: Any) -> Decimal | None:
    """A JSON number, or a number sent as a string, exactly; None if it is neither."""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        return None
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _float(typ: str, top: float, value: Any) -> str | None:
    if isinstance(value, float):  # (from Python callers; parsed JSON holds Decimals)
        if value != value or value in (math.inf, -math.inf):
            return f"{_shown(value)} is not a finite number"
        return None if abs(value) <= top else f"{_shown(value)} is too large for {typ}"
    number = _number(value)
    if number is None:
        return f"{_shown(value)} is not a number"
    if abs(number) > Decimal(top):
        return f"{_shown(value)} is too large for {typ}"
    return None


def _floats(arrow: pa.DataType, values: list[Any]) -> pa.Array:
    return pa.array([None if v is None else float(Decimal(v)) for v in values], arrow)


def _decimal(typ: str, precision: int, scale: int, value: Any) -> str | None:
    number = _number(value)
    if number is None:
        return f"{_shown(value)} is not a number"
    if number and number.adjusted() >= precision - scale:
        return f"{_shown(value)} is too large for {typ}"
    if number != number.quantize(Decimal(1).scaleb(-scale), context=EXACT):
        return f"{_shown(value)} has more than {scale} decimal places"
    return None


def _decimals(arrow: pa.DataType, scale: int, values: list[Any]) -> pa.Array:
    unit = Decimal(1).scaleb(-scale)  # (0e400 or 1.50...0 hold more digits than they need)
    return pa.array([None if v is None else Decimal(v).quantize(unit, context=EXACT)
                     for v in values], arrow)


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else f"{_shown(value)} is not a string"


def _date(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _date_problem(value: Any) -> str | None:
    return None if _date(value) is not None else f"{_shown(value)} is not an ISO 8601 date"


def _time_problem(value: Any) -> str | None:
    return None if timestamp(value) is not None else f"{_shown(value)} is not an ISO 8601 time"


def _shown(value: Any) -> str:
    """A value in a reason: as written, cut to 60 characters (a reason must stay short, and
    ``repr`` of a 4,000-digit integer costs more than its check)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -10**60 < value < 10**60:
        return "a number of more than 60 digits"
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fingerprint_sql(columns: list[tuple[str, bool]]) -> str:
    """SQL for an event's stored body fingerprint, over its typed values: the non-null fields
    by name (so a column added later does not change the fingerprint of events without it),
    each as text. ``columns``: (name, whether it is a DECIMAL with a scale); those are
    written without trailing zeros, so that a value's fingerprint does not depend on its
    column's type (``5`` in a BIGINT and ``5.000000000`` once the column is widened to
    DECIMAL(38,9) are both ``5``): an identical retry stays a duplicate.

    >>> print(fingerprint_sql([("n", True)]).replace(" THEN", "\\n  THEN"))
    md5(concat_ws(chr(31), CASE WHEN "n" IS NOT NULL
      THEN 'n=' || rtrim(rtrim(CAST("n" AS VARCHAR), '0'), '.') END))
    """
    parts = []
    for name, fraction in sorted(columns):
        text = f"CAST({quote_ident(name)} AS VARCHAR)"
        if fraction:  # (always holds a '.': only zeros of the fraction are cut)
            text = f"rtrim(rtrim({text}, '0'), '.')"
        parts.append(f"CASE WHEN {quote_ident(name)} IS NOT NULL THEN "
                     f"{quote_literal(name + '=')} || {text} END")
    return f"md5(concat_ws(chr(31), {', '.join(parts)}))"


# -- limits ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """The workspace's limits on an event's shape (settings ``events_max_*``)."""

    fields: int = 200  # fields holding a value, per event
    columns: int = 500  # columns per stream (the required ones included)
    depth: int = 32  # JSON nesting: the event itself is level 1
    digits: int = 100  # digits of a number (and the reach of its exponent)

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Limits:
        return cls(settings["events_max_fields"], settings["events_max_columns"],
                   settings["events_max_depth"], settings["events_max_number_digits"])

    def fields_problem(self, event: Mapping[str, Any]) -> str | None:
        """Why ``event`` has too many fields (only then counted: most have a few)."""
        if len(event) <= self.fields:
            return None
        count = sum(v is not None for v in event.values())
        return None if count <= self.fields else self.too_many_fields(count)

    def too_many_fields(self, count: int) -> str:
        """The reason for an event with ``count`` fields holding a value, over the limit."""
        return (f"the event has {count} fields; at most {self.fields} are taken "
                f"(setting events_max_fields)")

    def value_problem(self, value: Any) -> str | None:
        """Why a field's value is over a limit: nested deeper than ``depth`` (the event is
        level 1, so a field's value may nest ``depth - 1`` levels), or a number with more
        than ``digits`` digits, anywhere in it."""
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return None
        if isinstance(value, int):
            return None if -self._bound < value < self._bound else self._digits_reason()
        if isinstance(value, Decimal):
            return self._decimal_problem(value)
        if isinstance(value, (dict, list)):
            return self._nested_problem(value, 2)
        return None

    @functools.cached_property
    def _bound(self) -> int:
        return 10 ** self.digits

    def _decimal_problem(self, value: Decimal) -> str | None:
        _, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):  # (not finite: its exponent is 'F', 'n' or 'N')
            return None
        if len(digits) > self.digits or (value and (abs(value.adjusted()) > self.digits or
                                                    -exponent > self.digits)):
            return self._digits_reason()
        return None

    def _digits_reason(self) -> str:
        return (f"a number has more than {self.digits} digits, or an exponent past "
                f"{self.digits} (setting events_max_number_digits)")

    def _nested_problem(self, value: Any, level: int) -> str | None:
        if level > self.depth:
            return (f"the event nests deeper than {self.depth} levels (setting "
                    "events_max_depth)")
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            if isinstance(item, (dict, list)):
                problem = self._nested_problem(item, level + 1)
            else:
                problem = self.value_problem(item)
            if problem is not None:
                return problem
        return None

