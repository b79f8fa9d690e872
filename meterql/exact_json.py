"""The one JSON decoder for bodies that carry amounts: numbers stay exact.

Python's ``json`` reads ``3.5`` as a float, and FastAPI reads request bodies with it, so a
billing amount would be rounded before any check saw it (``12345678901234567.89`` becomes
``12345678901234568.0``). Here a number with a fraction or an exponent is a :class:`Decimal`,
an integer an ``int``, and ``NaN``/``Infinity`` (not JSON) are refused. Event pushes, event
corrections and manual rows all read their bodies with :func:`loads`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any


class NotJsonError(ValueError):
    """The text holds something JSON does not have (``NaN``, ``Infinity``)."""


def loads(text: str | bytes) -> Any:
    """JSON with exact numbers.

    >>> loads('{"gb": 3.5, "n": 2, "tiny": 1e-7}')
    {'gb': Decimal('3.5'), 'n': 2, 'tiny': Decimal('1E-7')}
    >>> loads('[NaN]')
    Traceback (most recent call last):
    ...
    meterql.exact_json.NotJsonError: NaN is not a JSON number
    """
    return json.loads(text, parse_float=Decimal, parse_constant=_constant)


def _constant(name: str) -> Any:
    raise NotJsonError(f"{name} is not a JSON number")


def dumps(value: Any) -> str:
    """Compact JSON with :class:`Decimal` numbers written exactly (the inverse of
    :func:`loads`); a value JSON cannot hold (NaN, a set, ...) raises ``ValueError`` or
    ``TypeError``.

    >>> dumps({"gb": Decimal("3.50"), "n": 2, "tags": ["a", None]})
    '{"gb":3.50,"n":2,"tags":["a",null]}'
    >>> loads(dumps({"x": Decimal("12345678901234567.89")}))
    {'x': Decimal('12345678901234567.89')}
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise NotJsonError(f"{value} is not a JSON number")
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, allow_nan=False)


#: A query parameter's JSON form when JSON has no type for it: ``{"type": T, "value": text}``.
PARAM_TYPES = ("decimal", "date", "time", "timestamp", "timestamptz")


def param_json(value: Any) -> Any:
    """A query parameter as JSON carries it without losing its type (JSON has no decimal,
    date or time): plain JSON values stay as they are.

    >>> param_json(Decimal("2.675")), param_json(7)
    ({'type': 'decimal', 'value': '2.675'}, 7)
    >>> param_json(datetime.fromisoformat("2024-03-10T07:00:00+00:00"))
    {'type': 'timestamptz', 'value': '2024-03-10T07:00:00+00:00'}
    """
    if isinstance(value, Decimal):
        return {"type": "decimal", "value": str(value)}
    if isinstance(value, datetime):
        return {"type": "timestamptz" if value.tzinfo else "timestamp",
                "value": value.isoformat()}
    if isinstance(value, date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, time):
        return {"type": "time", "value": value.isoformat()}
    return value


def param_value(value: Any) -> Any:
    """The inverse of :func:`param_json`; an object that is not a typed parameter is left as
    it is (the engine refuses it with its own message).

    >>> param_value({"type": "date", "value": "2024-02-29"})
    datetime.date(2024, 2, 29)
    >>> param_value({"type": "decimal", "value": "1e400"})
    Decimal('1E+400')
    >>> param_value({"type": "date", "value": "2024-02-30"})
    Traceback (most recent call last):
    ...
    ValueError: a date parameter must be ISO 8601 text, not '2024-02-30'
    """
    if not (isinstance(value, dict) and set(value) == {"type", "value"}
            and value["type"] in PARAM_TYPES and isinstance(value["value"], str)):
        return value
    kind, text = value["type"], value["value"]
    try:
        if kind == "decimal":
            number = Decimal(text)
            if not number.is_finite():
                raise ValueError
            return number
        parse = {"date": date.fromisoformat, "time": time.fromisoformat,
                 "timestamp": datetime.fromisoformat, "timestamptz": datetime.fromisoformat}[kind]
        parsed = parse(text)
    except (ValueError, ArithmeticError):
        raise ValueError(f"a {kind} parameter must be "
                         f"{'a finite number' if kind == 'decimal' else 'ISO 8601 text'}, "
                         f"not '{text[:80]}'") from None
    if isinstance(parsed, datetime) and (parsed.tzinfo is None) != (kind == "timestamp"):
        raise ValueError(f"a {kind} parameter {'has no' if kind == 'timestamp' else 'needs a'}"
                         f" time zone offset: '{text[:80]}'")
    return parsed
