"""The event streams of a workspace (``ws.events``): a façade over the package's parts.

It reads each request (body.py, checks.py) in the caller's thread, then hands it to the logged
way (logged_path.py) or to the group-commit writer (group_commit.py), which writes it through
the one insert path (insert.py); corrections.py and backfills.py do the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from meterql.errors import IngestError
from meterql.local.event_values import Limits
from meterql.local.events.backfills import Backfills
from meterql.local.events.body import NDJSON_TYPES, check_utf8, media_type, parse_body
from meterql.local.events.checks import AcceptWindow, checked_columns
from meterql.local.events.corrections import Corrections
from meterql.local.events.group_commit import GroupCommitWriter
from meterql.local.events.insert import PendingRequest, write_group
from meterql.local.events.logged_path import LoggedPath
from meterql.local.events.outcomes import Outcome
from meterql.local.events.rates import RateMeter
from meterql.local.events.schemas import StreamConfig, StreamSchemas
from meterql.local.store import LocalStore
from meterql.sql_text import is_name

READ_INLINE = 16 << 10  # bodies up to this size are read in the event loop (async ingest)


class EventStreams:
    """Ingestion, corrections and backfills of event streams (``ws.events``)."""

    def __init__(self, store: LocalStore, settings: Callable[[], dict[str, Any]]) -> None:
        self._store = store
        self._settings = settings  # the workspace's settings in force, read at each ingest
        self._schemas = StreamSchemas(store, settings)
        self._writer = GroupCommitWriter(self._write)
        self._logged = LoggedPath(store, self._schemas, settings, busy=self._writer.is_busy,
                                  log_grew=self._writer.log_grew)
        self._backfills = Backfills(store, self._schemas, self.flush, self._logged.forget_ids)
        self._corrections = Corrections(store, self._schemas, settings, self.flush)
        #: Events accepted per stream: per second over the last minute, and since opening.
        self.rates = RateMeter()
        self._logged.recover()

    def close(self) -> None:
        """Write what is queued and apply the event log, then stop the threads."""
        self._logged.stop_admitting()
        self._writer.close()
        self._logged.write_log()  # (pushes admitted while the event loop stopped)
        self._writer.join()
        self._logged.close()

    def flush(self) -> None:
        """Apply every answered push to DuckDB: called before a query reads an event stream
        (a 2xx promises that the next query sees the events)."""
        if not self._logged.all_applied():
            self._writer.enqueue(PendingRequest("", [], None, flush=True)).result()

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
        _check_name(name)
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
        outcomes = self._submit(PendingRequest(stream, events, backfill)).result()
        self.rates.count(stream, outcomes)
        return outcomes

    def ingest_body(self, stream: str, data: bytes, content_type: str, *,
                    backfill: str | None = None) -> list[Outcome]:
        """:meth:`ingest` for a request body (see :func:`parse_body`). An NDJSON batch whose
        events fit the stream's columns is checked and written as columns, without a Python
        loop over its events."""
        outcomes = self._submit(self._prepare(stream, data, content_type, backfill)).result()
        self.rates.count(stream, outcomes)
        return outcomes

    async def ingest_body_async(self, stream: str, data: bytes, content_type: str, *,
                                backfill: str | None = None) -> list[Outcome]:
        """:meth:`ingest_body` for an event loop, which it does not block: a large body is
        read in a worker thread, a small one (a single event) in the loop, and the wait for
        the write holds no thread. A push whose events are all valid, new and fit the
        stream's columns is answered once it is in the event log (the logged way); any
        other goes through the writer's transaction (the transactional way)."""
        loop = asyncio.get_running_loop()
        if len(data) > READ_INLINE:
            item, logged = await asyncio.to_thread(self._prepare_and_admit, stream, data,
                                                   content_type, backfill, loop)
        else:
            item, logged = self._prepare_and_admit(stream, data, content_type, backfill, loop)
        if logged is not None:
            self._logged.schedule_write(loop)
            outcomes = await logged
        else:
            self._writer.arrivals(+1)
            try:
                outcomes = await asyncio.wrap_future(self._submit(item))
            finally:
                self._writer.arrivals(-1)
        self.rates.count(stream, outcomes)
        return outcomes

    def _prepare_and_admit(self, stream: str, data: bytes, content_type: str,
                           backfill: str | None, loop: asyncio.AbstractEventLoop
                           ) -> tuple[PendingRequest, asyncio.Future | None]:
        item = self._prepare(stream, data, content_type, backfill)
        return item, self._logged.admit(item, loop)

    def _prepare(self, stream: str, data: bytes, content_type: str,
                 backfill: str | None) -> PendingRequest:
        """A request read (and, for NDJSON into a known stream, checked as columns) in the
        caller's thread, outside the writer, so that requests arriving together use both
        cores; the writer only claims and inserts."""
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
            typed = checked_columns(config, data, AcceptWindow.of(settings),
                                    Limits.of(settings))
        return PendingRequest(stream, [], backfill, raw=data, typed=typed)

    def _submit(self, item: PendingRequest) -> Future:
        """Queue ``item`` for the writer thread; the future gets its outcomes (or error)."""
        _check_name(item.stream)
        return self._writer.enqueue(item)

    def _write(self, requests: list[PendingRequest]) -> None:
        """(The writer's work, in its thread.) First what the event log holds, up to the
        pushes admitted before this group; then the group; then its ids go into the id
        indexes, before its streams take logged pushes again."""
        try:
            self._logged.apply_through(self._logged.tickets())
            if requests:
                write_group(self._store, self._schemas, self._settings(), requests)
        finally:
            if requests:
                self._logged.note_written(requests)

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

    def backfills(self, stream: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The backfills of ``stream`` (or of every stream) with their state, newest first."""
        return self._backfills.recent(stream, limit)


def _check_name(stream: str) -> None:
    if not is_name(stream):
        raise IngestError(f"'{stream}' is not a valid stream name",
                                 hint="use a lowercase identifier: letters, digits and _")
