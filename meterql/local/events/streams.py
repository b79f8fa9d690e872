"""The event streams of a workspace (``ws.events``): ingestion, corrections, backfills."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from meterql.errors import InvalidSourceError, ParameterError, WorkspaceError
from meterql.local.event_values import DECIMAL, Limits
from meterql.local.eventlog import EventLog, Record, body_payload, rows_payload, set_aside
from meterql.local.events.body import (
    LONE_SURROGATE,
    NDJSON_TYPES,
    Malformed,
    check_utf8,
    count_lines,
    holds_lone_surrogate,
    media_type,
    parse_body,
)
from meterql.local.events.checks import (
    AcceptWindow,
    check_fields,
    checked_columns,
    event_id_of,
    row_problem,
    storable_ids,
)
from meterql.local.events.fields import (
    event_digest,
    events_to_table,
    fingerprint_of,
    read_ndjson,
)
from meterql.local.events.outcomes import Accepted, Outcome
from meterql.local.events.schemas import (
    INGESTED,
    EventsTransaction,
    StreamConfig,
    StreamSchemas,
    staged,
)
from meterql.local.idindex import IdIndex, hashes
from meterql.local.store import LocalStore
from meterql.sql_text import is_name, quote_ident

log = logging.getLogger(__name__)

_LINGER_S = 0.015  # the writer's longest wait for requests in progress to be queued
_LINGER_PEAK = 4  # ... when at least this many were in progress together lately
_PEAK_S = 1.0  # "lately"
_IDLE_S = 1.0  # the writer thread ends after this long without work
_READ_INLINE = 16 << 10  # bodies up to this size are read in the event loop (async ingest)
_APPLY_ROWS = 50_000  # the event log is applied to DuckDB once this many rows are pending,
_APPLY_S = 0.25  # or the oldest has waited this long (or a query or a request waits)
_PENDING_MAX = 1_000_000  # past this many rows pending, pushes take the writer's way
_LOG_ROUNDS = 4  # turns of the event loop a log write waits for more pushes to join it
# Errors that blame a record's data (a value no column takes, a stream that is gone): only
# then is a record set aside. Anything else (the disk, memory, an interrupt) is retried.
_DATA_ERRORS = (duckdb.ConversionException, duckdb.InvalidInputException,
                duckdb.ConstraintException, duckdb.BinderException, duckdb.CatalogException,
                duckdb.OutOfRangeException, LookupError, ValueError, pa.ArrowTypeError)


class EventStreams:
    """Ingestion, corrections and backfills of event streams (``ws.events``)."""

    def __init__(self, store: LocalStore, settings: Callable[[], dict[str, Any]]) -> None:
        self._store = store
        self._settings = settings  # the workspace's settings in force, read at each ingest
        self._schemas = StreamSchemas(store, settings)
        self._turn = threading.Condition()  # guards everything below
        self._queue: list[_Pending] = []  # for the writer: the transactional way
        self._writer: threading.Thread | None = None
        self._closed = False
        self._in_progress = self._peak = 0  # async pushes under way, and the recent most
        self._peak_at = 0.0
        # The logged way (see eventlog.py): pushes whose ids all miss the stream's id index
        # are answered once in the event log; the writer applies the log to DuckDB later.
        self._log = EventLog(store.home / "events.log")
        self._indexes: dict[str, IdIndex] = {}  # streams pushed to the logged way
        self._slow: dict[str, int] = {}  # stream -> its requests queued for the writer
        self._logq: list[_Logged] = []  # admitted, to be written by the next _write_log
        self._log_writing = threading.Lock()  # one _write_log at a time: tickets in order
        self._log_soon: set[asyncio.AbstractEventLoop] = set()  # loops with a write due
        self._tickets = self._logged = 0  # logged pushes admitted / written or failed
        self._pending: list[Record] = []  # in the log, not yet in DuckDB
        self._pending_rows = 0
        self._pending_since = 0.0
        self._logged_seq = 0  # the last record written to the log
        self._applied_seq = 0  # the last record committed to DuckDB (or set aside)
        self._recover()

    def close(self) -> None:
        """Write what is queued and apply the event log, then stop the threads."""
        with self._turn:
            self._closed = True
            self._turn.notify_all()
        self._write_log()  # (pushes admitted while the event loop stopped)
        with self._turn:
            writer = self._writer
        if writer is not None:
            writer.join()
        try:
            self._apply_pending()  # (the writer may have ended before the last records)
        except Exception:  # noqa: BLE001 - they stay in the log: applied at the next opening
            log.exception("applying the event log at close failed")
        finally:
            self._log.close()

    def flush(self) -> None:
        """Apply every answered push to DuckDB: called before a query reads an event stream
        (a 2xx promises that the next query sees the events)."""
        with self._turn:
            if self._applied_seq >= self._logged_seq and self._logged == self._tickets:
                return
        self._enqueue(_Pending("", [], None, flush=True)).result()

    # -- streams -------------------------------------------------------------------------------
    def streams(self) -> list[StreamConfig]:
        return [self._schemas.describe(name) for name in self._schemas.names()]

    def stream(self, name: str) -> StreamConfig:
        return self._schemas.describe(name)

    def create_stream(self, name: str, *, id_field: str = "id", timestamp_field: str = "timestamp",
                      customer_field: str = "customer_id",
                      schema: dict[str, str] | None = None) -> StreamConfig:
        """Create a stream explicitly: to name its required fields, or to declare (and then
        enforce) its columns."""
        if not is_name(name):
            raise InvalidSourceError(f"'{name}' is not a valid stream name",
                                     hint="use a lowercase identifier: letters, digits and _")
        with self._schemas.transaction() as tx:
            tx.create(StreamConfig(name, id_field, timestamp_field, customer_field,
                                   declared=schema is not None), dict(schema or {}))
        self._store.refresh_catalog()
        return self.stream(name)

    # -- ingestion -----------------------------------------------------------------------------
    def ingest(self, stream: str, events: list[Any], *, backfill: str | None = None
               ) -> list[Outcome]:
        """Store valid events, report every event's outcome. Valid events are stored even
        when others are rejected; stored means committed when this returns.

        Calls from several threads at once are written in one transaction (a group commit):
        one writer thread writes everything queued while it wrote the previous group."""
        self._refuse_closed_backfill(stream, backfill)
        return self._submit(_Pending(stream, events, backfill)).result()

    def ingest_body(self, stream: str, data: bytes, content_type: str, *,
                    backfill: str | None = None) -> list[Outcome]:
        """:meth:`ingest` for a request body (see :func:`parse_body`). An NDJSON batch whose
        events fit the stream's columns is checked and written as columns, without a Python
        loop over its events."""
        return self._submit(self._prepare(stream, data, content_type, backfill)).result()

    async def ingest_body_async(self, stream: str, data: bytes, content_type: str, *,
                                backfill: str | None = None) -> list[Outcome]:
        """:meth:`ingest_body` for an event loop, which it does not block: a large body is
        read in a worker thread, a small one (a single event) in the loop, and the wait for
        the write holds no thread. A push whose events are all valid, new and fit the
        stream's columns is answered once it is in the event log (the logged way); any
        other goes through the writer's transaction (the transactional way)."""
        loop = asyncio.get_running_loop()
        if len(data) > _READ_INLINE:
            item, logged = await asyncio.to_thread(self._prepare_logged, stream, data,
                                                   content_type, backfill, loop)
        else:
            item, logged = self._prepare_logged(stream, data, content_type, backfill, loop)
        if logged is not None:
            with self._turn:
                soon = loop in self._log_soon
                self._log_soon.add(loop)
            if not soon:  # written once the loop has read the requests that came with it
                loop.call_soon(self._write_soon, 0, 0)
            return await logged
        self._arrivals(+1)
        try:
            return await asyncio.wrap_future(self._submit(item))
        finally:
            self._arrivals(-1)

    def _prepare_logged(self, stream: str, data: bytes, content_type: str,
                        backfill: str | None, loop: asyncio.AbstractEventLoop
                        ) -> tuple[_Pending, asyncio.Future | None]:
        item = self._prepare(stream, data, content_type, backfill)
        return item, self._admit(item, loop)

    def _arrivals(self, step: int) -> None:
        """Count the requests in progress, and remember the most seen at once lately: the
        writer waits briefly for that many (see :meth:`_write_queued`)."""
        with self._turn:
            self._in_progress += step
            self._note_peak()

    def _note_peak(self) -> None:
        """(Under ``_turn``.) The most requests in progress at once within _PEAK_S."""
        now = time.monotonic()
        if self._in_progress >= self._peak or now - self._peak_at > _PEAK_S:
            self._peak, self._peak_at = self._in_progress, now

    def _prepare(self, stream: str, data: bytes, content_type: str,
                 backfill: str | None) -> _Pending:
        self._refuse_closed_backfill(stream, backfill)
        kind = media_type(content_type)
        settings = self._settings()
        if kind not in NDJSON_TYPES:
            return _Pending(stream, parse_body(data, content_type, Limits.of(settings)),
                            backfill, body=(kind, data))
        # Arrow's JSON reader takes any bytes in a string: UTF-8 is checked here, before a
        # row is read as columns (else the event would be answered, then refused by DuckDB).
        check_utf8(data, kind)
        typed = None
        config = self._schemas.cached(stream)
        if backfill is None and config is not None:
            # Parsed and checked here, in the caller's thread and outside the writer, so that
            # requests arriving together use both cores; the writer only claims and inserts.
            typed = checked_columns(config, data, AcceptWindow.of(settings),
                                    Limits.of(settings))
        return _Pending(stream, [], backfill, raw=data, typed=typed)

    def _submit(self, item: _Pending) -> Future:
        """Queue ``item`` for the writer thread; the future gets its outcomes (or error)."""
        if not is_name(item.stream):
            raise InvalidSourceError(f"'{item.stream}' is not a valid stream name",
                                     hint="use a lowercase identifier: letters, digits and _")
        return self._enqueue(item)

    def _enqueue(self, item: _Pending) -> Future:
        with self._turn:
            if self._closed:
                raise WorkspaceError("the workspace is closed: events are not taken",
                                     hint="retry against a running server")
            self._queue.append(item)
            if not item.flush:  # the logged way stays shut for the stream until it is written
                self._slow[item.stream] = self._slow.get(item.stream, 0) + 1
            self._start_writer()
            self._turn.notify_all()
        return item.future

    def _start_writer(self) -> None:
        """(Under ``_turn``.)"""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_queued, daemon=True,
                                            name="meterql-events-writer")
            self._writer.start()

    def _write_queued(self) -> None:
        """The writer thread: applies the event log's records when enough are pending (or a
        query or a request waits), and writes each group of queued requests, everything
        queued while the previous one was written, after what the log holds before them."""
        while True:
            with self._turn:
                group = self._next_group()
                if group is None:
                    # Closed, or idle: the thread ends (it holds the workspace; a workspace
                    # that is dropped without close() must not be kept alive by it). The next
                    # _enqueue or log write starts a new one.
                    self._writer = None
                    return
                upto = self._tickets  # logged pushes admitted before these requests
            # A request cancelled while queued (its client went away, so it got no answer and
            # will retry) is dropped; the others can no longer be cancelled.
            taken = [item.stream for item in group if not item.flush]
            group = [item for item in group if item.future.set_running_or_notify_cancel()]
            requests = [item for item in group if not item.flush]
            try:
                self._apply_logged(upto)
                if requests:
                    self._write_group(requests)
            except BaseException as exc:  # noqa: BLE001 - every caller must get an answer
                if not group:
                    log.exception("applying the event log failed; retried in %.1f s, and "
                                  "at the next opening", _APPLY_S)
                    if self._closed:  # (the records stay in the log for the next opening)
                        with self._turn:
                            self._writer = None
                        return
                for item in group:
                    item.error = item.error or exc
            if taken:
                self._note_written(requests, taken)
            for item in group:
                if item.error is not None:
                    item.future.set_exception(item.error)
                else:
                    item.future.set_result(item.outcomes or [])

    def _next_group(self) -> list[_Pending] | None:
        """(Under ``_turn``, in the writer.) Wait for work: queued requests (the group), or
        log records due to be applied (an empty group); None when the thread should end."""
        while True:
            if self._queue:
                break
            if self._pending and (self._closed or self._pending_rows >= _APPLY_ROWS
                                  or time.monotonic() - self._pending_since >= _APPLY_S):
                return []
            if self._closed and not self._pending:
                return None
            wait = (self._pending_since + _APPLY_S - time.monotonic()) if self._pending \
                else _IDLE_S
            if not self._turn.wait(max(wait, 0.001)) and not (
                    self._queue or self._pending or self._closed):
                return None
        # Group commit delay: when more requests were in progress together lately (_PEAK_S)
        # than are queued now, wait up to _LINGER_S for them, so that clients answered by one
        # commit are written together next time rather than in two alternating halves. Only
        # for real concurrency (_LINGER_PEAK requests), and not when a query waits (flush).
        self._note_peak()  # (no arrivals lately: the peak decays here)
        until = time.monotonic() + _LINGER_S
        while _LINGER_PEAK <= self._peak > len(self._queue) and not self._closed \
                and not any(item.flush for item in self._queue):
            left = until - time.monotonic()
            if left <= 0:
                break
            self._turn.wait(left)
        group, self._queue = self._queue, []
        return group

    def _note_written(self, requests: list[_Pending], taken: list[str]) -> None:
        """After a group: its ids go into the streams' id indexes (a stream's index is built
        from DuckDB on its first write), and the logged way opens again for its streams
        (``taken``: the stream of every request taken from the queue, cancelled or not)."""
        streams = set(taken)
        built: dict[str, IdIndex] = {}
        for stream in streams - set(self._indexes):
            if self._schemas.cached(stream) is not None:  # the stream exists
                try:
                    built[stream] = self._build_index(stream)
                except Exception:  # noqa: BLE001 - the stream just stays on the writer's way
                    log.exception("building the id index of stream %s failed", stream)
        with self._turn:
            self._indexes.update(built)
            for item in requests:
                index = self._indexes.get(item.stream)
                if index is not None and item.stream not in built and item.outcomes:
                    index.add(hashes(o.id for o in item.outcomes if o.status == "accepted"))
            for stream in taken:
                self._slow[stream] -= 1
                if not self._slow[stream]:
                    del self._slow[stream]

    def _build_index(self, stream: str) -> IdIndex:
        """The ids ``stream`` has taken, from DuckDB, once everything logged is applied (no
        push takes the logged way for a stream without an index, so none is missed)."""
        with self._turn:
            upto = self._tickets
        self._apply_logged(upto)
        with self._store.read() as cur:
            ids = cur.sql("SELECT id FROM local.__meterql__.event_ids WHERE stream = ?",
                          params=[stream]).to_arrow_table().column(0).to_pylist()
        return IdIndex(ids)

    # -- the logged way ------------------------------------------------------------------------
    def _admit(self, item: _Pending, loop: asyncio.AbstractEventLoop) -> asyncio.Future | None:
        """Take ``item`` the logged way, or None (the writer's way): every event valid and
        fitting the stream's columns as they are, ids distinct and all missing from the
        stream's id index, the stream not waiting for the writer. The future (of ``loop``)
        gets the outcomes once the events are in the log."""
        config = self._schemas.cached(item.stream)
        if item.backfill is not None or config is None or self._closed:
            return None
        if item.typed is not None:
            ids = item.typed.column(config.id_field).to_pylist()
            payload = rows_payload(item.stream, item.typed)
        elif item.body is not None:
            settings = self._settings()
            ids = storable_ids(config, item.events, AcceptWindow.of(settings),
                               Limits.of(settings))
            if ids is None:
                return None
            payload = body_payload(item.stream, *item.body)
        else:
            return None
        keys = hashes(ids)
        outcomes = Accepted(ids)
        with self._turn:
            index = self._indexes.get(item.stream)
            if (index is None or self._closed or item.stream in self._slow or self._log.broken
                    or self._pending_rows >= _PENDING_MAX or index.any_taken(keys)):
                return None
            index.add(keys)
            self._tickets += 1
            logged = _Logged(item.stream, payload, item.typed, item.body, keys, self._tickets,
                             outcomes, loop, loop.create_future())
            self._logq.append(logged)
        return logged.future

    def _write_soon(self, rounds: int, seen: int) -> None:
        """(In the event loop.) Write the log after two more turns of the loop, and then
        once no more pushes join: while pushes were admitted during the last turn, wait one
        more (at most _LOG_ROUNDS turns). Each write blocks the loop for a synchronous write,
        so fewer, fuller writes leave it more time for requests (16 clients, single events:
        about 2,050 -> 2,400 pushes/s). An idle loop turns in microseconds."""
        with self._turn:
            queued = len(self._logq)
        if rounds < 2 or (queued > seen and rounds < _LOG_ROUNDS):
            asyncio.get_running_loop().call_soon(self._write_soon, rounds + 1, queued)
        else:
            self._write_log()

    def _write_log(self) -> None:
        """Write every push admitted the logged way since the last call in one synchronous
        write, then answer them. Called in the event loop (see :meth:`_write_soon`; the loop
        waits for the write, but no thread has to be woken and then wait for the GIL), by
        the writer before it applies the log, and at close."""
        loop = _running_loop()
        with self._log_writing:
            with self._turn:
                batch, self._logq = self._logq, []
                self._log_soon.discard(loop)
            if batch:
                self._write_batch(batch)

    def _write_batch(self, batch: list[_Logged]) -> None:
        live = [item for item in batch if not item.future.cancelled()]  # (client gone)
        at = datetime.now(UTC)
        error: BaseException | None = None
        records: list[Record] = []
        try:
            if live:
                seqs = self._log.append([item.payload for item in live], at)
                records = [Record(seq, item.stream, at, item.rows, *_body_fields(item.body))
                           for seq, item in zip(seqs, live, strict=True)]
        except Exception as exc:  # noqa: BLE001 - handed to every push of the batch
            log.error("writing the event log %s failed: %s", self._log.path, exc)
            error = WorkspaceError(
                f"events could not be written to the event log {self._log.path}: {exc}",
                hint="retry; if it persists, check the disk of the workspace")
        with self._turn:
            self._logged = batch[-1].ticket
            for item in batch:
                if error is not None or item not in live:
                    index = self._indexes.get(item.stream)
                    if index is not None:
                        index.discard(item.keys)
            if records:
                if not self._pending:
                    self._pending_since = time.monotonic()
                self._logged_seq = records[-1].seq
                self._pending += records
                self._pending_rows += sum(r.size for r in records)
                self._start_writer()
            self._turn.notify_all()
        for stream in {item.stream for item in live} if error is None else ():
            self._store.mark(f"events.{stream}", at)
        here = _running_loop()
        for item in live:
            answer = error if error is not None else item.outcomes
            if item.loop is here:
                _settle(item.future, answer)
            else:
                with contextlib.suppress(RuntimeError):  # (its loop is closed: nobody waits)
                    item.loop.call_soon_threadsafe(_settle, item.future, answer)

    def _apply_logged(self, ticket: int) -> None:
        """Once every push admitted the logged way up to ``ticket`` is written (or failed),
        apply all the log holds to DuckDB."""
        self._write_log()
        with self._turn:
            while self._logged < ticket:
                self._turn.wait()
        self._apply_pending()

    def _apply_pending(self) -> None:
        """Apply the log's pending records to DuckDB in one transaction. On failure they stay
        pending (they are answered: never dropped) and the error is raised."""
        with self._turn:
            records, self._pending, self._pending_rows = self._pending, [], 0
        if not records:
            return
        try:
            self._apply(records)
        except BaseException:
            with self._turn:  # (those applied one by one before the failure stay applied)
                records = [r for r in records if r.seq > self._applied_seq]
                self._pending[:0] = records
                self._pending_rows += sum(r.size for r in records)
                self._pending_since = time.monotonic()
            raise

    def _apply(self, records: list[Record]) -> None:
        """Apply ``records`` in one transaction. One that cannot be stored (its data, not the
        disk, is at fault) must not hold back the others, nor every later query: the records
        are then applied one by one, and one that fails alone is set aside in
        ``events.unapplied.log`` with an error in the log (the checks made before it was
        answered are meant to make this impossible)."""
        try:
            self._apply_together(records)
        except _DATA_ERRORS as exc:
            try:
                self._apply_together(records)
                return
            except _DATA_ERRORS:
                pass
            if len(records) > 1:
                for record in records:
                    self._apply([record])
                return
            aside = self._store.home / "events.unapplied.log"
            log.error("an answered push to stream %s (event log record %d) cannot be stored "
                      "(%s: %s); it is kept in %s", records[0].stream, records[0].seq,
                      type(exc).__name__, str(exc)[:300], aside)
            set_aside(aside, records)
            with self._store.write() as cur:
                cur.execute("UPDATE local.__meterql__.event_log SET applied_seq = ?",
                            [records[0].seq])
            self._applied(records[0].seq)

    def _apply_together(self, records: list[Record]) -> None:
        by_stream: dict[str, list[Record]] = {}
        for record in records:
            by_stream.setdefault(record.stream, []).append(record)
        last = records[-1].seq
        try:
            self._apply_records(by_stream, last, careful=False)
        except duckdb.ConstraintException:
            self._apply_records(by_stream, last, careful=True)
        self._applied(last)

    def _applied(self, seq: int) -> None:
        """Records up to ``seq`` are committed: note it, and shrink the log (a failure there
        loses nothing, it only keeps the file longer, so it is logged, not raised)."""
        with self._turn:
            self._applied_seq = seq
        try:
            self._log.reset(seq)
        except OSError as exc:
            log.warning("the event log %s could not be shrunk: %s", self._log.path, exc)

    def _apply_records(self, by_stream: dict[str, list[Record]], last: int,
                       careful: bool) -> None:
        with self._schemas.transaction() as tx:
            for stream, records in by_stream.items():
                config = tx.config(stream)
                rows = _record_rows(config, records)
                taken = self._store_rows(tx, config, f"local.events.{quote_ident(stream)}", rows,
                                         [], None, None, _How(careful=careful, at=None))
                if taken:  # the id index is meant to make this impossible
                    log.error("stream %s: %d logged events had ids taken before (first: %s); "
                              "they were answered as accepted and are stored once", stream,
                              len(taken), taken[0])
            tx.cur.execute("UPDATE local.__meterql__.event_log SET applied_seq = ?", [last])

    def _recover(self) -> None:
        """At opening: apply what the event log holds past the last applied record (events
        answered before a crash)."""
        with self._store.write() as cur:
            cur.execute("INSERT INTO local.__meterql__.event_log SELECT 0 WHERE NOT EXISTS "
                        "(SELECT 1 FROM local.__meterql__.event_log)")
            applied = cur.execute("SELECT applied_seq FROM local.__meterql__.event_log"
                                  ).fetchone()[0]
        self._applied_seq = applied
        records = self._log.recover(applied)
        self._logged_seq = self._log.last_seq()
        if records:
            log.warning("applying %d event log records written before the last stop",
                        len(records))
            self._apply(records)
        else:
            self._log.reset(self._log.last_seq())

    def _write_group(self, group: list[_Pending]) -> None:
        """Everything queued, in one transaction: the requests for one stream are validated
        and written together (one id claim, one insert), then split back per request.

        Ids are claimed optimistically first (a plain insert into the id index, which refuses
        the whole statement if any id was taken before); only when that happens is the group
        written again, claiming id by id."""
        reshaped = False
        try:
            try:
                reshaped = self._write_all(group, careful=False)
            except duckdb.ConstraintException:  # an id seen before: duplicates to report
                reshaped = self._write_all(group, careful=True) or True
        except Exception as exc:
            # One request's failure must not fail the others: each is written on its own.
            # (Said in the log: were this to happen for every group, throughput would collapse
            # with every answer still right.)
            log.warning("group commit of %d requests failed (%s: %s); writing them one by one",
                        len(group), type(exc).__name__, str(exc)[:300])
            reshaped = True
            for item in group:
                item.outcomes = None
                try:
                    self._write_all([item], careful=True)
                except Exception as exc:  # noqa: BLE001 - handed to that request's caller
                    item.error = exc
        if reshaped:
            try:
                self._store.refresh_catalog()
            except Exception:  # the events are committed: their answers stand
                log.exception("refreshing the catalog after an event group failed")

    def _write_all(self, group: list[_Pending], careful: bool) -> bool:
        """The group in one transaction. The streams' watermarks are their rows' newest
        ``_ingested_at`` (set here, once per group), so no statement records them."""
        reshaped = False
        touched = set()
        with self._schemas.transaction() as tx:
            how = _How(careful=careful, at=datetime.now(UTC))  # once the store is ours
            for (stream, backfill), items in _by_stream(group).items():
                for item in items:
                    item.outcomes = None
                reshaped |= self._ingest_items(tx, stream, backfill, items, how)
                if backfill is None and _accepted(items):  # (backfills: when closed)
                    touched.add(stream)
        for stream in touched:
            self._store.mark(f"events.{stream}", how.at)
        return reshaped

    def _ingest_items(self, tx: EventsTransaction, stream: str, backfill: str | None,
                      items: list[_Pending], how: _How) -> bool:
        created = False
        try:
            config = tx.config(stream)
        except LookupError:
            config = tx.create(StreamConfig(stream), {})
            created = True
        settings = self._settings()
        window, limits = AcceptWindow.of(settings), Limits.of(settings)
        target = f"local.events.{quote_ident(stream)}"
        if backfill is not None:
            window = AcceptWindow.of_backfill(backfill,
                                              *self._open_backfill(tx.cur, backfill, stream))
            target = staged(stream)
        slow = [item for item in items if item.raw is None]
        ready = [item for item in items if item.typed is not None]
        if ready:
            self._store_ready(tx, config, target, backfill, ready, how)
        raw = [item for item in items if item.raw is not None and item.typed is None]
        if len(raw) > 1:  # several NDJSON requests: one columnar pass for all of them
            joined = self._fast(tx, config, b"\n".join(i.raw for i in raw), window, target,
                                backfill, how, limits)
            if joined is not None:
                start = 0
                for item in raw:
                    n = count_lines(item.raw)
                    item.outcomes = [replace(o, index=o.index - start)
                                     for o in joined[start:start + n]]
                    start += n
                raw = []
        for item in raw:
            item.outcomes = self._fast(tx, config, item.raw, window, target, backfill,
                                       how, limits)
            if item.outcomes is None:
                item.events = parse_body(item.raw, "application/x-ndjson", limits)
                slow.append(item)
        if not slow:
            return created
        events: list[Any] = []
        request: list[int] = []  # which request each event came with
        for number, item in enumerate(slow):
            events += item.events
            request += [number] * len(item.events)
        before = config
        outcomes, candidates, config = self._validate(tx, config, events, window, limits,
                                                      request)
        changed = config is not before
        if candidates:
            rows = [(event_id, event) for event_id, (_, _, event) in candidates.items()]
            self._store_rows(tx, config, target, events_to_table(config, rows),
                             [index for index, _, _ in candidates.values()], backfill, outcomes,
                             how)
        start = 0
        for item in slow:
            end = start + len(item.events)
            item.outcomes = [o if start == 0 else replace(o, index=o.index - start)
                             for o in outcomes[start:end]]
            start = end
        return created or changed

    def _validate(self, tx: EventsTransaction, config: StreamConfig, events: list[Any],
                  window: AcceptWindow, limits: Limits, request: list[int] | None = None):
        """Each event checked (the row way), the columns it needs added or widened: the
        outcomes of those refused, the others by id (first seen), and the stream's shape."""
        outcomes: list[Outcome | None] = [None] * len(events)
        candidates: dict[str, tuple[int, str, dict[str, Any]]] = {}
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
                problem, config = self._fit(tx, config, event, limits)
            if problem is not None:
                outcomes[index] = Outcome(index, event_id, "rejected", problem)
                continue
            digest = event_digest(event)
            if event_id in candidates:
                first = candidates[event_id]
                same = first[1] == digest
                here = request is None or request[first[0]] == request[index]
                where = "earlier in this batch" if here else "in another request just before"
                outcomes[index] = Outcome(
                    index, event_id, "duplicate" if same else "rejected",
                    f"the same event arrived {where}" if same else
                    f"id {event_id} arrived {where} with a different body")
                continue
            candidates[event_id] = (index, digest, event)
        return outcomes, candidates, config

    @staticmethod
    def _fit(tx: EventsTransaction, config: StreamConfig, event: dict[str, Any],
             limits: Limits) -> tuple[str | None, StreamConfig]:
        """Check each field against its column (:func:`check_fields`), then add or widen
        the columns the event needs: an event that is refused adds none, and one over a limit
        costs no DDL. The stream's shape after."""
        problem, new, widen = check_fields(config, event, limits)
        if problem is None and (new or widen):
            config = tx.change_columns(config, new, dict.fromkeys(widen, DECIMAL))
        return problem, config

    def _store_rows(self, tx: EventsTransaction, config: StreamConfig, target: str,
                    typed: pa.Table, index_of: list[int], backfill: str | None,
                    outcomes: list[Outcome | None] | None, how: _How) -> list[str]:
        """Claim the rows' ids (all distinct) in the id index, then insert the rows whose ids
        were new. Ids seen before, in any earlier call, are found at once whatever the
        stream's size. Not ``how.careful``: one plain insert claims every id, and raises
        ConstraintException if any was taken (the caller then retries carefully). Careful:
        ids are claimed one by one and the taken ones answered as duplicates or conflicts.
        Rows are stored with ``_ingested_at = how.at`` (or their own column of it). Fills
        ``outcomes`` at ``index_of`` (None: rows already answered, from the event log).
        Returns the ids that were taken before. The rows are registered on the transaction's
        cursor as ``incoming_events`` (replacing an earlier group's; the cursor ends with the
        transaction)."""
        if backfill is not None:
            tx.sync_staging(config)
        cur = tx.cur
        ident = quote_ident(config.id_field)
        stamped = INGESTED in typed.column_names  # (rows from the event log: their own time)
        fingerprint = fingerprint_of(typed)
        cur.register("incoming_events", typed)
        answer = outcomes is not None
        ids = typed.column(config.id_field).to_pylist() if answer or how.careful else []
        claim = (f"INSERT INTO local.__meterql__.event_ids SELECT ?, {ident}, {fingerprint},"
                 " ? FROM incoming_events")
        if not how.careful:
            cur.execute(claim, [config.name, backfill])
            claimed, taken = set(ids), []
        else:
            claimed = {r[0] for r in cur.execute(
                claim + " ON CONFLICT DO NOTHING RETURNING id",
                [config.name, backfill]).fetchall()}
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
        if claimed or not (answer or how.careful):
            keep = "" if not taken else f" WHERE NOT list_contains(?, {ident})"
            at = "" if stamped else ", ?::TIMESTAMPTZ AS _ingested_at"
            cur.execute(
                f"INSERT INTO {target} BY NAME SELECT *{at}, ?::VARCHAR AS _backfill "
                f"FROM incoming_events{keep}",
                ([] if stamped else [how.at]) + [backfill] + ([taken] if taken else []))
            if backfill is not None:
                cur.execute("UPDATE local.__meterql__.backfills SET events = events + ? "
                            "WHERE id = ?", [len(claimed), backfill])
        return taken

    def _fast(self, tx: EventsTransaction, config: StreamConfig, data: bytes, window: AcceptWindow,
              target: str, backfill: str | None, how: _How,
              limits: Limits) -> list[Outcome] | None:
        """An NDJSON batch whose events all fit the stream's columns as they are, checked and
        written as columns. None when anything is off: the event-by-event path then gives
        each event its reason."""
        typed = checked_columns(config, data, window, limits)
        if typed is None:
            return None
        outcomes: list[Outcome | None] = [None] * typed.num_rows
        self._store_rows(tx, config, target, typed, list(range(typed.num_rows)), backfill,
                         outcomes, how)
        return [o for o in outcomes if o is not None]

    def _store_ready(self, tx: EventsTransaction, config: StreamConfig, target: str,
                     backfill: str | None, items: list[_Pending], how: _How) -> None:
        """Requests whose rows were read and checked already: one claim and one insert for
        all of them when their ids are distinct, else one after the other."""
        tables = [item.typed for item in items]
        merged = pa.concat_tables(tables, promote_options="permissive")
        ids = merged.column(config.id_field)
        groups = [items] if pc.count_distinct(ids).as_py() == len(ids) else [[i] for i in items]
        for group in groups:
            table = group[0].typed if len(group) == 1 else merged
            outcomes: list[Outcome | None] = [None] * table.num_rows
            self._store_rows(tx, config, target, table, list(range(table.num_rows)),
                             backfill, outcomes, how)
            start = 0
            for item in group:
                n = item.typed.num_rows
                item.outcomes = [o if start == 0 else replace(o, index=o.index - start)
                                 for o in outcomes[start:start + n]]
                start += n

    # -- corrections ---------------------------------------------------------------------------
    def amend(self, stream: str, event_id: str, event: dict[str, Any],
              actor: str | None = None) -> Outcome:
        """Replace a stored event by a corrected one (same id); the original is kept in
        ``local.__meterql__.event_history``."""
        return self._correct(stream, event_id, event, actor)

    def void(self, stream: str, event_id: str, actor: str | None = None) -> Outcome:
        """Remove a stored event from usage; it is kept in the history, and its id stays
        taken (a retry of the original is a duplicate, not a new event)."""
        return self._correct(stream, event_id, None, actor)

    def _correct(self, stream, event_id, event, actor) -> Outcome:
        self.flush()  # the event may still be in the event log
        changed = False
        with self._schemas.transaction() as tx:
            cur = tx.cur
            config = tx.existing(stream)
            table = f"local.events.{quote_ident(stream)}"
            previous = cur.execute(
                f"SELECT to_json(t) FROM {table} t WHERE {quote_ident(config.id_field)} = ?",
                [event_id]).fetchall()
            if not previous:
                raise InvalidSourceError(
                    f"stream '{stream}' has no stored event with id {event_id}",
                    hint="only accepted, visible events can be amended or voided")
            if event is not None:
                event = dict(event)
                event[config.id_field] = event_id
                outcomes, rows, amended_config = self._validate_amend(tx, config, event)
                if rows is None:
                    return outcomes
                changed, config = amended_config is not config, amended_config
            cur.execute("INSERT INTO local.__meterql__.event_history (stream, id, action, "
                        "previous, actor) VALUES (?, ?, ?, ?, ?)",
                        [stream, event_id, "amend" if event is not None else "void",
                         previous[0][0], actor])
            id_column = quote_ident(config.id_field)
            backfill = cur.execute(f"SELECT _backfill FROM {table} WHERE {id_column} = ?",
                                   [event_id]).fetchall()[0][0]
            cur.execute(f"DELETE FROM {table} WHERE {quote_ident(config.id_field)} = ?", [event_id])
            if event is not None:
                amended = events_to_table(config, rows)
                cur.register("amended_event", amended)
                try:
                    digest = cur.execute(f"SELECT {fingerprint_of(amended)} "
                                         "FROM amended_event").fetchall()[0][0]
                    cur.execute("UPDATE local.__meterql__.event_ids SET body_hash = ? WHERE "
                                "stream = ? AND id = ?", [digest, stream, event_id])
                    cur.execute(f"INSERT INTO {table} BY NAME SELECT *, now() AS _ingested_at, "
                                "?::VARCHAR AS _backfill FROM amended_event", [backfill])
                finally:
                    cur.unregister("amended_event")
            self._store.touch(cur, f"events.{stream}")
        if changed:
            self._store.refresh_catalog()
        return Outcome(0, event_id, "amended" if event is not None else "voided")

    def _validate_amend(self, tx, config, event):
        far = timedelta(days=365 * 100)
        now = datetime.now(UTC)
        limits = Limits.of(self._settings())
        problem = None
        if holds_lone_surrogate(event):  # (an amend's body is parsed by FastAPI, not parse_body)
            problem = LONE_SURROGATE
        window = AcceptWindow(now - far, now + far)
        if problem is None:
            problem, when = row_problem(config, event, str(event[config.id_field]), window,
                                        limits)
            if when is not None:
                event[config.timestamp_field] = when
        if problem is None:
            problem, config = self._fit(tx, config, event, limits)
        if problem is not None:
            return Outcome(0, str(event[config.id_field]), "rejected", problem), None, config
        return None, [(str(event[config.id_field]), event)], config

    def history(self, stream: str, event_id: str | None = None) -> list[dict[str, Any]]:
        with self._store.read() as cur:
            rows = cur.execute(
                "SELECT id, action, previous, actor, changed_at "
                "FROM local.__meterql__.event_history "
                "WHERE stream = ? AND (? IS NULL OR id = ?) ORDER BY changed_at",
                [stream, event_id, event_id]).fetchall()
        return [{"id": r[0], "action": r[1], "previous": json.loads(r[2]), "actor": r[3],
                 "changed_at": r[4]} for r in rows]

    # -- backfills -----------------------------------------------------------------------------
    def open_backfill(self, stream: str, start: datetime, end: datetime) -> str:
        """A backfill: events for ``[start, end)`` ingested into it stay invisible to usage
        queries until it is closed; a closed backfill can be reverted."""
        if not start < end:
            raise ParameterError("a backfill's start must be before its end")
        backfill = "bf_" + uuid.uuid4().hex[:12]
        with self._schemas.transaction() as tx:
            tx.existing(stream)
            tx.cur.execute("INSERT INTO local.__meterql__.backfills (id, stream, starts, ends, "
                        "state) VALUES (?, ?, ?, ?, 'open')", [backfill, stream, start, end])
        return backfill

    def close_backfill(self, backfill: str) -> dict[str, Any]:
        self.flush()
        with self._store.write() as cur:
            stream, state = self._backfill(cur, backfill)
            if state != "open":
                raise ParameterError(f"backfill {backfill} is {state}, not open")
            staging = staged(stream)
            cur.execute(f"INSERT INTO local.events.{quote_ident(stream)} BY NAME SELECT * FROM "
                        f"{staging} WHERE _backfill = ?", [backfill])
            cur.execute(f"DELETE FROM {staging} WHERE _backfill = ?", [backfill])
            cur.execute("UPDATE local.__meterql__.backfills SET state = 'closed', closed_at = "
                        "now() WHERE id = ?", [backfill])
            self._store.touch(cur, f"events.{stream}")
        return self.backfill(backfill)

    def revert_backfill(self, backfill: str) -> dict[str, Any]:
        self.flush()
        with self._store.write() as cur:
            stream, state = self._backfill(cur, backfill)
            if state == "reverted":
                raise ParameterError(f"backfill {backfill} is already reverted")
            with self._turn:  # its ids are freed: the index is built again on the next write
                self._indexes.pop(stream, None)
            for table in (f"local.events.{quote_ident(stream)}",
                          staged(stream)):
                cur.execute(f"DELETE FROM {table} WHERE _backfill = ?", [backfill])
            cur.execute("DELETE FROM local.__meterql__.event_ids WHERE stream = ? AND "
                        "backfill = ?", [stream, backfill])
            cur.execute("UPDATE local.__meterql__.backfills SET state = 'reverted', "
                        "reverted_at = now() WHERE id = ?", [backfill])
            self._store.touch(cur, f"events.{stream}")
        return self.backfill(backfill)

    def backfill(self, backfill: str) -> dict[str, Any]:
        with self._store.read() as cur:
            rows = cur.execute("SELECT id, stream, starts, ends, state, events, opened_at, "
                               "closed_at, reverted_at FROM local.__meterql__.backfills "
                               "WHERE id = ?", [backfill]).fetchall()
        if not rows:
            raise ParameterError(f"no backfill {backfill}")
        keys = ("id", "stream", "start", "end", "state", "events", "opened_at", "closed_at",
                "reverted_at")
        return dict(zip(keys, rows[0], strict=True))

    def _backfill(self, cur, backfill: str) -> tuple[str, str]:
        rows = cur.execute("SELECT stream, state FROM local.__meterql__.backfills WHERE id = ?",
                           [backfill]).fetchall()
        if not rows:
            raise ParameterError(f"no backfill {backfill}",
                                 hint="open one with POST /v1/events/{stream}/backfills")
        return rows[0]

    def _refuse_closed_backfill(self, stream: str, backfill: str | None) -> None:
        """Raise now, before queueing, for a backfill that is not open for ``stream`` (a
        request failing inside a group commit makes the group be written one by one)."""
        if backfill is not None:
            with self._store.read() as cur:
                self._open_backfill(cur, backfill, stream)

    def _open_backfill(self, cur, backfill: str, stream: str) -> tuple[datetime, datetime]:
        rows = cur.execute("SELECT stream, state, starts, ends FROM local.__meterql__.backfills "
                           "WHERE id = ?", [backfill]).fetchall()
        if not rows or rows[0][0] != stream:
            raise ParameterError(f"stream '{stream}' has no backfill {backfill}")
        if rows[0][1] != "open":
            raise ParameterError(f"backfill {backfill} is {rows[0][1]}; events go into open "
                                 "backfills only")
        return rows[0][2], rows[0][3]

