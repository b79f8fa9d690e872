"""Backfills: historical or corrected events loaded into a stream as one reviewable unit.

A backfill is opened over a time range; events pushed into it (``?backfill=ID``) must fall in
that range, however old, and wait in the stream's staging table
(``local.__meterql__.staged_<stream>``) where usage queries do not see them. Closing it moves
them into the stream; reverting a closed one takes them out again and frees their ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import duckdb

from meterql.errors import IngestError, UnknownBackfillError
from meterql.local.events.checks import AcceptWindow
from meterql.local.events.schemas import StreamSchemas, staged
from meterql.local.store import LocalStore
from meterql.sql_text import quote_ident

_FIELDS = ("id", "stream", "start", "end", "state", "events", "opened_at", "closed_at",
           "reverted_at")


def open_window(cur: duckdb.DuckDBPyConnection, backfill: str, stream: str) -> AcceptWindow:
    """The time range of ``backfill``, an open backfill of ``stream`` (else an error)."""
    rows = cur.execute("SELECT stream, state, starts, ends FROM local.__meterql__.backfills "
                       "WHERE id = ?", [backfill]).fetchall()
    if not rows or rows[0][0] != stream:
        raise UnknownBackfillError(f"stream '{stream}' has no backfill {backfill}")
    if rows[0][1] != "open":
        raise IngestError(f"backfill {backfill} is {rows[0][1]}; events go into open "
                             "backfills only")
    return AcceptWindow.of_backfill(backfill, rows[0][2], rows[0][3])


class Backfills:
    """Open, close, revert and describe backfills (``ws.events.*_backfill``).

    Args:
        flush: applies every answered push first (events in the event log may belong to the
            backfill).
        ids_freed: told the stream whose ids a revert freed (its id index must be built
            again); called inside the store's write transaction.
    """

    def __init__(self, store: LocalStore, schemas: StreamSchemas, flush: Callable[[], None],
                 ids_freed: Callable[[str], None]) -> None:
        self._store = store
        self._schemas = schemas
        self._flush = flush
        self._ids_freed = ids_freed

    def open(self, stream: str, start: datetime, end: datetime) -> str:
        """A backfill: events for ``[start, end)`` ingested into it stay invisible to usage
        queries until it is closed; a closed backfill can be reverted."""
        if not start < end:
            raise IngestError("a backfill's start must be before its end")
        backfill = "bf_" + uuid.uuid4().hex[:12]
        with self._schemas.transaction() as tx:
            tx.existing(stream)
            tx.cur.execute("INSERT INTO local.__meterql__.backfills (id, stream, starts, ends, "
                           "state) VALUES (?, ?, ?, ?, 'open')", [backfill, stream, start, end])
        return backfill

    def close(self, backfill: str) -> dict[str, Any]:
        self._flush()
        with self._store.write() as cur:
            stream, state = self._state(cur, backfill)
            if state != "open":
                raise IngestError(f"backfill {backfill} is {state}, not open")
            staging = staged(stream)
            cur.execute(f"INSERT INTO local.events.{quote_ident(stream)} BY NAME SELECT * FROM "
                        f"{staging} WHERE _backfill = ?", [backfill])
            cur.execute(f"DELETE FROM {staging} WHERE _backfill = ?", [backfill])
            cur.execute("UPDATE local.__meterql__.backfills SET state = 'closed', closed_at = "
                        "now() WHERE id = ?", [backfill])
            self._store.touch(cur, f"events.{stream}")
        return self.describe(backfill)

    def revert(self, backfill: str) -> dict[str, Any]:
        self._flush()
        with self._store.write() as cur:
            stream, state = self._state(cur, backfill)
            if state == "reverted":
                raise IngestError(f"backfill {backfill} is already reverted")
            self._ids_freed(stream)
            for table in (f"local.events.{quote_ident(stream)}", staged(stream)):
                cur.execute(f"DELETE FROM {table} WHERE _backfill = ?", [backfill])
            cur.execute("DELETE FROM local.__meterql__.event_ids WHERE stream = ? AND "
                        "backfill = ?", [stream, backfill])
            cur.execute("UPDATE local.__meterql__.backfills SET state = 'reverted', "
                        "reverted_at = now() WHERE id = ?", [backfill])
            self._store.touch(cur, f"events.{stream}")
        return self.describe(backfill)

    def describe(self, backfill: str) -> dict[str, Any]:
        with self._store.read() as cur:
            rows = cur.execute("SELECT id, stream, starts, ends, state, events, opened_at, "
                               "closed_at, reverted_at FROM local.__meterql__.backfills "
                               "WHERE id = ?", [backfill]).fetchall()
        if not rows:
            raise UnknownBackfillError(f"no backfill {backfill}")
        return dict(zip(_FIELDS, rows[0], strict=True))

    def recent(self, stream: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The backfills (of ``stream``, or of every stream), newest first, at most ``limit``."""
        with self._store.read() as cur:
            rows = cur.execute("SELECT id, stream, starts, ends, state, events, opened_at, "
                               "closed_at, reverted_at FROM local.__meterql__.backfills "
                               "WHERE ?::VARCHAR IS NULL OR stream = ? "
                               "ORDER BY opened_at DESC LIMIT ?",
                               [stream, stream, limit]).fetchall()
        return [dict(zip(_FIELDS, row, strict=True)) for row in rows]

    def refuse_unless_open(self, stream: str, backfill: str | None) -> None:
        """Raise now, before queueing, for a backfill that is not open for ``stream`` (a
        request failing inside a group commit makes the group be written one by one)."""
        if backfill is not None:
            with self._store.read() as cur:
                open_window(cur, backfill, stream)

    @staticmethod
    def _state(cur: duckdb.DuckDBPyConnection, backfill: str) -> tuple[str, str]:
        rows = cur.execute("SELECT stream, state FROM local.__meterql__.backfills WHERE id = ?",
                           [backfill]).fetchall()
        if not rows:
            raise UnknownBackfillError(f"no backfill {backfill}",
                                 hint="open one with POST /v1/events/{stream}/backfills")
        return rows[0]
