"""Validate and evaluate aggregates: billing periods in a time zone, customer lists with zeros,
provenance and a result hash for every evaluation.

Periods are half-open ``[start, end)``. Dates are midnights in the evaluation's time zone, so a
month in ``Europe/Berlin`` starts at 22:00 or 23:00 UTC the evening before, and a day window
across a daylight saving change lasts 23 or 25 hours. Each window is one query with
``:period_start`` and ``:period_end`` bound as UTC instants.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypedDict, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import pyarrow.compute as pc

from meterql.aggregates.definition import ENGINE_PARAMETERS, Aggregate
from meterql.dialects.arrow_types import sql_type_name
from meterql.engine import Engine, Result
from meterql.errors import InvalidAggregateError, MeterqlError, ParameterError

Window = Literal["day", "month"]
WINDOWS: tuple[Window, ...] = get_args(Window)
_SAMPLE = {
    "period_start": datetime(2000, 1, 1, tzinfo=UTC),
    "period_end": datetime(2000, 2, 1, tzinfo=UTC),
    "customer_id": None,
}


def validate(engine: Engine, draft: Aggregate) -> pa.Schema:
    """Check a definition without reading any data; returns its output schema.

    Raises :class:`InvalidAggregateError` naming the problem (and its position in the SQL when
    it has one): SQL that does not parse, a statement other than a SELECT, an unknown table or
    column, a parameter the engine does not supply, a missing period filter, a missing customer
    or ``quantity`` column, or a ``quantity`` that is not an exact number.
    """
    prefix = f"aggregate '{draft.name}'"
    try:
        plan, explain, _ = engine.plan(draft.sql, draft.dialect)
        if explain:
            raise InvalidAggregateError(f"{prefix} is an EXPLAIN", sql=draft.sql,
                                        hint="write the SELECT alone")
        unknown = [p for p in plan.params if p not in ENGINE_PARAMETERS]
        if unknown:
            raise InvalidAggregateError(
                f"{prefix} uses :{unknown[0]}, which the engine does not supply",
                sql=draft.sql, **_position(draft.sql, ":" + unknown[0]),
                hint="aggregates get " + ", ".join(":" + p for p in ENGINE_PARAMETERS),
            )
        missing = [p for p in ("period_start", "period_end") if p not in plan.params]
        if missing:
            raise InvalidAggregateError(
                f"{prefix} does not use :{missing[0]}, so it would not be limited to the "
                "billing period",
                sql=draft.sql,
                hint="filter the time column: WHERE ts >= :period_start AND ts < :period_end",
            )
        schema = engine.output_schema(
            draft.sql, {p: _SAMPLE[p] for p in plan.params}, draft.dialect)
    except InvalidAggregateError:
        raise
    except MeterqlError as exc:
        raise InvalidAggregateError(
            f"{prefix}: {exc.message}", sql=exc.sql or draft.sql, line=exc.line,
            column=exc.column, hint=exc.hint, table=exc.table, source=exc.source,
        ) from exc
    names = schema.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidAggregateError(f"{prefix} has two output columns named '{dupes[0]}'",
                                    sql=draft.sql, hint="give each output column its own alias")
    for wanted, why in ((draft.customer_column, "the customer"), ("quantity", "the quantity")):
        if wanted not in names:
            raise InvalidAggregateError(
                f"{prefix} has no output column '{wanted}' for {why}",
                sql=draft.sql,
                hint=f"its columns are {', '.join(names)}; alias one 'AS {wanted}'"
                + (" or set the header '-- customer: COLUMN'" if wanted != "quantity" else ""),
            )
    quantity = schema.field("quantity").type
    if not (pa.types.is_integer(quantity) or pa.types.is_decimal(quantity)):
        raise InvalidAggregateError(
            f"{prefix}: quantity is {quantity}, which is not an exact number",
            sql=draft.sql, **_position(draft.sql, "quantity"),
            hint="cast it: CAST(... AS DECIMAL(38, 6)), or count or sum integers/decimals",
        )
    return schema


class _Position(TypedDict, total=False):
    """Where in the SQL an error is, as the error's keyword arguments (none if not found)."""

    line: int
    column: int