@dataclass(frozen=True)
class _How:
    """How a group is written: ids claimed carefully (one by one) or not, and its time."""

    careful: bool
    at: datetime | None  # None: the rows carry their own _ingested_at


@dataclass
class _Pending:
    """One caller's events waiting for a group commit."""

    stream: str
    events: list[Any]
    backfill: str | None
    raw: bytes | None = None  # an NDJSON body, tried as columns first
    typed: pa.Table | None = None  # its rows, already read and checked as columns
    body: tuple[str, bytes] | None = None  # a JSON body as it came: (media type, bytes)
    outcomes: list[Outcome] | None = None
    error: BaseException | None = None
    future: Future = field(default_factory=Future)
    flush: bool = False  # not a request: a query waiting for the event log to be applied


@dataclass(eq=False)
class _Logged:
    """A push taken the logged way, waiting for the log thread."""

    stream: str
    payload: bytes  # its log record's payload (eventlog.rows_payload or body_payload)
    rows: pa.Table | None  # its rows as columns (NDJSON), or
    body: tuple[str, bytes] | None  # its body: (media type, bytes)
    keys: list[int]  # its ids' hashes, added to the stream's id index
    ticket: int
    outcomes: Accepted
    loop: asyncio.AbstractEventLoop  # the pushing request's event loop,
    future: asyncio.Future  # of that loop (cheaper than a thread-safe future)


