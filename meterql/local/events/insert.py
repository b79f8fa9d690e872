"""One insert path: checked events become rows of their stream, in one DuckDB transaction.

Every way an event reaches DuckDB ends in :func:`insert_rows` (claim the ids, insert the rows
whose ids were new), with the events as an Arrow table of the stream's columns:

- a batch read and checked as columns (:func:`~meterql.local.events.checks.checked_columns`),
  in the request's thread or here;
- events checked one by one (:func:`validate_events`, the row way, which also adds and widens
  columns), made a table by :func:`~meterql.local.events.fields.events_to_table`;
- records of the event log, read back as a table (``logged_path.record_rows``).

An amend (corrections.py) replaces one stored row instead. No threads here: the callers
(group_commit.py, logged_path.py) hold the transaction, an :class:`EventsTransaction`.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from meterql.local.event_values import DECIMAL, Limits
from meterql.local.events.backfills import open_window
from meterql.local.events.body import Malformed, parse_body
from meterql.local.events.checks import (
    AcceptWindow,
    check_fields,
    checked_columns,
    event_id_of,
    row_problem,
)
from meterql.local.events.fields import event_digest, events_to_table, fingerprint_of
from meterql.local.events.outcomes import Outcome, split_outcomes
from meterql.local.events.schemas import (
    INGESTED,
    EventsTransaction,
    StreamConfig,
    StreamSchemas,
    staged,
)
from meterql.local.store import LocalStore
from meterql.sql_text import quote_ident

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteMode:
    """How a transaction writes. ``claim_each``: ids are claimed one by one, and those taken
    before are answered as duplicates or conflicts (else one insert claims them all, and an
    id taken before fails the transaction, which is then written again claiming each).
    ``at``: the rows' ``_ingested_at`` (None: the rows carry their own)."""

    claim_each: bool
    at: datetime | None


@dataclass
class PendingRequest:
    """One caller's push waiting for the group-commit writer (or, ``flush``, a query
    waiting for the event log to be applied)."""

    stream: str
    events: list[Any]
    backfill: str | None
    raw: bytes | None = None  # an NDJSON body, tried as columns first
    typed: pa.Table | None = None  # its rows, already read and checked as columns
    body: tuple[str, bytes] | None = None  # a JSON body as it came: (media type, bytes)
    outcomes: list[Outcome] | None = None
    error: BaseException | None = None
    future: Future = field(default_factory=Future)
    flush: bool = False


def write_group(store: LocalStore, schemas: StreamSchemas, settings: dict[str, Any],
                group: list[PendingRequest]) -> None:
    """Everything queued, in one transaction: the requests for one stream are checked and
    written together (one id claim, one insert), then split back per request. Ids are
    claimed all at once first; only when one was taken before is the group written again,
    claiming each. Should that fail too, each request is written on its own, so that one
    request's failure is only its own (``request.error``)."""
    reshaped = False
    try:
        try:
            reshaped = _write_all(store, schemas, settings, group, claim_each=False)
        except duckdb.ConstraintException:  # an id seen before: duplicates to report
            reshaped = _write_all(store, schemas, settings, group, claim_each=True) or True
    except Exception as exc:
        # (Said in the log: were this to happen for every group, throughput would collapse
        # with every answer still right.)
        log.warning("group commit of %d requests failed (%s: %s); writing them one by one",
                    len(group), type(exc).__name__, str(exc)[:300])
        reshaped = True
        for request in group:
            request.outcomes = None
            try:
                _write_all(store, schemas, settings, [request], claim_each=True)
            except Exception as exc:  # handed to that request's caller
                request.error = exc
    if reshaped:
        try:
            store.refresh_catalog()
        except Exception:  # the events are committed: their answers stand
            log.exception("refreshing the catalog after an event group failed")


def _write_all(store: LocalStore, schemas: StreamSchemas, settings: dict[str, Any],
               group: list[PendingRequest], claim_each: bool) -> bool:
    """The group in one transaction; whether a stream was created or changed. The streams'
    watermarks are their rows' newest ``_ingested_at`` (set here, once per group), so no
    statement records them."""
    reshaped = False
    touched = set()
    by_stream: dict[tuple[str, str | None], list[PendingRequest]] = {}
    for request in group:
        by_stream.setdefault((request.stream, request.backfill), []).append(request)
    with schemas.transaction() as tx:
        at = datetime.now(UTC)  # (once the store is ours)
        mode = WriteMode(claim_each, at)
        for (stream, backfill), requests in by_stream.items():
            for request in requests:
                request.outcomes = None
            reshaped |= write_requests(tx, settings, stream, backfill, requests, mode)
            accepted = any(o.status == "accepted" for r in requests for o in r.outcomes or ())
            if backfill is None and accepted:  # (a backfill's: when it is closed)
                touched.add(stream)
    for stream in touched:
        store.mark(f"events.{stream}", at)
    return reshaped