def _position(sql: str, needle: str) -> _Position:
    index = sql.find(needle)
    if index < 0:
        return {}
    before = sql[:index]
    return {"line": before.count("\n") + 1, "column": index - (before.rfind("\n") + 1) + 1}


def periods(start: date | datetime, end: date | datetime, tz: str = "UTC",
            window: Window | None = None) -> list[tuple[datetime, datetime]]:
    """The half-open periods to evaluate, as UTC instants.

    >>> [(a.isoformat(), b.isoformat()) for a, b in periods(date(2026, 10, 24), date(2026, 10, 26),
    ...                                                         "Europe/Berlin", "day")]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('2026-10-23T22:00:00+00:00', '2026-10-24T22:00:00+00:00'),
     ('2026-10-24T22:00:00+00:00', '2026-10-25T23:00:00+00:00')]
    """
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParameterError(f"unknown time zone '{tz}'",
                             hint="use an IANA name such as Europe/Berlin or UTC") from None
    if window is not None and window not in WINDOWS:
        raise ParameterError(f"unknown window '{window}'", hint="use day or month")
    low, high = _local(start, zone), _local(end, zone)
    if not low < high:
        raise ParameterError(f"the period is empty: {low.isoformat()} is not before "
                             f"{high.isoformat()}", hint="give --from before --to")
    bounds = [low]
    while window is not None and bounds[-1] < high:
        day = bounds[-1].date()
        if window == "day":
            following = day + timedelta(days=1)
        else:
            following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        bounds.append(min(datetime(following.year, following.month, following.day,
                                   tzinfo=zone), high))
    if window is None:
        bounds.append(high)
    if len(bounds) > 1000:
        raise ParameterError(f"{len(bounds) - 1} windows are too many for one evaluation",
                             hint="evaluate a shorter period or a larger window")
    return [(a.astimezone(UTC), b.astimezone(UTC)) for a, b in zip(bounds, bounds[1:],
                                                                     strict=False)]


def _local(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)
    return datetime(value.year, value.month, value.day, tzinfo=zone)


@dataclass
class Evaluation:
    """An aggregate's result for a period, with what is needed to reproduce and explain it."""

    id: str
    aggregate: Aggregate
    table: pa.Table  # period_start, period_end, the customer column, quantity, dimensions...
    provenance: dict[str, Any]
    result_hash: str
    seconds: float

    def rows(self) -> list[dict[str, Any]]:
        return self.table.to_pylist()

    @property
    def tz(self) -> str:
        """The time zone the evaluation was asked in (its periods' midnights)."""
        return str(self.provenance.get("parameters", {}).get("tz") or "UTC")

    def in_zone(self) -> pa.Table:
        """The rows with ``period_start`` and ``period_end`` in the evaluation's time zone, as
        they are shown and written (the same instants; :attr:`table` keeps them in UTC and the
        result hash is over that)."""
        table = self.table
        for name in ("period_start", "period_end"):
            if name in table.column_names:
                column = table.column(name)
                zoned = pa.timestamp(column.type.unit, tz=self.tz)
                table = table.set_column(table.column_names.index(name), name,
                                         column.cast(zoned))
        return table

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "aggregate": self.aggregate.name,
                "version": self.aggregate.version, "result_hash": self.result_hash,
                "seconds": round(self.seconds, 6), "provenance": self.provenance}


