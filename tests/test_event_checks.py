"""The two ways an event is checked agree: the row way (one parsed event, in Python) and the
column way (a batch read by Arrow's JSON reader) accept and reject the same events with the same
reasons (meterql/local/events/checks.py). No DuckDB here: the checks are pure.

Each row of ``CASES`` is one NDJSON line, the reason the row way gives it (None: accepted;
``CHANGES``: accepted once a column is added or widened, which only the row way does) and
whether Arrow's reader takes it. When it does, the column way must give the same reason, and
an accepted event must be read as the same id, customer and time. When it does not, the column
way declines the whole batch and the row way answers each event: that is safe, and the table
says where it happens.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from meterql.local.event_values import Limits
from meterql.local.events.body import Malformed, parse_body
from meterql.local.events.checks import (
    AcceptWindow,
    check_fields,
    checked_columns,
    column_problems,
    event_id_of,
    read_columns,
    row_problem,
    storable_ids,
)
from meterql.local.events.fields import read_ndjson
from meterql.local.events.schemas import StreamConfig

NDJSON = "application/x-ndjson"
WINDOW = AcceptWindow(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
LIMITS = Limits(fields=6)
COLUMNS = {"id": "VARCHAR", "timestamp": "TIMESTAMP WITH TIME ZONE", "customer_id": "VARCHAR",
           "qty": "DECIMAL(38,9)", "n": "BIGINT", "ok": "BOOLEAN", "note": "VARCHAR",
           "small": "DECIMAL(6,2)", "tiny": "TINYINT"}
INFERRED = StreamConfig("calls", columns=COLUMNS)
DECLARED = StreamConfig("calls", declared=True, columns=COLUMNS)
DOUBLES = StreamConfig("calls", declared=True, columns={**COLUMNS, "ratio": "DOUBLE"})
T = "2026-01-15T10:00:00Z"
CHANGES = "changes the stream's columns"
MISSING_ID = "missing required field 'id' (the event's id)"
MISSING_CUSTOMER = "missing required field 'customer_id' (the customer)"
MISSING_TIME = "missing required field 'timestamp'"
OUTSIDE = "is outside the accepted window"
FIELDS = "fields; at most 6 are taken (setting events_max_fields)"
_ABSENT = object()


def line(**fields) -> str:
    """An event's NDJSON line: id a, customer acme, time T, with ``fields`` (a field given as
    _ABSENT is left out; a str starting with ``=`` is raw JSON text)."""
    event = {"id": "a", "timestamp": T, "customer_id": "acme", **fields}
    parts = [f"{json.dumps(k)}: " + (v[1:] if isinstance(v, str) and v.startswith("=")
                                     else json.dumps(v))
             for k, v in event.items() if v is not _ABSENT]
    return "{" + ", ".join(parts) + "}"


def stamp(text) -> str:
    return line(timestamp=text)


#: (title, NDJSON line, the row way's reason (a prefix; None: accepted), Arrow reads it)
CASES = [
    ("a plain event", line(qty="=1.5", n=3, note="x"), None, True),
    # -- the id
    ("the id is empty", line(id=""), MISSING_ID, True),
    ("the id is null", line(id=None), MISSING_ID, True),
    ("the id is absent", line(id=_ABSENT), MISSING_ID, True),
    ("the id is a space", line(id=" "), None, True),
    ("the id is a number", line(id="=5"), None, False),
    ("the id is a boolean", line(id=True), MISSING_ID, False),
    ("the id is an object", line(id={"k": 1}), MISSING_ID, False),
    ("the id is unicode", line(id="\u00e9\U0001F600"), None, True),
    # -- the customer
    ("the customer is empty", line(customer_id=""), MISSING_CUSTOMER, True),
    ("the customer is null", line(customer_id=None), MISSING_CUSTOMER, True),
    ("the customer is absent", line(customer_id=_ABSENT), MISSING_CUSTOMER, True),
    ("the customer is a number", line(customer_id="=0"), "field 'customer_id': 0 is not a "
     "string", False),
    # -- the timestamp and the window
    ("the timestamp is null", stamp(None), MISSING_TIME, True),
    ("the timestamp is absent", line(timestamp=_ABSENT), MISSING_TIME, True),
    ("the timestamp is empty", stamp(""), "field 'timestamp' is not an ISO 8601 time", False),
    ("the timestamp is text", stamp("soon"), "field 'timestamp' is not an ISO 8601 time", False),
    ("the timestamp is a number", stamp(1768471200), "field 'timestamp' is not an ISO 8601",
     False),
    ("the timestamp has an offset", stamp("2026-01-15T10:00:00+05:30"), None, True),
    ("the timestamp has -00:00", stamp("2026-01-15T10:00:00-00:00"), None, True),
    ("the timestamp has milliseconds", stamp("2026-01-15T10:00:00.123Z"), None, True),
    ("the timestamp has no seconds", stamp("2026-01-15T10:00Z"), None, True),
    ("the timestamp has a space", stamp("2026-01-15 10:00:00Z"), None, True),
    ("the timestamp has no zone", stamp("2026-01-15T10:00:00"), None, False),
    ("the timestamp is a date", stamp("2026-01-15"), None, False),
    ("the timestamp is lowercase", stamp("2026-01-15t10:00:00z"),
     "field 'timestamp' is not an ISO 8601 time", False),
    ("the timestamp is in basic format", stamp("20260115T100000Z"), None, False),
    ("the timestamp is a week date", stamp("2026-W03-4T10:00:00Z"), None, False),
    ("the timestamp has 7 decimals", stamp("2026-01-15T10:00:00.1234567Z"), None, False),
    ("the timestamp has a leap second", stamp("2026-01-15T23:59:60Z"),
     "field 'timestamp' is not an ISO 8601 time", False),
    ("the timestamp is the window's start", stamp("2026-01-01T00:00:00Z"), None, True),
    ("the timestamp is just before it", stamp("2025-12-31T23:59:59.999999Z"), "timestamp "
     "2025-12-31T23:59:59.999999+00:00 " + OUTSIDE, True),
    ("the timestamp is just before its end", stamp("2026-02-01T05:29:59.999999+05:30"), None,
     True),
    ("the timestamp is the window's end", stamp("2026-02-01T00:00:00Z"), "timestamp "
     "2026-02-01T00:00:00+00:00 " + OUTSIDE, True),
    ("the timestamp is far ahead", stamp("9999-12-31T00:00:00Z"), "timestamp 9999", True),
    # -- the order of the rules: the first one broken is the reason
    ("no id and no customer", line(id=None, customer_id=None), MISSING_ID, True),
    ("no customer, out of the window", line(customer_id="", timestamp="2020-01-01T00:00:00Z"),
     MISSING_CUSTOMER, True),
    ("too many fields and no id", line(id="", qty=1, n=1, ok=True, note="x"),
     "the event has 7 " + FIELDS, True),
    # -- the number of fields (nulls are not counted)
    ("six fields", line(qty=1, n=1, ok=True), None, True),
    ("seven fields", line(qty=1, n=1, ok=True, note="x"), "the event has 7 " + FIELDS, True),
    ("seven fields, one null", line(qty=1, n=1, ok=True, note=None), None, True),
    # -- values against their columns
    ("a decimal as text", line(qty="1.5"), None, True),
    ("a decimal as text with spaces", line(qty=" 1.5"), None, False),
    ("a decimal as text with a sign", line(qty="+1.5"), None, True),
    ("a decimal as text in an exponent", line(qty="1.5e2"), None, True),
    ("a decimal as empty text", line(qty=""), "field 'qty': '' is not a number", False),
    ("a decimal with 10 places", line(qty="=1.1234567891"), "field 'qty': 1.1234567891 has "
     "more than 9 decimal places", False),
    ("a decimal with zeros past its scale", line(qty="=1.5000000000000"), None, True),
    ("a decimal too large once scaled", line(small="=12345.6"), "field 'small': 12345.6 is "
     "too large", False),
    ("a decimal too large", line(small="=123456"), "field 'small': 123456 is too large",
     False),
    ("a decimal past 38 digits", line(qty="=1" + "0" * 29), "field 'qty': 1" + "0" * 29 +
     " is too large", False),
    ("a decimal with 101 digits", line(qty="=1.5" + "0" * 100), "field 'qty': a number has "
     "more than 100 digits", False),
    ("a decimal at its limit", line(small="=9999.99"), None, True),
    ("a decimal in an exponent", line(qty="=15e-1"), None, True),
    ("a negative zero", line(qty="=-0.0"), None, True),
    ("an integer past 64 bits", line(n=2**63), CHANGES, False),
    ("an integer at 64 bits", line(n=2**63 - 1), None, True),
    ("a fraction in an integer", line(n="=2.5"), CHANGES, False),
    ("an integer as text", line(n="5"), "field 'n': '5' is not an integer", False),
    ("an integer in an exponent", line(n="=1e3"), CHANGES, False),
    ("an integer as 1.0", line(n="=1.0"), CHANGES, False),
    ("a boolean in an integer", line(n=True), "field 'n': True is not an integer", False),
    ("a tiny integer too large", line(tiny=200), "field 'tiny': 200 is not an integer from "
     "-128 to 127", False),
    ("a boolean as text", line(ok="true"), "field 'ok': 'true' is not a boolean", False),
    ("a number in a string column", line(note="=5"), "field 'note': 5 is not a string", False),
    ("a string that is a number", line(note="5"), None, True),
    ("an object in a string column", line(note={"k": 1}), "field 'note': {'k': 1} is not a "
     "string", False),
    ("a leading zero", line(n="=012"), "line 1 is not JSON", False),
    ("a null value", line(qty=None, note=None), None, True),
    ("a lone surrogate", line(note="=\"\\ud800\""), "the event holds a lone UTF-16 surrogate",
     False),
    ("a paired surrogate", line(note="=\"\\ud83d\\ude00\""), None, True),
    # -- fields the stream has no column for
    ("a new field", line(region="eu"), CHANGES, False),
    ("a reserved field", line(_backfill="x"), "field '_backfill': names starting with _ are "
     "kept for meterql", False),
    ("a repeated key", f'{{"id": "a", "id": "b", "timestamp": "{T}", "customer_id": "acme"}}',
     None, False),
    ("not an object", "[1, 2]", "not a JSON object", False),
    ("not JSON", "{nope", "line 1 is not JSON", False),
]


#: The same, for a stream with a DOUBLE column: a double keeps a number's value, not how it was
#: written, so whether it passes the digits limit is read from the bytes, conservatively.
DOUBLE_CASES = [
    ("a double", line(ratio="=2.5"), None, True),
    ("a double too large", line(ratio="=1e309"), "field 'ratio': a number has more than 100 "
     "digits", False),
    ("a double past the digits limit", line(ratio="=1e308"), "field 'ratio': a number has "
     "more than 100 digits", False),
    ("a double of 101 digits", line(ratio="=1.5" + "0" * 100), "field 'ratio': a number has "
     "more than 100 digits", False),
    ("a double of 100 digits", line(ratio="=1.5" + "0" * 98), None, False),
    ("a double", line(ratio="=2.5e-3"), None, False),
    ("a double written out", line(ratio="=0.0025"), None, True),
    ("a double as text", line(ratio="2.5"), None, False),
    ("a double that is null", line(ratio=None), None, True),
    ("a decimal in an exponent", line(qty="=15e-1"), None, False),
    ("an escape holding 0e", line(note="\u00e9"), None, False),
    ("a decimal too large once scaled", line(small="=12345.6"), "field 'small': 12345.6 is "
     "too large", False),
]


def row_way(config: StreamConfig, text: str, limits: Limits = LIMITS
            ) -> tuple[str | None, dict | None]:
    """The row way's reason for one NDJSON line (CHANGES if it needs the stream changed), and
    the event as checked."""
    [event] = parse_body(text.encode(), NDJSON)
    if isinstance(event, Malformed):
        return event.reason, None
    if not isinstance(event, dict):
        return "not a JSON object", None
    event_id = event_id_of(config, event)
    problem, when = row_problem(config, event, event_id, WINDOW, limits)
    if problem is None:
        event[config.timestamp_field] = when
        problem, new, widen = check_fields(config, event, limits)
        if problem is None and (new or widen):
            problem = CHANGES
    return problem, event


@pytest.mark.parametrize(("config", "title", "text", "reason", "read"),
                         [(INFERRED, *case) for case in CASES]
                         + [(DOUBLES, *case) for case in DOUBLE_CASES],
                         ids=[c[0] for c in CASES] + [f"DOUBLE: {c[0]}" for c in DOUBLE_CASES])
def test_the_row_way_and_the_column_way_give_the_same_answer(config, title, text, reason, read):
    row_reason, event = row_way(config, text)
    if reason is None:
        assert row_reason is None, row_reason
    else:
        assert row_reason is not None and row_reason.startswith(reason), row_reason
    table = read_columns(config, text.encode(), LIMITS)
    assert (table is not None) == read, "Arrow's reader " + ("refused" if read else "took") + \
        " it"
    if table is None:
        return
    problems = column_problems(config, table, WINDOW, LIMITS)
    assert problems.get(0) == row_reason
    if row_reason is None:  # read alike: the id, the customer and the time stored
        row = table.to_pylist()[0]
        assert (row["id"], row["customer_id"], row["timestamp"]) == (
            event_id_of(config, event), event["customer_id"], event["timestamp"])
        assert checked_columns(config, text.encode(), WINDOW, LIMITS) is not None
        assert storable_ids(config, [json.loads(text, parse_float=Decimal)], WINDOW,
                            LIMITS) == [row["id"]]
    else:
        assert checked_columns(config, text.encode(), WINDOW, LIMITS) is None


def test_a_batch_is_answered_row_by_row_alike():
    """Every case Arrow reads, in one batch (each with its own id): the rows the column way
    refuses, and its reasons, are those of the row way, event by event."""
    readable = [json.loads(text) for _, text, _, read in CASES if read]
    body = "\n".join(json.dumps({**event, "id": f"r{i}"} if event.get("id") not in (None, "")
                                else event) for i, event in enumerate(readable))
    table = read_columns(INFERRED, body.encode(), LIMITS)
    assert table is not None and table.num_rows == len(readable)
    expected = {}
    for i, text in enumerate(body.splitlines()):
        reason, _ = row_way(INFERRED, text)
        if reason is not None:
            expected[i] = reason
    assert column_problems(INFERRED, table, WINDOW, LIMITS) == expected
    assert expected  # (the batch holds refused events)


def test_a_declared_stream_refuses_unknown_fields_and_the_column_way_leaves_them_to_rows():
    text = line(region="eu")
    reason, _ = row_way(DECLARED, text)
    assert reason == ("unknown field 'region' (the stream's schema is declared: id, timestamp, "
                      "customer_id, qty, n, ok, note, small, tiny)")
    assert read_ndjson(DECLARED, text.encode()) is None
    widen = line(n="=2.5")
    assert row_way(DECLARED, widen)[0] == "field 'n': 2.5 is not an integer"


def test_repeated_ids_are_left_to_the_row_way():
    """The row way tells a repeated event (a duplicate) from a conflicting one; the column way
    declines the batch, and storable_ids (the logged way) takes none of it."""
    body = f"{line()}\n{line(qty='=2')}"
    assert read_ndjson(INFERRED, body.encode()) is not None
    assert checked_columns(INFERRED, body.encode(), WINDOW, LIMITS) is None
    events = parse_body(body.encode(), NDJSON)
    assert storable_ids(INFERRED, events, WINDOW, LIMITS) is None
    assert storable_ids(INFERRED, events[:1], WINDOW, LIMITS) == ["a"]


def test_below_75_digits_numbers_written_with_an_exponent_are_left_to_the_row_way():
    """A DECIMAL value can be written with 38 digits and an exponent reaching 75 places after
    the point (``1000...0e-46`` is 1e-9): past a lower limit, only the row way can tell."""
    limits = Limits(fields=6, digits=40)
    text = line(qty="=1" + "0" * 37 + "e-46")
    assert row_way(INFERRED, text, limits)[0] == ("field 'qty': a number has more than 40 "
                                                  "digits, or an exponent past 40 (setting "
                                                  "events_max_number_digits)")
    assert read_ndjson(INFERRED, text.encode()) is not None  # (Arrow reads it: 1e-9)
    assert read_columns(INFERRED, text.encode(), limits) is None
    assert read_columns(INFERRED, text.encode(), LIMITS) is not None