def write_requests(tx: EventsTransaction, settings: dict[str, Any], stream: str,
                   backfill: str | None, requests: list[PendingRequest],
                   mode: WriteMode) -> bool:
    """The requests of one stream (and backfill), each answered in ``request.outcomes``:
    those read as columns together, the others event by event together. Whether the stream
    was created or its columns changed."""
    try:
        config = before = tx.config(stream)
    except LookupError:
        config = tx.create(StreamConfig(stream), {})
        before = None
    window, limits = AcceptWindow.of(settings), Limits.of(settings)
    target = f"local.events.{quote_ident(stream)}"
    if backfill is not None:
        window, target = open_window(tx.cur, backfill, stream), staged(stream)
    by_event = []
    for request in requests:
        if request.raw is not None and request.typed is None:
            request.typed = checked_columns(config, request.raw, window, limits)
            if request.typed is None:
                request.events = parse_body(request.raw, "application/x-ndjson", limits)
        if request.typed is None:
            by_event.append(request)
    ready = [request for request in requests if request.typed is not None]
    if ready:
        insert_checked(tx, config, target, backfill, ready, mode)
    if by_event:
        events = [event for request in by_event for event in request.events]
        came_with = [n for n, request in enumerate(by_event) for _ in request.events]
        outcomes, first, config = validate_events(tx, config, events, window, limits, came_with)
        if first:
            rows = [(event_id, event) for event_id, (_, _, event) in first.items()]
            insert_rows(tx, config, target, events_to_table(config, rows),
                        [index for index, _, _ in first.values()], backfill, outcomes, mode)
        parts = split_outcomes(outcomes, [len(r.events) for r in by_event])
        for request, part in zip(by_event, parts, strict=True):
            request.outcomes = part
    return config is not before


def validate_events(tx: EventsTransaction, config: StreamConfig, events: list[Any],
                    window: AcceptWindow, limits: Limits, came_with: list[int]):
    """Each event checked the row way, adding and widening the columns it needs: the
    outcomes of the events refused (or repeated), the others by id (``(index, digest,
    event)``, the first of each id), and the stream's shape after. ``came_with``: each event's
    request, to say where a repeated id came from."""
    outcomes: list[Outcome | None] = [None] * len(events)
    first: dict[str, tuple[int, str, dict[str, Any]]] = {}
    for index, event in enumerate(events):
        if isinstance(event, Malformed):
            outcomes[index] = Outcome(index, None, "rejected", event.reason)
            continue
        if not isinstance(event, dict):
            outcomes[index] = Outcome(index, None, "rejected", "not a JSON object")
            continue
        event_id = event_id_of(config, event)
        problem, when = row_problem(config, event, event_id, window, limits)
        if when is not None:  # (read as UTC: the same event sent twice compares equal)
            event[config.timestamp_field] = when
        if problem is None:
            problem, config = fit_event(tx, config, event, limits)
        if problem is not None or event_id is None:  # (no id is a problem row_problem names)
            outcomes[index] = Outcome(index, event_id, "rejected", problem or "no id")
            continue
        digest = event_digest(event)
        if event_id in first:
            earlier = first[event_id]
            same = earlier[1] == digest
            where = ("earlier in this batch" if came_with[earlier[0]] == came_with[index]
                     else "in another request just before")
            outcomes[index] = Outcome(
                index, event_id, "duplicate" if same else "rejected",
                f"the same event arrived {where}" if same else
                f"id {event_id} arrived {where} with a different body")
            continue
        first[event_id] = (index, digest, event)
    return outcomes, first, config


def fit_event(tx: EventsTransaction, config: StreamConfig, event: dict[str, Any],
              limits: Limits) -> tuple[str | None, StreamConfig]:
    """Check each field against its column (:func:`check_fields`), then add or widen the
    columns the event needs (an event that is refused adds none, and one over a limit costs
    no DDL): why it does not fit (or None), and the stream's shape after."""
    problem, new, widen = check_fields(config, event, limits)
    if problem is None and (new or widen):
        config = tx.change_columns(config, new, dict.fromkeys(widen, DECIMAL))
    return problem, config


