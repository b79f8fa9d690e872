"""Request bodies as events: JSON, NDJSON and CloudEvents, read exactly (pure, no I/O).

A body that is not UTF-8, or a JSON body (not NDJSON) that is not JSON at all, is refused as a
whole; an NDJSON line that does not parse, or an event holding a lone UTF-16 surrogate, becomes
a :class:`Malformed` placeholder that is rejected alone with its reason.

Example:
    >>> parse_body(b'{"id": "a"}\\nnope\\n', "application/x-ndjson")[1].reason
    'line 2 is not JSON: Expecting value at column 1'
    >>> count_lines(b'{"id": "a"}\\n\\n{"id": "b"}')
    2
"""

from __future__ import annotations

import json
import re
from typing import Any

from meterql import exact_json
from meterql.errors import InputLimitError, InvalidBodyError, UnsupportedMediaTypeError
from meterql.local.event_values import Limits

#: The media types read as NDJSON: one event per line.
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
#: Media types that are surely not events (any other is read as JSON: clients send text/plain).
NOT_EVENTS = ("text/csv", "multipart/form-data", "application/x-www-form-urlencoded")

LONE_SURROGATE = ("the event holds a lone UTF-16 surrogate (an escape such as \\ud800 without "
                  "its pair): not valid Unicode")

_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_SPACES_LINE = re.compile(rb"\n[ \t\f\v]+(?:\n|\Z)")  # a line of spaces only
_SPACES_FIRST = re.compile(rb"[ \t\f\v]+(?:\n|\Z)")


class Malformed:
    """An event that could not be read (a line that is not JSON, a broken CloudEvent): it is
    rejected with ``reason``, and the other events of its body are not."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def media_type(content_type: str) -> str:
    """The media type of a Content-Type header, lowercase, without its parameters.

    >>> media_type("Application/JSON; charset=utf-8")
    'application/json'
    """
    return content_type.split(";")[0].strip().lower()


def parse_body(data: bytes, content_type: str, limits: Limits | None = None) -> list[Any]:
    """Events from a request body: a JSON object, a JSON array, NDJSON, or CloudEvents
    (structured, or a batch). Lines of NDJSON that do not parse become :class:`Malformed`, and
    so do events holding a lone UTF-16 surrogate (``"\\ud800"``: JSON allows the escape, but it
    is no character, and no column can store it). A body that is not UTF-8 is refused
    (:class:`InvalidBodyError`), and so is a JSON body (not NDJSON) that the parser cannot read
    because of its nesting or of a number's digits (:class:`InputLimitError`: no event of it
    can be told apart; an NDJSON line is rejected alone). ``limits`` are only named in the
    reasons; they are checked per event later (see :class:`Limits`)."""
    events = _parse(data, media_type(content_type), limits or Limits())
    if _SURROGATE.search(data):  # (rare: the walk below only then)
        events = [Malformed(LONE_SURROGATE) if holds_lone_surrogate(e) else e for e in events]
    return events


def check_utf8(data: bytes, kind: str) -> str:
    """``data`` as text, or :class:`InvalidBodyError` saying where it is not UTF-8 (for NDJSON,
    on which line). One C call over the body."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}"
        if kind in NDJSON_TYPES:
            line = data.count(b"\n", 0, exc.start) + 1
            where = f"line {line}, {where}"
        raise InvalidBodyError(f"the body is not UTF-8 text ({where}: {exc.reason})",
                             hint="send JSON encoded as UTF-8; nothing of this body was "
                             "stored") from None


def holds_lone_surrogate(value: Any) -> bool:
    """Whether a parsed JSON value holds a string that is no Unicode (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(holds_lone_surrogate(k) or holds_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_lone_surrogate(v) for v in value)
    return False


def count_lines(data: bytes) -> int:
    """The non-blank lines of an NDJSON body: its events, one per line."""
    if not data:
        return 0
    if b"\r" not in data and b"\n\n" not in data and not data.startswith(b"\n") \
            and not _SPACES_LINE.search(data) and not _SPACES_FIRST.match(data):
        return data.count(b"\n") + (not data.endswith(b"\n"))  # (the common case, in C)
    return sum(1 for line in data.splitlines() if line.strip())


def _unreadable(exc: BaseException, limits: Limits) -> str:
    """Why the JSON parser gave up on a value (RecursionError, or ValueError for an integer
    past Python's 4,300 digits): over a limit."""
    if isinstance(exc, RecursionError):
        return (f"JSON nested deeper than the parser reads; events nest at most "
                f"{limits.depth} levels (setting events_max_depth)")
    return (f"a number of thousands of digits; events take numbers of at most "
            f"{limits.digits} digits (setting events_max_number_digits)")


def _parse(data: bytes, kind: str, limits: Limits) -> list[Any]:
    if kind in NOT_EVENTS:
        raise UnsupportedMediaTypeError(
            f"events are JSON, a JSON array or NDJSON; the body was sent as {kind}",
            hint="send Content-Type: application/json or application/x-ndjson; a CSV file "
                 "goes to a table: POST /v1/tables/{table}/upload (meterql load)")
    text = check_utf8(data, kind)
    if kind in NDJSON_TYPES:
        lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
        try:  # one parse for the whole batch; line by line only to find a bad line
            events = exact_json.loads("[" + ",".join(line for _, line in lines) + "]")
            if len(events) == len(lines):  # (a line holding two values is not NDJSON)
                return events
        except (ValueError, RecursionError):  # (JSONDecodeError is a ValueError)
            pass
        return [_line(line, number, limits) for number, line in lines]
    try:
        value = exact_json.loads(text)
    except exact_json.NotJsonError as exc:
        raise InvalidBodyError(f"the body is not JSON: {exc}",
                             hint="send numbers as JSON numbers, or as strings") from None
    except json.JSONDecodeError as exc:
        raise InvalidBodyError(f"the body is not JSON: {exc.msg} at line {exc.lineno}, column "
                             f"{exc.colno}", line=exc.lineno, column=exc.colno,
                             hint="send a JSON object, a JSON array, or NDJSON with "
                             "Content-Type: application/x-ndjson") from None
    except (ValueError, RecursionError) as exc:
        raise InputLimitError(f"the body cannot be read: it holds {_unreadable(exc, limits)}",
                              hint="nothing of this body was stored; send NDJSON to have "
                              "only the offending events rejected") from None
    events = value if isinstance(value, list) else [value]
    if kind.startswith("application/cloudevents"):
        return [_from_cloudevent(e) for e in events]
    return events


def _line(line: str, number: int, limits: Limits) -> Any:
    try:
        return exact_json.loads(line)
    except exact_json.NotJsonError as exc:
        return Malformed(f"line {number} is not JSON: {exc}")
    except json.JSONDecodeError as exc:
        return Malformed(f"line {number} is not JSON: {exc.msg} at column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return Malformed(f"line {number} holds {_unreadable(exc, limits)}")


def _from_cloudevent(event: Any) -> Any:
    """A CloudEvent's data, with its id, time and subject standing in for missing fields."""
    if not isinstance(event, dict) or "specversion" not in event:
        return Malformed("not a CloudEvent (no specversion)")
    data = event.get("data")
    if not isinstance(data, dict):
        return Malformed("a CloudEvent whose data is not a JSON object")
    merged = dict(data)
    merged.setdefault("id", event.get("id"))
    if "time" in event:
        merged.setdefault("timestamp", event["time"])
    if "subject" in event:
        merged.setdefault("customer_id", event["subject"])
    return merged
