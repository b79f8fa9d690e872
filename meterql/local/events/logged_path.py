"""The logged way: a push whose events are all valid, new and fit the stream's columns as they
are is answered once it is in the event log (``events.log``, see meterql/local/eventlog.py),
and applied to DuckDB later by the group-commit writer's thread.

1. :meth:`LoggedPath.admit` (the request's thread or the event loop): the stream is known, not
   busy in the writer, not in a backfill; every event passes the checks; no id is in the
   stream's :class:`~meterql.local.idindex.IdIndex`. The ids go into the index at once, and
   the push takes a *ticket* (admission order).
2. :meth:`LoggedPath.write_log` (in the event loop, a few turns later, for every push admitted
   meanwhile): one synchronous write, then the answers.
3. :meth:`LoggedPath.apply_through` (in the writer's thread, before each group and when the
   log is due): waits until every ticket up to the group's is written, then applies every
   pending record in one transaction. After a crash, :meth:`LoggedPath.recover` applies what
   was written but not applied.

Locks: ``_log_writing`` (one log write at a time, so tickets are written in order), then
``_lock`` (the id indexes, tickets and pending records), then the writer's lock (taken by
``busy``, which :meth:`admit` asks under ``_lock``, and by ``log_grew`` after a log write). See
the package's docstring for the whole order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from meterql.errors import WorkspaceError
from meterql.local import EVENT_LOG
from meterql.local.event_values import Limits
from meterql.local.eventlog import EventLog, Record, body_payload, rows_payload, set_aside
from meterql.local.events.checks import AcceptWindow, storable_ids
from meterql.local.events.fields import logged_rows
from meterql.local.events.insert import PendingRequest, WriteMode, insert_rows
from meterql.local.events.outcomes import Accepted
from meterql.local.events.schemas import StreamSchemas
from meterql.local.idindex import IdIndex, hashes
from meterql.local.store import LocalStore
from meterql.sql_text import quote_ident

log = logging.getLogger(__name__)

PENDING_MAX = 1_000_000  # past this many rows pending, pushes take the transactional way
LOG_ROUNDS = 4  # turns of the event loop a log write waits for more pushes to join it
# Errors that blame a record's data (a value no column takes, a stream that is gone): only
# then is a record set aside. Anything else (the disk, memory, an interrupt) is retried.
_DATA_ERRORS = (duckdb.ConversionException, duckdb.InvalidInputException,
                duckdb.ConstraintException, duckdb.BinderException, duckdb.CatalogException,
                duckdb.OutOfRangeException, LookupError, ValueError, pa.ArrowTypeError)


@dataclass(eq=False)
class LoggedPush:
    """A push admitted the logged way, waiting for its log write."""

    stream: str
    payload: bytes  # its log record's payload (eventlog.rows_payload or body_payload)
    rows: pa.Table | None  # its rows as columns (NDJSON), or
    body: tuple[str, bytes] | None  # its body: (media type, bytes)
    keys: list[int]  # its ids' hashes, added to the stream's id index
    ticket: int
    outcomes: Accepted
    loop: asyncio.AbstractEventLoop  # the pushing request's event loop,
    future: asyncio.Future  # of that loop (cheaper than a thread-safe future)


class LoggedPath:
    """The event log, the streams' id indexes, and the records waiting to be applied.

    Args:
        busy: whether the group-commit writer has a request of a stream queued or under way.
        log_grew: tells the writer that rows were logged (``failed``: an apply failed), so
            that it applies them in time.
    """

    def __init__(self, store: LocalStore, schemas: StreamSchemas,
                 settings: Callable[[], dict[str, Any]], busy: Callable[[str], bool],
                 log_grew: Callable[..., None]) -> None:
        self._store = store
        self._schemas = schemas
        self._settings = settings
        self._busy = busy
        self._log_grew = log_grew
        self._log = EventLog(store.home / EVENT_LOG)
        self._log_writing = threading.Lock()  # one write_log at a time: tickets in order
        self._lock = threading.Condition()  # guards everything below
        self._closed = False
        self._indexes: dict[str, IdIndex] = {}  # streams pushed to the logged way
        self._admitted: list[LoggedPush] = []  # to be written by the next write_log
        self._write_due: set[asyncio.AbstractEventLoop] = set()  # loops with a write coming
        self._tickets = self._written = 0  # pushes admitted / written (or failed)
        self._pending: list[Record] = []  # in the log, not yet in DuckDB
        self._pending_rows = 0
        self._logged_seq = 0  # the last record written to the log
        self._applied_seq = 0  # the last record committed to DuckDB (or set aside)

    # -- admission and log writes ---------------------------------------------------------------
    def admit(self, item: PendingRequest, loop: asyncio.AbstractEventLoop
              ) -> asyncio.Future | None:
        """Take ``item`` the logged way, or None (the transactional way). The future (of
        ``loop``) gets the outcomes once the events are in the log (see
        :meth:`schedule_write`). Any thread."""
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
        with self._lock:
            index = self._indexes.get(item.stream)
            if (index is None or self._closed or self._log.broken
                    or self._pending_rows >= PENDING_MAX or index.any_taken(keys)
                    or self._busy(item.stream)):
                return None
            index.add(keys)
            self._tickets += 1
            pushed = LoggedPush(item.stream, payload, item.typed, item.body, keys,
                                self._tickets, Accepted(ids), loop, loop.create_future())
            self._admitted.append(pushed)
        return pushed.future

    def schedule_write(self, loop: asyncio.AbstractEventLoop) -> None:
        """(In ``loop``, after :meth:`admit` took a push.) Have the log written once the loop
        has read the requests that came with it, unless a write is coming already."""
        with self._lock:
            scheduled = loop in self._write_due
            self._write_due.add(loop)
        if not scheduled:
            loop.call_soon(self._write_soon, 0, 0)

    def _write_soon(self, rounds: int, seen: int) -> None:
        """(In the event loop.) Write the log after two more turns of the loop, and then
        once no more pushes join: while pushes were admitted during the last turn, wait one
        more (at most LOG_ROUNDS turns). Each write blocks the loop for a synchronous write,
        so fewer, fuller writes leave it more time for requests. An idle loop turns in
        microseconds."""
        with self._lock:
            queued = len(self._admitted)
        if rounds < 2 or (queued > seen and rounds < LOG_ROUNDS):
            asyncio.get_running_loop().call_soon(self._write_soon, rounds + 1, queued)
        else:
            self.write_log()

    def write_log(self) -> None:
        """Write every push admitted since the last call in one synchronous write, then answer
        them. Called in the event loop (see :meth:`_write_soon`; the loop waits for the write,
        but no thread has to be woken and then wait for the GIL), by the writer before it
        applies the log, and at close."""
        loop = _running_loop()
        with self._log_writing:
            with self._lock:
                batch, self._admitted = self._admitted, []
                self._write_due.discard(loop)
            if batch:
                self._write_batch(batch)

    def _write_batch(self, batch: list[LoggedPush]) -> None:
        live = [item for item in batch if not item.future.cancelled()]  # (client gone)
        at = datetime.now(UTC)
        error: BaseException | None = None
        records: list[Record] = []
        try:
            if live:
                seqs = self._log.append([item.payload for item in live], at)
                records = [Record(seq, item.stream, at, item.rows, *_body_fields(item.body))
                           for seq, item in zip(seqs, live, strict=True)]
        except Exception as exc:  # handed to every push of the batch
            log.error("writing the event log %s failed: %s", self._log.path, exc)
            error = WorkspaceError(
                f"events could not be written to the event log {self._log.path}: {exc}",
                hint="retry; if it persists, check the disk of the workspace")
        with self._lock:
            self._written = batch[-1].ticket
            for item in batch:
                if error is not None or item not in live:
                    index = self._indexes.get(item.stream)
                    if index is not None:
                        index.discard(item.keys)
            rows = sum(r.size for r in records)
            if records:
                self._logged_seq = records[-1].seq
                self._pending += records
                self._pending_rows += rows
            self._lock.notify_all()
        if records:
            self._log_grew(rows)
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

    # -- what the writer asks ------------------------------------------------------------------
    def tickets(self) -> int:
        """The pushes admitted so far (the writer applies them before a group it has taken)."""
        with self._lock:
            return self._tickets

    def all_applied(self) -> bool:
        """Whether every answered push is in DuckDB."""
        with self._lock:
            return self._applied_seq >= self._logged_seq and self._written == self._tickets

    def apply_through(self, ticket: int) -> None:
        """Once every push admitted up to ``ticket`` is written (or failed), apply all the log
        holds to DuckDB."""
        self.write_log()
        with self._lock:
            while self._written < ticket:
                self._lock.wait()
        self.apply_pending()

    def apply_pending(self) -> None:
        """Apply the log's pending records to DuckDB in one transaction. On failure they stay
        pending (they are answered: never dropped), the writer is told to retry, and the
        error is raised."""
        with self._lock:
            records, self._pending, self._pending_rows = self._pending, [], 0
        if not records:
            return
        try:
            self._apply(records)
        except BaseException:
            with self._lock:  # (those applied one by one before the failure stay applied)
                records = [r for r in records if r.seq > self._applied_seq]
                rows = sum(r.size for r in records)
                self._pending[:0] = records
                self._pending_rows += rows
            self._log_grew(rows, failed=True)
            raise

    def note_written(self, requests: list[PendingRequest]) -> None:
        """(In the writer, after a group.) The ids its requests took go into their streams'
        id indexes; a stream without one gets it, built from DuckDB."""
        built: dict[str, IdIndex] = {}
        with self._lock:
            missing = {item.stream for item in requests} - set(self._indexes)
        for stream in missing:
            if self._schemas.cached(stream) is not None:  # the stream exists
                try:
                    built[stream] = self._build_index(stream)
                except Exception:  # the stream stays on the transactional way
                    log.exception("building the id index of stream %s failed", stream)
        with self._lock:
            self._indexes.update(built)
            for item in requests:
                index = self._indexes.get(item.stream)
                if index is not None and item.stream not in built and item.outcomes:
                    index.add(hashes(o.id for o in item.outcomes
                                      if o.status == "accepted" and o.id is not None))

    def forget_ids(self, stream: str) -> None:
        """A backfill of ``stream`` was reverted: its ids are freed, and the stream's id index
        is built again on its next write."""
        with self._lock:
            self._indexes.pop(stream, None)

    def _build_index(self, stream: str) -> IdIndex:
        """The ids ``stream`` has taken, from DuckDB, once everything logged is applied (no
        push takes the logged way for a stream without an index, so none is missed)."""
        self.apply_through(self.tickets())
        with self._store.read() as cur:
            ids = cur.sql("SELECT id FROM local.__meterql__.event_ids WHERE stream = ?",
                          params=[stream]).to_arrow_table().column(0).to_pylist()
        return IdIndex(ids)

    # -- applying ------------------------------------------------------------------------------
    def _apply(self, records: list[Record]) -> None:
        """Apply ``records`` in one transaction. One that cannot be stored (its data, not the
        disk, is at fault) must not hold back the others, nor every later query: the records
        are then applied one by one, and one that fails alone is set aside in
        ``events.unapplied.log`` with an error in the log (the checks made before it was
        answered are meant to make this impossible)."""
        try:
            self._apply_together(records)
        except _DATA_ERRORS as exc:
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
        try:
            self._apply_records(by_stream, records[-1].seq, claim_each=False)
        except duckdb.ConstraintException:
            self._apply_records(by_stream, records[-1].seq, claim_each=True)
        self._applied(records[-1].seq)

    def _apply_records(self, by_stream: dict[str, list[Record]], last: int,
                       claim_each: bool) -> None:
        with self._schemas.transaction() as tx:
            for stream, records in by_stream.items():
                config = tx.config(stream)
                taken = insert_rows(tx, config, f"local.events.{quote_ident(stream)}",
                                    logged_rows(config, records), [], None, None,
                                    WriteMode(claim_each, at=None))
                if taken:  # the id index is meant to make this impossible
                    log.error("stream %s: %d logged events had ids taken before (first: %s); "
                              "they were answered as accepted and are stored once", stream,
                              len(taken), taken[0])
            tx.cur.execute("UPDATE local.__meterql__.event_log SET applied_seq = ?", [last])

    def _applied(self, seq: int) -> None:
        """Records up to ``seq`` are committed: note it, and shrink the log (a failure there
        loses nothing, it only keeps the file longer, so it is logged, not raised)."""
        with self._lock:
            self._applied_seq = seq
        try:
            self._log.reset(seq)
        except OSError as exc:
            log.warning("the event log %s could not be shrunk: %s", self._log.path, exc)

    # -- opening and closing -------------------------------------------------------------------
    def recover(self) -> None:
        """At opening: apply what the event log holds past the last applied record (events
        answered before a crash)."""
        with self._store.write() as cur:
            cur.execute("INSERT INTO local.__meterql__.event_log SELECT 0 WHERE NOT EXISTS "
                        "(SELECT 1 FROM local.__meterql__.event_log)")
            applied = cur.execute("SELECT applied_seq FROM local.__meterql__.event_log"
                                  ).fetchall()[0][0]
        self._applied_seq = applied
        records = self._log.recover(applied)
        self._logged_seq = self._log.last_seq()
        if records:
            log.warning("applying %d event log records written before the last stop",
                        len(records))
            self._apply(records)
        else:
            self._log.reset(self._log.last_seq())

    def stop_admitting(self) -> None:
        with self._lock:
            self._closed = True

    def close(self) -> None:
        """(Once the writer has ended.) Apply what is left, then close the log file."""
        try:
            self.apply_pending()  # (the writer may have ended before the last records)
        except Exception:  # they stay in the log: applied at the next opening
            log.exception("applying the event log at close failed")
        finally:
            self._log.close()


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
