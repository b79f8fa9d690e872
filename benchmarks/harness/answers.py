"""Row normalisation for answer checks; plain Python (also imported by the extension worker,
``ext_worker``, which runs in another venv). Numbers become exact decimal strings, so
Decimal('1.500000'), Decimal('1.5') and PostgreSQL's numeric-as-text '1.500000' all compare
equal, and a float never passes for a decimal silently (floats are rounded to 6 places and
tagged)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

_NUM = re.compile(r"^-?\d+(\.\d+)?$")


def _num(d: Decimal) -> str:
    s = format(d.normalize(), "f")
    return "0" if s in ("-0", "0") else s


def value(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return _num(v)
    if isinstance(v, float):
        return "f:" + format(round(v, 6), "f")
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.UTC)
        return v.astimezone(dt.UTC).isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str) and _NUM.match(v):
        return _num(Decimal(v))  # PostgreSQL numeric read over ADBC arrives as text
    return str(v)


def rows(rs) -> list[list[str]]:
    """Sorted, normalised rows (any iterable of sequences)."""
    return sorted([value(x) for x in r] for r in rs)
