"""The one JSON decoder for bodies that carry amounts: numbers stay exact.

Python's ``json`` reads ``3.5`` as a float, and FastAPI reads request bodies with it, so a
billing amount would be rounded before any check saw it (``12345678901234567.89`` becomes
``12345678901234568.0``). Here a number with a fraction or an exponent is a :class:`Decimal`,
an integer an ``int``, and ``NaN``/``Infinity`` (not JSON) are refused. Event pushes, event
corrections and manual rows all read their bodies with :func:`loads`.
"""

from __future__ import annotations

import json
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
    """JSON with :class:`Decimal` numbers written exactly (the inverse of :func:`loads`).

    >>> dumps({"gb": Decimal("3.50"), "n": 2, "tags": ["a", None]})
    '{"gb": 3.50, "n": 2, "tags": ["a", null]}'
    >>> loads(dumps({"x": Decimal("12345678901234567.89")}))
    {'x': Decimal('12345678901234567.89')}
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise NotJsonError(f"{value} is not a JSON number")
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)
