"""The text of one value, the rule every output follows: JSON values for the API's JSON bodies,
and the text a CSV field, a table cell or a vertical row shows.

Decimals are exact, in positional notation with their own scale; times ISO 8601; intervals as
SQL writes them (``1 day 02:00:00``); bytes hex; NaN and the infinities strings (JSON has no
number for them); lists and structs JSON.
:mod:`meterql.encoders.columns` writes whole Arrow columns by the same rule, fast.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from pyarrow import MonthDayNano


def json_value(value: Any) -> Any:
    """A JSON-safe value: decimals as strings (exact), times in ISO 8601, intervals as
    :func:`interval_text` writes them, bytes in hex, NaN and infinities as strings; lists and
    dicts converted throughout.

    Example:
        >>> json_value([Decimal("1E-7"), datetime(2026, 10, 5, 10, 0), b"\\x00\\xff", math.inf])
        ['0.0000001', '2026-10-05T10:00:00', '00ff', 'inf']
        >>> json_value([MonthDayNano([0, 1, 7_200_000_000_000]), timedelta(minutes=90)])
        ['1 day 02:00:00', '01:30:00']
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, MonthDayNano):  # (before tuple: it is a named tuple)
        return interval_text(value.months, value.days, value.nanoseconds)
    if isinstance(value, timedelta):
        return interval_text(0, 0, (value // timedelta(microseconds=1)) * 1000)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)  # UUID and other scalar objects


def decimal_text(value: Decimal) -> str:
    """A decimal in plain positional notation with its own scale, never with an exponent.

    Example:
        >>> decimal_text(Decimal("0E-12")), decimal_text(Decimal("1.23456E-7"))
        ('0.000000000000', '0.000000123456')
        >>> decimal_text(Decimal("12.50")), decimal_text(Decimal("1E+3"))
        ('12.50', '1000')
    """
    return format(value, "f")


def interval_text(months: int, days: int, nanoseconds: int) -> str:
    """An interval as DuckDB writes it: years and months, days, then the time of day as
    ``HH:MM:SS`` with a fraction only when there is one (hours are not folded into days, nor
    days into months: an interval keeps its parts); ``00:00:00`` for none.

    Example:
        >>> interval_text(0, 1, 7_200_000_000_000), interval_text(14, 3, 0)
        ('1 day 02:00:00', '1 year 2 months 3 days')
        >>> interval_text(0, -1, -7_200_000_000_000), interval_text(0, 0, 129_600_000_000_000)
        ('-1 day -02:00:00', '36:00:00')
        >>> interval_text(0, 0, 0), interval_text(0, 0, 1_500), interval_text(-1, 0, 0)
        ('00:00:00', '00:00:00.0000015', '-1 month')
    """
    parts = []
    years, rest = abs(months) // 12, abs(months) % 12
    sign = -1 if months < 0 else 1
    for count, unit in ((sign * years, "year"), (sign * rest, "month"), (days, "day")):
        if count:
            parts.append(f"{count} {unit}{'' if abs(count) == 1 else 's'}")
    if nanoseconds or not parts:
        seconds, fraction = divmod(abs(nanoseconds), 10**9)
        minutes, secs = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        clock = f"{'-' if nanoseconds < 0 else ''}{hours:02d}:{minutes:02d}:{secs:02d}"
        if fraction:
            clock += "." + f"{fraction:09d}".rstrip("0")
        parts.append(clock)
    return " ".join(parts)


def json_text(value: Any) -> str:
    """The JSON text of a value (:func:`json_value`), UTF-8 as it is, never ``\\u`` escapes
    of letters.

    Example:
        >>> json_text({"customer": "Zoë", "qty": Decimal("1.50"), "tags": ["a", None]})
        '{"customer": "Zoë", "qty": "1.50", "tags": ["a", null]}'
    """
    return json.dumps(json_value(value), ensure_ascii=False)


def value_text(value: Any) -> str | None:
    """The text of a value in a CSV field or a table cell: a string as it is, a number,
    decimal, time or byte string as its JSON value shows it, ``true``/``false``, a list or a
    struct as JSON text; None for NULL (an empty CSV field).

    Example:
        >>> [value_text(v) for v in ("a,b", 1.0, 1e-05, math.nan, Decimal("0E-6"), True)]
        ['a,b', '1.0', '1e-05', 'nan', '0.000000', 'true']
        >>> [value_text(v) for v in (date(2026, 10, 5), b"", [1, None], {"a": "x"}, None)]
        ['2026-10-05', '', '[1, null]', '{"a": "x"}', None]
    """
    if value is None or isinstance(value, str):
        return value
    plain = json_value(value)
    return plain if isinstance(plain, str) else json.dumps(plain, ensure_ascii=False)
