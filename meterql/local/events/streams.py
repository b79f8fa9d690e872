"""The event streams of a workspace (``ws.events``): ingestion, corrections, backfills."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from meterql.errors import InvalidSourceError, WorkspaceError
from meterql.local.event_values import Limits
from meterql.local.eventlog import EventLog, Record, body_payload, rows_payload, set_aside
from meterql.local.events.backfills import Backfills
from meterql.local.events.body import NDJSON_TYPES, check_utf8, media_type, parse_body
from meterql.local.events.checks import AcceptWindow, checked_columns, storable_ids
from meterql.local.events.corrections import Corrections
from meterql.local.events.fields import events_to_table, read_ndjson
from meterql.local.events.insert import PendingRequest, WriteMode, insert_rows, write_group
from meterql.local.events.outcomes import Accepted, Outcome
from meterql.local.events.schemas import INGESTED, StreamConfig, StreamSchemas
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
        self._backfills = Backfills(store, self._schemas, self.flush, self._forget_ids)
        self._corrections = Corrections(store, self._schemas, settings, self.flush)
        self._turn = threading.Condition()  # guards everything below
        self._queue: list[PendingRequest] = []  # for the writer: the transactional way
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
        self._enqueue(PendingRequest("", [], None, flush=True)).result()

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
        self._backfills.refuse_unless_open(stream, backfill)
        return self._submit(PendingRequest(stream, events, backfill)).result()

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
                        ) -> tuple[PendingRequest, asyncio.Future | None]:
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
                 backfill: str | None) -> PendingRequest:
        self._backfills.refuse_unless_open(stream, backfill)
        kind = media_type(content_type)
        settings = self._settings()
        if kind not in NDJSON_TYPES:
            return PendingRequest(stream, parse_body(data, content_type, Limits.of(settings)),
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
        return PendingRequest(stream, [], backfill, raw=data, typed=typed)

    def _submit(self, item: PendingRequest) -> Future:
        """Queue ``item`` for the writer thread; the future gets its outcomes (or error)."""
        if not is_name(item.stream):
            raise InvalidSourceError(f"'{item.stream}' is not a valid stream name",
                                     hint="use a lowercase identifier: letters, digits and _")
        return self._enqueue(item)

    def _enqueue(self, item: PendingRequest) -> Future:
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
                    write_group(self._store, self._schemas, self._settings(), requests)
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

    def _next_group(self) -> list[PendingRequest] | None:
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

    def _note_written(self, requests: list[PendingRequest], taken: list[str]) -> None:
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
    def _admit(self, item: PendingRequest, loop: asyncio.AbstractEventLoop
               ) -> asyncio.Future | None:
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
                taken = insert_rows(tx, config, f"local.events.{quote_ident(stream)}", rows, [],
                                    None, None, WriteMode(claim_each=careful, at=None))
                if taken:  # the id index is meant to make this impossible
                    log.error("stream %s: %d logged events had ids taken before (first: %s); "
                              "they were answered as accepted and are stored once", stream,
                              len(taken), taken[0])
            tx.cur.execute("UPDATE local.__meterql__.event_log SET applied_seq = ?", [last])

    def _forget_ids(self, stream: str) -> None:
        """A backfill of ``stream`` was reverted: its ids are freed, and the stream's id index
        is built again on its next write."""
        with self._turn:
            self._indexes.pop(stream, None)

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

    # -- corrections ---------------------------------------------------------------------------
    def amend(self, stream: str, event_id: str, event: dict[str, Any],
              actor: str | None = None) -> Outcome:
        """Replace a stored event by a corrected one (same id); the original is kept in
        ``local.__meterql__.event_history``."""
        return self._corrections.amend(stream, event_id, event, actor)

    def void(self, stream: str, event_id: str, actor: str | None = None) -> Outcome:
        """Remove a stored event from usage; it is kept in the history, and its id stays
        taken (a retry of the original is a duplicate, not a new event)."""
        return self._corrections.void(stream, event_id, actor)

    def history(self, stream: str, event_id: str | None = None) -> list[dict[str, Any]]:
        return self._corrections.history(stream, event_id)

    # -- backfills -----------------------------------------------------------------------------
    def open_backfill(self, stream: str, start: datetime, end: datetime) -> str:
        """A backfill: events for ``[start, end)`` ingested into it stay invisible to usage
        queries until it is closed; a closed backfill can be reverted."""
        return self._backfills.open(stream, start, end)

    def close_backfill(self, backfill: str) -> dict[str, Any]:
        return self._backfills.close(backfill)

    def revert_backfill(self, backfill: str) -> dict[str, Any]:
        return self._backfills.revert(backfill)

    def backfill(self, backfill: str) -> dict[str, Any]:
        return self._backfills.describe(backfill)


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