def _body_fields(body: tuple[str, bytes] | None) -> tuple[bytes | None, str]:
    """A logged body's (bytes, media type), in Record's order."""
    return (None, "") if body is None else (body[1], body[0])


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _settle(future: asyncio.Future, answer: Any) -> None:
    if not future.done():  # (cancelled meanwhile: its client went away)
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)


def _record_rows(config: StreamConfig, records: list[Record]) -> pa.Table:
    """A stream's logged records as one table of its columns plus ``_ingested_at``. Bodies
    are read again (their events were checked when logged; the stream's columns have only
    grown since, so they still fit): single-line JSON objects all at once by Arrow's reader
    (no Python per event in the writer, whose GIL the HTTP loop would wait for), the others,
    or all of them if Arrow refuses one, by :func:`parse_body`."""
    stamp = pa.timestamp("us", tz="UTC")
    tables, events, stamps = [], [], []
    lines = [r for r in records if r.rows is None and r.content_type == "application/json"
             and (r.body or b"").startswith(b"{") and b"\n" not in r.body
             and b"\r" not in r.body]
    if lines:
        typed = read_ndjson(config, b"\n".join(r.body for r in lines))
        if typed is not None and typed.num_rows == len(lines):
            tables.append(typed.append_column(INGESTED, pa.array([r.at for r in lines],
                                                                  stamp)))
            done = {id(r) for r in lines}
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




def _stored_hashes(cur, stream: str, ids: list[str]) -> list[tuple[str, str]]:
    if not ids:
        return []
    if len(ids) <= 64:  # a few retries: point lookups in the id index
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




def _accepted(items: list[_Pending]) -> bool:
    return any(o.status == "accepted" for i in items for o in i.outcomes or ())


def _by_stream(group: list[_Pending]) -> dict[tuple[str, str | None], list[_Pending]]:
    out: dict[tuple[str, str | None], list[_Pending]] = {}
    for item in group:
        out.setdefault((item.stream, item.backfill), []).append(item)
    return out
