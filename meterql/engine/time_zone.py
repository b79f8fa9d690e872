"""A session's time zone: checked by name, set with ``SET TimeZone``, and applied to results.

Every DuckDB that runs a user's SQL computes in UTC (connectors/lockdown.py). A session's zone
changes how a result's TIMESTAMPTZ values are shown (the same instants, written in the zone),
and a query that reads no table runs whole in a locked-down DuckDB of that zone, so ``now()``,
``current_date`` and every calendar function evaluate there.
"""

from __future__ import annotations

import difflib
import functools
import re
import zoneinfo

import pyarrow as pa

from meterql.errors import ParameterError, StatementNotAllowedError

#: The zone of a session that sets none.
DEFAULT_TIME_ZONE = "UTC"

#: ``SET TimeZone = 'x'``, ``SET timezone TO 'x'``, ``SET TIME ZONE 'x'`` (also SESSION/LOCAL).
_SET_ZONE = re.compile(
    r"""^\s*SET\s+(?:SESSION\s+|LOCAL\s+)?(?:"?timezone"?\s*(?:=|\bTO\b)|TIME\s+ZONE)\s*
        (?:'(?P<quoted>(?:[^']|'')*)'|(?P<bare>[A-Za-z_][\w/+-]*))\s*;?\s*$""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL)
_SET = re.compile(r"^\s*SET\b", re.IGNORECASE)


@functools.cache
def _zones() -> dict[str, str]:
    """Every known zone name, by its lower-case spelling."""
    return {name.lower(): name for name in zoneinfo.available_timezones()} | {"utc": "UTC"}


def check_time_zone(name: str) -> str:
    """The zone's canonical name (IANA, e.g. ``Europe/Berlin``), or a ParameterError with the
    closest names. The one check the CLI's ``--tz``, the REPL's ``\\timezone``, ``SET TimeZone``
    and the HTTP API's ``time_zone`` share.

    >>> check_time_zone("europe/berlin")
    'Europe/Berlin'
    >>> check_time_zone("Europe/Berln")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    meterql.errors.ParameterError: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'...
    """
    zones = _zones()
    found = zones.get(str(name).strip().lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(str(name).lower(), list(zones), n=3, cutoff=0.6)
    raise ParameterError(
        f"unknown time zone '{name}'",
        hint=("did you mean " + " or ".join(f"'{zones[c]}'" for c in close) + "?") if close
        else "give an IANA zone name, e.g. 'UTC', 'Europe/Berlin' or 'America/New_York'")


def set_time_zone(sql: str) -> str | None:
    """The zone a ``SET TimeZone`` statement sets (checked), ``None`` for any other statement;
    any other SET is refused: it would change a setting nobody reads, or a source's.

    >>> set_time_zone("SET TIME ZONE 'Europe/Berlin'")
    'Europe/Berlin'
    >>> set_time_zone("set timezone to utc;")
    'UTC'
    >>> set_time_zone("SELECT 1") is None
    True
    """
    match = _SET_ZONE.match(sql)
    if match is None:
        if _SET.match(sql):
            raise StatementNotAllowedError(
                "only SET TimeZone is accepted, not this SET", sql=sql,
                hint="meterql never changes a source's settings; set the session's zone with "
                     "SET TimeZone = 'Europe/Berlin'")
        return None
    quoted = match.group("quoted")
    return check_time_zone(quoted.replace("''", "'") if quoted is not None
                           else match.group("bare"))


def in_time_zone(table: pa.Table, zone: str) -> pa.Table:
    """``table`` with its TIMESTAMPTZ columns written in ``zone`` (the instants are the same;
    only the zone they are shown in changes)."""
    fields = []
    changed = False
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is not None and f.type.tz != zone:
            f = f.with_type(pa.timestamp(f.type.unit, tz=zone))
            changed = True
        fields.append(f)
    if not changed:
        return table
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))
