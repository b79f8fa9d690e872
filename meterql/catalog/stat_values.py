"""Values in column statistics: read from a source's text (PostgreSQL's ``anyarray`` output),
stored as text, and read back as the Python values of the column's type.

Only columns whose values order as numbers or instants keep values (bounds, histograms, common
values): text orders by the source's collation, which the cost model cannot reproduce.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

#: DuckDB type families whose statistics keep values, and how a value is read from text.
_READERS: dict[str, Callable[[str], Any]] = {
    **{f: int for f in ("TINYINT", "SMALLINT", "INT", "BIGINT", "HUGEINT", "UTINYINT",
                        "USMALLINT", "UINT", "UBIGINT")},
    "DECIMAL": Decimal,
    "FLOAT": float,
    "DOUBLE": float,
    "DATE": date.fromisoformat,
    "TIMESTAMP": lambda text: datetime.fromisoformat(text).replace(tzinfo=None),
    "TIMESTAMPTZ": lambda text: _aware(datetime.fromisoformat(text)),
}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def orders_values(family: str) -> bool:
    """Whether statistics keep values for columns of this DuckDB type family.

    >>> orders_values("TIMESTAMPTZ"), orders_values("VARCHAR")
    (True, False)
    """
    return family in _READERS


def read_value(text: str, family: str) -> Any:
    """A value of a column of type family ``family`` from its text; ``None`` when it does not
    read (infinity, a BC date, a value the source writes its own way).

    >>> read_value("2026-03-01 00:00:00+00", "TIMESTAMPTZ")
    datetime.datetime(2026, 3, 1, 0, 0, tzinfo=datetime.timezone.utc)
    >>> read_value("infinity", "DATE") is None, read_value("1.50", "DECIMAL")
    (True, Decimal('1.50'))
    """
    reader = _READERS.get(family)
    if reader is None:
        return None
    try:
        return reader(text.strip())
    except (ValueError, InvalidOperation, OverflowError):
        return None


def value_text(value: Any) -> str:
    """How a value is stored: ISO 8601 for dates and instants, ``str`` otherwise.

    >>> value_text(datetime(2026, 3, 1, tzinfo=UTC)), value_text(Decimal("1.5"))
    ('2026-03-01T00:00:00+00:00', '1.5')
    """
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def pg_array(text: str | None) -> list[str | None]:
    """The elements of a one-dimensional PostgreSQL array in its text form (``NULL`` elements as
    ``None``).

    >>> pg_array('{1,2.5,NULL,"2026-03-01 00:00:00+00","a \\\\"b\\\\""}')
    ['1', '2.5', None, '2026-03-01 00:00:00+00', 'a "b"']
    >>> pg_array(None), pg_array("{}")
    ([], [])
    """
    if not text or len(text) < 2 or text[0] != "{" or text[-1] != "}":
        return []
    body, i = text[1:-1], 0
    out: list[str | None] = []
    while i < len(body):
        if body[i] == '"':
            i += 1
            chars = []
            while i < len(body) and body[i] != '"':
                if body[i] == "\\" and i + 1 < len(body):
                    i += 1
                chars.append(body[i])
                i += 1
            out.append("".join(chars))
            i += 2  # the closing quote and the comma
        else:
            end = body.find(",", i)
            end = len(body) if end < 0 else end
            item = body[i:end]
            out.append(None if item == "NULL" else item)
            i = end + 1
    return out