class Cancel:
    """Lets a caller (an HTTP request whose client went away) stop an evaluation."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.current: Any = None  # the RunningQuery in flight

    def cancel(self) -> None:
        self.cancelled.set()
        if self.current is not None:
            self.current.cancel()


RunQuery = Callable[[str, dict[str, Any], str], Result]


def evaluate(
    run: RunQuery,
    aggregate: Aggregate,
    start: date | datetime,
    end: date | datetime,
    *,
    customers: Sequence[str] | None = None,
    tz: str = "UTC",
    window: Window | None = None,
    sources: Callable[[Result], list[dict[str, Any]]] = lambda result: [],
    freshness: dict[str, Any] | None = None,
) -> Evaluation:
    """Run ``aggregate`` over each period; ``run(sql, params, dialect)`` runs one query.
    ``freshness``: the bound the queries ran under and where it came from, for the
    provenance (``{"max_staleness": "5m", "from": "argument"}``)."""
    t0 = time.perf_counter()
    started = datetime.now(UTC)
    wanted = list(dict.fromkeys(str(c) for c in customers)) if customers else None
    parts: list[pa.Table] = []
    marks: dict[str, dict[str, Any]] = {}
    read: dict[str, dict[str, Any]] = {}
    uses_customer = ":customer_id" in aggregate.sql or "$customer_id" in aggregate.sql
    windows = periods(start, end, tz, window)
    for low, high in windows:
        params: dict[str, Any] = {"period_start": low, "period_end": high}
        if uses_customer:
            params["customer_id"] = wanted[0] if wanted and len(wanted) == 1 else None
        result = run(aggregate.sql, params, aggregate.dialect)
        if result.truncated:
            raise InvalidAggregateError(
                f"aggregate '{aggregate.name}' returned more rows than the row cap",
                hint="raise the row cap, or aggregate to fewer rows per customer")
        for mark in result.watermarks:
            marks[mark["table"]] = mark
        for entry in sources(result):
            read[entry["name"]] = entry
        parts.append(_window_rows(result.table, aggregate, low, high, wanted))
    table = _sorted(pa.concat_tables(parts, promote_options="permissive"), aggregate)
    digest = result_hash(table)
    evaluation_id = str(uuid.uuid4())
    provenance = {
        "id": evaluation_id,
        "aggregate": aggregate.name,
        "version": aggregate.version,
        "sql": aggregate.sql,
        "dialect": aggregate.dialect,
        "parameters": {
            "from": start.isoformat(), "to": end.isoformat(), "tz": tz, "window": window,
            "customers": wanted,
            "periods": [[a.isoformat(), b.isoformat()] for a, b in windows],
        },
        "sources": sorted(read.values(), key=lambda s: s["name"]),
        "watermarks": table_reads([marks[k] for k in sorted(marks)], started),
        **({} if freshness is None else {"freshness": freshness}),
        "rows": table.num_rows,
        "result_hash": digest,
        "evaluated_at": started.isoformat(),
    }
    return Evaluation(evaluation_id, aggregate, table, provenance, digest,
                      time.perf_counter() - t0)


def table_reads(marks: Sequence[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """The tables a query read, as ``Result.watermarks`` gives them, each with its ``route``
    and ``staleness``: the age in seconds at ``at`` of what was read. A table read from its
    replica (a sync-mode table, or an auto one routed to it) is as old as its watermark
    ``synced_at``; one whose route reads its source (``source``, and any route that adds the
    source's rows to the replica's) is live, 0. Every other key of a mark is kept as given.

    >>> at = datetime(2026, 10, 1, 12, tzinfo=UTC)
    >>> table_reads([{"table": "pg.public.a", "synced_at": "2026-10-01T11:55:00+00:00"},
    ...              {"table": "pg.public.b", "route": "source", "reason": "not synced yet"}],
    ...             at)  # doctest: +NORMALIZE_WHITESPACE
    [{'table': 'pg.public.a', 'synced_at': '2026-10-01T11:55:00+00:00', 'route': 'replica',
      'staleness': 300.0},
     {'table': 'pg.public.b', 'route': 'source', 'reason': 'not synced yet', 'synced_at': None,
      'staleness': 0.0}]
    """
    out = []
    for mark in marks:
        entry = dict(mark)
        synced = entry.get("synced_at")
        if "route" not in entry and synced is not None:
            entry["route"] = "replica"  # (a sync-mode table: always its replica)
        if "route" in entry:
            entry.setdefault("synced_at", None)
            if "staleness" not in entry:
                if entry["route"] != "replica":
                    entry["staleness"] = 0.0
                elif synced is not None:
                    age = (at - datetime.fromisoformat(str(synced))).total_seconds()
                    entry["staleness"] = round(max(age, 0.0), 3)
        out.append(entry)
    return out


def _window_rows(table: pa.Table, aggregate: Aggregate, low: datetime, high: datetime,
                 wanted: list[str] | None) -> pa.Table:
    customer = aggregate.customer_column
    if wanted is not None:
        as_text = pc.cast(table.column(customer), pa.string())
        table = table.filter(pc.is_in(as_text, value_set=pa.array(wanted, pa.string())))
        seen = set(pc.cast(table.column(customer), pa.string()).to_pylist())
        absent = [c for c in wanted if c not in seen]
        if absent:  # asked for, no usage: a zero, never a missing row
            zeros = {
                name: (_typed(absent, table.schema.field(name).type) if name == customer
                       else pa.array([0] * len(absent)).cast(table.schema.field(name).type)
                       if name == "quantity" else pa.nulls(len(absent),
                                                           table.schema.field(name).type))
                for name in table.column_names
            }
            table = pa.concat_tables([table, pa.table(zeros, schema=table.schema)])
    n = table.num_rows
    stamp = pa.timestamp("us", tz="UTC")
    table = table.add_column(0, "period_end", pa.array([high] * n, stamp))
    return table.add_column(0, "period_start", pa.array([low] * n, stamp))


def _typed(values: list[str], typ: pa.DataType) -> pa.Array:
    try:
        return pa.array(values, pa.string()).cast(typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ParameterError(f"customer {values[0]!r} is not a value of the customer column's "
                             f"type {sql_type_name(typ)}",
                             hint="pass customers as the column holds them") from None


def _sorted(table: pa.Table, aggregate: Aggregate) -> pa.Table:
    keys = ["period_start", aggregate.customer_column] + [
        c for c in table.column_names
        if c not in ("period_start", "period_end", aggregate.customer_column, "quantity")]
    return table.sort_by([(k, "ascending") for k in keys])


def result_hash(table: pa.Table) -> str:
    """SHA-256 over the rows in order, each value in a stable text form (decimals exact)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(table.column_names).encode())
    for row in table.to_pylist():
        digest.update(json.dumps([_text(v) for v in row.values()]).encode())
    return "sha256:" + digest.hexdigest()


def _text(value: Any) -> Any:
    if isinstance(value, (Decimal, datetime, date)):
        return str(value)
    return value


def diff(current: pa.Table | None, draft: pa.Table, aggregate: Aggregate) -> dict[str, Any]:
    """What a draft would change: rows keyed by period, customer and dimensions."""
    def keyed(table: pa.Table | None) -> dict[tuple, Any]:
        if table is None:
            return {}
        out = {}
        for row in table.to_pylist():
            quantity = row.pop("quantity")
            row.pop("period_end", None)
            out[tuple((k, _text(v)) for k, v in row.items())] = quantity
        return out

    old, new = keyed(current), keyed(draft)
    changes, counts = [], {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
    for key in sorted(set(old) | set(new), key=repr):
        before, after = old.get(key), new.get(key)
        kind = ("added" if key not in old else "removed" if key not in new
                else "unchanged" if before == after else "changed")
        counts[kind] += 1
        if kind != "unchanged":
            changes.append({**{k: v for k, v in key}, "kind": kind, "current": before,
                            "draft": after})
    return {"summary": counts, "changes": changes}