def insert_checked(tx: EventsTransaction, config: StreamConfig, target: str,
                   backfill: str | None, requests: list[PendingRequest],
                   mode: WriteMode) -> None:
    """Requests whose rows were read and checked as columns: one claim and one insert for
    all of them when their ids are distinct, else one after the other."""
    tables = [_checked(request) for request in requests]
    merged = pa.concat_tables(tables, promote_options="permissive")
    ids = merged.column(config.id_field)
    together = pc.count_distinct(ids).as_py() == len(ids)
    parts = ([(requests, tables, merged)] if together
             else [([r], [t], t) for r, t in zip(requests, tables, strict=True)])
    for part, own, table in parts:
        outcomes: list[Outcome | None] = [None] * table.num_rows
        insert_rows(tx, config, target, table, list(range(table.num_rows)), backfill,
                    outcomes, mode)
        sizes = [t.num_rows for t in own]
        for request, answers in zip(part, split_outcomes(outcomes, sizes), strict=True):
            request.outcomes = answers


def _checked(request: PendingRequest) -> pa.Table:
    if request.typed is None:
        raise AssertionError("a request written as columns was not read as columns")
    return request.typed


def insert_rows(tx: EventsTransaction, config: StreamConfig, target: str, typed: pa.Table,
                index_of: list[int], backfill: str | None,
                outcomes: list[Outcome | None] | None, mode: WriteMode) -> list[str]:
    """Claim the rows' ids (all distinct) in ``local.__meterql__.event_ids``, then insert the
    rows whose ids were new into ``target``; the ids that were taken before. Ids seen before,
    in any earlier call, are found at once whatever the stream's size (see
    :class:`WriteMode` for how they are claimed). Rows are stored with ``_ingested_at =
    mode.at`` (or their own column of it). Fills ``outcomes`` at ``index_of`` (None: rows
    answered already, from the event log). The rows are registered on the transaction's
    cursor as ``incoming_events`` (replacing an earlier one; the cursor ends with the
    transaction)."""
    if backfill is not None:
        tx.sync_staging(config)
    cur = tx.cur
    ident = quote_ident(config.id_field)
    stamped = INGESTED in typed.column_names  # (rows from the event log: their own time)
    fingerprint = fingerprint_of(typed)
    cur.register("incoming_events", typed)
    answer = outcomes is not None
    ids = typed.column(config.id_field).to_pylist() if answer or mode.claim_each else []
    claim = (f"INSERT INTO local.__meterql__.event_ids SELECT ?, {ident}, {fingerprint},"
             " ? FROM incoming_events")
    if not mode.claim_each:
        cur.execute(claim, [config.name, backfill])
        claimed, taken = set(ids), []
    else:
        claimed = {r[0] for r in cur.execute(
            claim + " ON CONFLICT DO NOTHING RETURNING id", [config.name, backfill]).fetchall()}
        taken = [i for i in ids if i not in claimed]
    if taken and outcomes is not None:
        mine = dict(cur.execute(
            f"SELECT {ident}, {fingerprint} FROM incoming_events WHERE "
            f"list_contains(?, {ident})", [taken]).fetchall())
        for event_id, previous in _stored_hashes(cur, config.name, taken):
            index = index_of[ids.index(event_id)]
            outcomes[index] = (
                Outcome(index, event_id, "duplicate", "already stored")
                if previous == mine[event_id] else
                Outcome(index, event_id, "rejected",
                        f"id {event_id} was stored before with a different body; "
                        "amend the event to change it"))
    if outcomes is not None:
        for row, event_id in enumerate(ids):
            if event_id in claimed:
                outcomes[index_of[row]] = Outcome(index_of[row], event_id, "accepted")
    if claimed or not (answer or mode.claim_each):
        keep = "" if not taken else f" WHERE NOT list_contains(?, {ident})"
        at = "" if stamped else ", ?::TIMESTAMPTZ AS _ingested_at"
        cur.execute(
            f"INSERT INTO {target} BY NAME SELECT *{at}, ?::VARCHAR AS _backfill "
            f"FROM incoming_events{keep}",
            ([] if stamped else [mode.at]) + [backfill] + ([taken] if taken else []))
        if backfill is not None:
            cur.execute("UPDATE local.__meterql__.backfills SET events = events + ? "
                        "WHERE id = ?", [len(claimed), backfill])
    return taken


def _stored_hashes(cur: duckdb.DuckDBPyConnection, stream: str,
                   ids: list[str]) -> list[tuple[str, str]]:
    if not ids:
        return []
    if len(ids) <= 64:  # a few retries: point lookups in the id table
        out = []
        for event_id in ids:
            out += cur.execute("SELECT id, body_hash FROM local.__meterql__.event_ids WHERE "
                               "stream = ? AND id = ?", [stream, event_id]).fetchall()
        return out
    cur.register("taken_ids", pa.table({"id": ids}))
    try:
        return cur.execute("SELECT e.id, e.body_hash FROM local.__meterql__.event_ids e JOIN "
                           "taken_ids t ON e.id = t.id WHERE e.stream = ?", [stream]).fetchall()
    finally:
        cur.unregister("taken_ids")
