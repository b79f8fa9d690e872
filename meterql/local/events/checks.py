"""The checks an event passes before it is answered (pure, no I/O).

Events are checked two ways, and every rule is written once for each, side by side below:

- the **row** way: one parsed event (a dict), in Python; it gives every event its reason;
- the **column** way: a batch that Arrow's JSON reader read as the stream's columns
  (:func:`meterql.local.events.fields.read_ndjson`), with no Python per event.

A row rule returns the reason an event breaks it (or None); its column twin returns the rows
that break it, with the same reason. Rows are answered by the first rule they break, in the
order of :data:`COLUMN_RULES` (that of :func:`row_problem`). Both ways must accept and reject the
same events with the same reasons: ``tests/test_event_checks.py`` feeds a table of edge values to
both. Where the column way cannot decide (a value Arrow's reader does not take, a timestamp
without a zone, a number that may pass the digits limit unseen: :func:`read_columns`, ids
repeated within the batch), it declines and the row way answers.

Each field's value against its column (:func:`check_fields`) is a row rule only: as columns,
Arrow's reader with the stream's schema refuses a batch holding any value its column would not
take.

Example:
    >>> from datetime import UTC, datetime
    >>> window = AcceptWindow(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    >>> config = StreamConfig("calls", columns={"id": "VARCHAR", "customer_id": "VARCHAR",
    ...                                          "timestamp": "TIMESTAMP WITH TIME ZONE"})
    >>> row_problem(config, {"id": "a", "timestamp": "2026-01-05"}, "a", window, Limits())
    ("missing required field 'customer_id' (the customer)", None)
    >>> print(window.reason(datetime(2026, 3, 1, tzinfo=UTC)))  # doctest: +ELLIPSIS
    timestamp 2026-03-01T00:00:00+00:00 is outside the accepted window [2026-01-01T00:00:...)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from meterql.local.event_values import DECIMAL, Limits, fits, infer, timestamp
from meterql.local.events.fields import read_ndjson, shown_names
from meterql.local.events.schemas import StreamConfig


@dataclass(frozen=True)
class AcceptWindow:
    """The times events are taken for: ``[low, high)``; ``what`` names it in reasons."""

    low: datetime
    high: datetime
    what: str = "the accepted window"

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> AcceptWindow:
        """The window of plain pushes: ``events_max_age_days`` back, ``events_max_future_s``
        ahead."""
        now = datetime.now(UTC)
        return cls(now - timedelta(days=settings["events_max_age_days"]),
                   now + timedelta(seconds=settings["events_max_future_s"]))

    @classmethod
    def of_backfill(cls, backfill: str, start: datetime, end: datetime) -> AcceptWindow:
        return cls(start, end, f"backfill {backfill}'s range")

    def reason(self, when: datetime) -> str | None:
        """Why ``when`` is not taken, or None."""
        if self.low <= when < self.high:
            return None
        return self.refusal(when)

    def refusal(self, when: datetime) -> str:
        """Why ``when``, a time outside the window, is not taken."""
        return (f"timestamp {when.isoformat()} is outside {self.what} "
                f"[{self.low.isoformat()}, {self.high.isoformat()})")


#: Any time DuckDB stores: for events checked before (an amend, a logged record read again).
ANY_TIME = AcceptWindow(datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))


# -- the reasons, written once ----------------------------------------------------------------
def _missing_id(config: StreamConfig) -> str:
    return f"missing required field '{config.id_field}' (the event's id)"


def _missing_customer(config: StreamConfig) -> str:
    return f"missing required field '{config.customer_field}' (the customer)"


def _missing_timestamp(config: StreamConfig) -> str:
    return f"missing required field '{config.timestamp_field}'"


# -- the row way ------------------------------------------------------------------------------
def event_id_of(config: StreamConfig, event: Mapping[str, Any]) -> str | None:
    """The event's id as text, or None when it has none (an object, a list or a boolean is
    none either)."""
    raw = event.get(config.id_field)
    return None if raw is None or isinstance(raw, (dict, list, bool)) else str(raw)


def row_problem(config: StreamConfig, event: Mapping[str, Any], event_id: str | None,
                window: AcceptWindow, limits: Limits) -> tuple[str | None, datetime | None]:
    """The first rule ``event`` breaks (or None), and its time once read (UTC; None if it
    has none): fields over the limit, the id, the customer, the timestamp and its window."""
    problem = limits.fields_problem(event)
    if problem is not None:
        return problem, None
    if not event_id:
        return _missing_id(config), None
    if event.get(config.customer_field) in (None, ""):
        return _missing_customer(config), None
    stamp = event.get(config.timestamp_field)
    if stamp is None:
        return _missing_timestamp(config), None
    when = timestamp(stamp)
    if when is None:
        return f"field '{config.timestamp_field}' is not an ISO 8601 time: {stamp!r}", None
    return window.reason(when), when


def check_fields(config: StreamConfig, event: Mapping[str, Any], limits: Limits
                 ) -> tuple[str | None, dict[str, str], list[str]]:
    """Each field of ``event`` against its column: why one does not fit (or None), the
    columns the event needs added (name -> type) and the BIGINT columns it needs widened to
    DECIMAL (inferred streams only). Every field is checked before any column changes, so an
    event that is refused changes none."""
    new: dict[str, str] = {}
    widen: list[str] = []
    for name, value in event.items():
        if value is None or name in (config.id_field, config.timestamp_field):
            continue
        if name.startswith("_") or not name:
            return f"field '{name}': names starting with _ are kept for meterql", {}, []
        current = config.columns.get(name)
        if current is None and config.declared:
            return (f"unknown field '{name}' (the stream's schema is declared: "
                    f"{', '.join(config.columns)})", {}, [])
        problem = limits.value_problem(value)
        if problem is None:
            wanted = current or infer(value)
            problem = fits(value, wanted)  # (new: e.g. a number too large for any column)
            if problem is None and current is None:
                new[name] = wanted
            elif problem is not None and current == "BIGINT" and not config.declared \
                    and infer(value) == DECIMAL and fits(value, DECIMAL) is None:
                widen.append(name)
                problem = None
        if problem is not None:
            return f"field '{name}': {problem}", {}, []
    if new and len(config.columns) + len(new) > limits.columns:
        return (f"the event's new fields ({shown_names(new)}) would give the stream "
                f"{len(config.columns) + len(new)} columns; it may have {limits.columns} "
                "(setting events_max_columns)", {}, [])
    return None, new, widen


def storable_ids(config: StreamConfig, events: list[Any], window: AcceptWindow,
                 limits: Limits) -> list[str] | None:
    """The ids of ``events`` (parsed JSON) if every one passes every check and fits the
    stream's columns as they are (no column added or widened), with distinct ids; else None
    (the row way then answers each event)."""
    ids: list[str] = []
    seen = set()
    for event in events:
        if not isinstance(event, dict):
            return None
        event_id = event_id_of(config, event)
        if event_id is None or event_id in seen \
                or row_problem(config, event, event_id, window, limits)[0] is not None:
            return None
        problem, new, widen = check_fields(config, event, limits)
        if problem is not None or new or widen:
            return None
        seen.add(event_id)
        ids.append(event_id)
    return ids or None


# -- the column way ---------------------------------------------------------------------------
Rows = Iterable[tuple[int, str]]


def _rows(mask: pa.ChunkedArray | pa.Array) -> list[int]:
    return pc.indices_nonzero(mask).to_pylist() if pc.any(mask).as_py() else []


def _fields_columns(config: StreamConfig, table: pa.Table, window: AcceptWindow,
                    limits: Limits) -> Rows:
    if table.num_columns <= limits.fields:
        return []
    counts = pc.add(*(pc.cast(pc.is_valid(c), pa.int32()) for c in table.columns[:2]))
    for column in table.columns[2:]:
        counts = pc.add(counts, pc.cast(pc.is_valid(column), pa.int32()))
    return [(row, limits.too_many_fields(counts[row].as_py()))
            for row in _rows(pc.greater(counts, limits.fields))]


def _id_columns(config: StreamConfig, table: pa.Table, window: AcceptWindow,
                limits: Limits) -> Rows:
    return _empty_rows(table.column(config.id_field), _missing_id(config))


def _customer_columns(config: StreamConfig, table: pa.Table, window: AcceptWindow,
                      limits: Limits) -> Rows:
    return _empty_rows(table.column(config.customer_field), _missing_customer(config))


def _timestamp_columns(config: StreamConfig, table: pa.Table, window: AcceptWindow,
                       limits: Limits) -> Rows:
    stamps = table.column(config.timestamp_field)
    out: list[tuple[int, str]] = []
    if stamps.null_count:
        out += [(row, _missing_timestamp(config)) for row in _rows(pc.is_null(stamps))]
    extremes = pc.min_max(stamps)
    first, last = extremes["min"].as_py(), extremes["max"].as_py()
    if first is not None and (first < window.low or last >= window.high):
        low, high = pa.scalar(window.low, stamps.type), pa.scalar(window.high, stamps.type)
        outside = pc.fill_null(pc.or_(pc.less(stamps, low), pc.greater_equal(stamps, high)),
                               False)
        out += [(row, window.refusal(stamps[row].as_py())) for row in _rows(outside)]
    return out


def _empty_rows(column: pa.ChunkedArray, reason: str) -> Rows:
    """The rows of a text column that are null or empty. (Looked for row by row only when
    the column's null count or shortest value says there are some: a comparison over every
    row costs ten times more.)"""
    lengths = pc.binary_length(column)
    if not column.null_count and pc.min(lengths).as_py() != 0:
        return []
    return [(row, reason) for row in _rows(pc.fill_null(pc.equal(lengths, 0), True))]


#: The column twins of :func:`row_problem`'s rules, in its order.
COLUMN_RULES: tuple[Callable[[StreamConfig, pa.Table, AcceptWindow, Limits], Rows], ...] = (
    _fields_columns, _id_columns, _customer_columns, _timestamp_columns)


def column_problems(config: StreamConfig, table: pa.Table, window: AcceptWindow,
                    limits: Limits) -> dict[int, str]:
    """Row -> the first rule it breaks, for the rows of ``table`` (read by
    :func:`~meterql.local.events.fields.read_ndjson`) that break one."""
    problems: dict[int, str] = {}
    for rule in COLUMN_RULES:
        for row, reason in rule(config, table, window, limits):
            problems.setdefault(row, reason)
    return dict(sorted(problems.items()))


def read_columns(config: StreamConfig, data: bytes, limits: Limits) -> pa.Table | None:
    """An NDJSON batch read by Arrow as the stream's columns
    (:func:`~meterql.local.events.fields.read_ndjson`), or None where the column way cannot
    tell whether a number passes ``limits.digits``: the reader keeps a number's value, not how
    it was written (``1e308`` or a hundred zeros). The values it reads into integer and
    DECIMAL columns are written with at most 38 digits, at most 37 + 38 places after the
    point once their exponent counts; any number read into a DOUBLE column may be longer. So
    the bytes are searched (a millisecond per megabyte, which the common stream is spared)
    for a stream with a DOUBLE column, or whose limit is below those 75 places."""
    doubles = "DOUBLE" in config.columns.values()
    if (doubles or limits.digits < _READ_PLACES) and _EXPONENT.search(data):
        return None
    if doubles and re.search(rb"[0-9.]{%d}" % (limits.digits + 1), data):
        return None  # (a written-out number of more digits or places than the limit)
    return read_ndjson(config, data)


_READ_PLACES = 75
_EXPONENT = re.compile(rb"[0-9][eE]")


def checked_columns(config: StreamConfig, data: bytes, window: AcceptWindow,
                    limits: Limits) -> pa.Table | None:
    """An NDJSON batch as the stream's columns, if every event is read by Arrow, breaks no
    rule and has its own id; else None (the row way then answers each event)."""
    table = read_columns(config, data, limits)
    if table is None or column_problems(config, table, window, limits):
        return None
    ids = table.column(config.id_field)
    if pc.count_distinct(ids).as_py() != table.num_rows:
        return None  # (the row way tells a repeated event from a conflicting one)
    return table
