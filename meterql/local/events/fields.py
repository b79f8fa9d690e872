"""Events as typed columns (pure, no I/O): the Arrow table of a stream's columns, what Arrow's
JSON reader reads them as, and the fingerprints that tell a retry from a changed event.

What a single value may be in a column of a type is ``meterql.local.event_values``; this module
works on whole events and batches (and on the event log's records).
"""

from __future__ import annotations

import hashlib
import io
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from meterql.local.event_values import fingerprint_sql, kind, to_arrow
from meterql.local.events.body import count_lines, parse_body
from meterql.local.events.schemas import INGESTED, StreamConfig

if TYPE_CHECKING:
    from meterql.local.eventlog import Record


def events_to_table(config: StreamConfig, rows: list[tuple[str, dict[str, Any]]]) -> pa.Table:
    """Checked events, as (id, event), as an Arrow table of the stream's columns."""
    names = list(config.columns)
    data: dict[str, list[Any]] = {n: [] for n in names}
    for event_id, event in rows:
        for n in names:
            value = event_id if n == config.id_field else event.get(n)
            if isinstance(value, (dict, list)):
                value = json.dumps(value, default=str)
            elif isinstance(value, str) and config.columns[n] == "JSON":
                value = json.dumps(value)  # a JSON string (as text it is no JSON)
            elif isinstance(value, bool) and config.columns[n] != "BOOLEAN":
                value = str(value).lower()
            elif value is not None and config.columns[n] in ("VARCHAR", "JSON") \
                    and not isinstance(value, str):
                value = str(value)
            data[n].append(value)
    return pa.table({n: to_arrow(data[n], config.columns[n]) for n in names})


def reader_schema(config: StreamConfig) -> pa.Schema | None:
    """What Arrow's JSON reader reads the stream's events as, or None (a column of a type it
    does not read exactly: JSON, FLOAT, HUGEINT, a date or time)."""
    fields = []
    for name, typ in config.columns.items():
        if name in (config.id_field, config.customer_field, config.timestamp_field):
            fields.append(pa.field(name, pa.string()))
            continue
        reader = kind(typ).reader
        if reader is None:
            return None
        fields.append(pa.field(name, reader))
    return pa.schema(fields)


def read_ndjson(config: StreamConfig, data: bytes) -> pa.Table | None:
    """An NDJSON batch read by Arrow's JSON reader as the stream's columns (decimals exact,
    the timestamp as UTC), with no Python per event; None when the reader cannot take it
    whole: a field the stream has no column for, a value its column's reader refuses, a line
    holding other than one value, a timestamp that is not ISO 8601 with a zone (the row way
    reads one without a zone as UTC). The rules are checked apart (``checks.py``)."""
    schema = reader_schema(config)
    if schema is None:
        return None
    try:
        raw = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(data) + 64),
            parse_options=pajson.ParseOptions(explicit_schema=schema,
                                              unexpected_field_behavior="error"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if raw.num_rows == 0 or raw.num_rows != count_lines(data):
        return None  # (two values on a line, or one over several: answered line by line)
    where = raw.schema.get_field_index(config.timestamp_field)
    try:
        stamps = pc.cast(raw.column(where), pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    for column in raw.columns:
        if not _fits_its_type(column):
            return None
    return raw.set_column(where, config.timestamp_field, stamps)


def _fits_its_type(column: pa.ChunkedArray) -> bool:
    """Whether every value Arrow's reader gave ``column`` is one of its type: the reader
    checks a decimal's digits as written, not once scaled (``12345.6`` is read into a
    DECIMAL(6,2) as ``12345.60``, which DuckDB would store as it is). (It reads no NaN or
    infinity either, but a check is cheap.)"""
    if pa.types.is_decimal(column.type):
        bound = Decimal(10) ** (column.type.precision - column.type.scale)
        extremes = pc.min_max(column)
        low, high = extremes["min"].as_py(), extremes["max"].as_py()
        return low is None or (-bound < low and high < bound)
    if pa.types.is_floating(column.type):
        return not pc.any(pc.invert(pc.is_finite(column))).as_py()
    return True


def logged_rows(config: StreamConfig, records: list[Record]) -> pa.Table:
    """A stream's records of the event log as one table of its columns plus
    ``_ingested_at``. Bodies are read again (their events were checked when logged; the
    stream's columns have only grown since, so they still fit): single-line JSON objects all
    at once by Arrow's reader (no Python per event in the writer, whose GIL the HTTP loop
    would wait for), the others, or all of them if Arrow refuses one, by :func:`parse_body`."""
    stamp = pa.timestamp("us", tz="UTC")
    tables, events, stamps = [], [], []
    lines = [(r, r.body) for r in records if r.rows is None and r.body is not None
             and r.content_type == "application/json" and r.body.startswith(b"{")
             and b"\n" not in r.body and b"\r" not in r.body]
    if lines:
        typed = read_ndjson(config, b"\n".join(body for _, body in lines))
        if typed is not None and typed.num_rows == len(lines):
            tables.append(typed.append_column(INGESTED, pa.array([r.at for r, _ in lines],
                                                                  stamp)))
            done = {id(r) for r, _ in lines}
            records = [r for r in records if id(r) not in done]
    for record in records:
        if record.rows is not None:
            at = pa.array([record.at] * record.rows.num_rows, stamp)
            tables.append(record.rows.append_column(INGESTED, at))
        else:
            parsed = parse_body(record.body or b"", record.content_type)
            events += [(str(e[config.id_field]), e) for e in parsed]
            stamps += [record.at] * len(parsed)
    if events:
        typed = events_to_table(config, events)
        tables.append(typed.append_column(INGESTED, pa.array(stamps, stamp)))
    return tables[0] if len(tables) == 1 else pa.concat_tables(
        tables, promote_options="permissive")


def event_digest(event: dict[str, Any]) -> str:
    """Compares two events of one call (same id: duplicate or conflict): fields in name order,
    values as parsed (the timestamp normalised to UTC). What is stored to compare with later
    calls is :func:`fingerprint_of`, computed by DuckDB over the typed values."""
    text = repr(sorted(event.items()))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def fingerprint_of(table: pa.Table | pa.Schema) -> str:
    """SQL for the stored body fingerprint of the rows of ``table`` (see
    :func:`meterql.local.event_values.fingerprint_sql`)."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    return fingerprint_sql([(f.name, pa.types.is_decimal(f.type) and f.type.scale > 0)
                            for f in schema if f.name != INGESTED])


def shown_names(fields: dict[str, Any], most: int = 3) -> str:
    """Up to ``most`` field names, quoted, and how many more.

    >>> shown_names(dict.fromkeys("abcde"))
    "'a', 'b', 'c' and 2 more"
    """
    shown = ", ".join(f"'{n[:40]}'" for n in list(fields)[:most])
    return shown if len(fields) <= most else f"{shown} and {len(fields) - most} more"
