"""How meterql writes for people, one way everywhere: durations (``30s``, ``15m``, ``1h30m``: one
parser for what a person types, ``--every`` and ``--sync-every``, and one formatter for what
meterql prints) and counts (``1 row``, ``2 rows``).

Example:
    >>> parse_duration("1h30m"), parse_duration("15m"), parse_duration("90")
    (5400.0, 900.0, 90.0)
    >>> format_duration(5400), format_duration(900), format_duration(0.0432)
    ('1h30m', '15m', '0.04s')
"""

from __future__ import annotations

import re

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")


def parse_duration(text: str) -> float:
    """Seconds in a duration: units ``d``, ``h``, ``m``, ``s`` in that order (``1h30m``,
    ``15m``, ``2.5s``) or a bare number of seconds.

    Raises:
        ValueError: not a duration (the message shows the accepted forms).
    """
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    if _WHOLE.fullmatch(value):
        parts = _PART.findall(value)
        units = [unit for _, unit in parts]
        order = list(_UNITS)
        if len(set(units)) == len(units) and units == sorted(units, key=order.index):
            return float(sum(float(number) * _UNITS[unit] for number, unit in parts))
    raise ValueError(f"'{text}' is not a duration like 30s, 15m, 1h30m or a number of seconds")


def format_duration(seconds: float) -> str:
    """A duration as meterql prints it: whole units from days down to seconds (``1h30m``,
    ``15m``, ``2s``), and hundredths under a minute when there are any (``0.04s``, ``12.50s``).

    Example:
        >>> [format_duration(s) for s in (0, 2, 59.999, 61, 3600, 90061)]
        ['0s', '2s', '1m', '1m1s', '1h', '1d1h1m1s']
    """
    if seconds < 59.995 and seconds != int(seconds):
        return f"{seconds:.2f}s"
    rest = int(round(seconds))
    parts = []
    for unit, size in _UNITS.items():
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def count(n: int, noun: str) -> str:
    """A count and its noun, singular for one (``1 row``, ``0 new rows``, ``1,024 rows``).

    Example:
        >>> count(1, "row"), count(0, "new row"), count(1024, "insert")
        ('1 row', '0 new rows', '1,024 inserts')
    """
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def approx_count(n: float) -> str:
    """A count rounded for a person reading an estimate (``56.6M``, ``11.2k``, ``950``).

    Example:
        >>> [approx_count(n) for n in (56_581_912, 11_240, 4_700_000, 950, 0.4)]
        ['56.6M', '11.2k', '4.7M', '950', '0']
    """
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            scaled = n / size
            return f"{scaled:.1f}".removesuffix(".0") + unit if scaled < 100 else \
                f"{scaled:.0f}{unit}"
    return f"{n:.0f}"


def approx_duration(ms: float) -> str:
    """An estimated duration in milliseconds, rounded for a person (``30 ms``, ``7.6 s``).

    Example:
        >>> [approx_duration(ms) for ms in (0.42, 12.6, 1234, 7654.8, 125_000)]
        ['0.4 ms', '13 ms', '1.2 s', '7.7 s', '2m5s']
    """
    if ms < 1:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return format_duration(ms / 1000)
