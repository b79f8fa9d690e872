"""Corrections of stored events: amend (replace by a corrected event, same id) and void (take
out of usage). The event as it was is kept in ``local.__meterql__.event_history`` with who
changed it; the id stays taken either way, so a retry of the original is never counted again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from meterql.errors import IngestError
from meterql.local.event_values import Limits
from meterql.local.events.body import LONE_SURROGATE, holds_lone_surrogate
from meterql.local.events.checks import AcceptWindow, row_problem
from meterql.local.events.fields import events_to_table, fingerprint_of
from meterql.local.events.insert import fit_event
from meterql.local.events.outcomes import Outcome
from meterql.local.events.schemas import EventsTransaction, StreamConfig, StreamSchemas
from meterql.local.store import LocalStore
from meterql.sql_text import quote_ident

#: How far from now an amended event's time may be (the push's window no longer applies).
_AMEND_REACH = timedelta(days=365 * 100)


class Corrections:
    """Amend, void and history of stored events (``ws.events.amend`` and the others).

    Args:
        flush: applies every answered push first (the event may still be in the event log).
    """

    def __init__(self, store: LocalStore, schemas: StreamSchemas,
                 settings: Callable[[], dict[str, Any]], flush: Callable[[], None]) -> None:
        self._store = store
        self._schemas = schemas
        self._settings = settings
        self._flush = flush

    def amend(self, stream: str, event_id: str, event: dict[str, Any],
              actor: str | None = None) -> Outcome:
        """Replace a stored event by a corrected one (same id); the original is kept in
        ``local.__meterql__.event_history``."""
        return self._correct(stream, event_id, event, actor)

    def void(self, stream: str, event_id: str, actor: str | None = None) -> Outcome:
        """Remove a stored event from usage; it is kept in the history, and its id stays
        taken (a retry of the original is a duplicate, not a new event)."""
        return self._correct(stream, event_id, None, actor)

    def history(self, stream: str, event_id: str | None = None) -> list[dict[str, Any]]:
        with self._store.read() as cur:
            rows = cur.execute(
                "SELECT id, action, previous, actor, changed_at "
                "FROM local.__meterql__.event_history "
                "WHERE stream = ? AND (? IS NULL OR id = ?) ORDER BY changed_at",
                [stream, event_id, event_id]).fetchall()
        return [{"id": r[0], "action": r[1], "previous": json.loads(r[2]), "actor": r[3],
                 "changed_at": r[4]} for r in rows]

    def _correct(self, stream: str, event_id: str, event: dict[str, Any] | None,
                 actor: str | None) -> Outcome:
        self._flush()
        with self._schemas.transaction() as tx:
            cur = tx.cur
            config = before = tx.existing(stream)
            table = f"local.events.{quote_ident(stream)}"
            id_column = quote_ident(config.id_field)
            previous = cur.execute(f"SELECT to_json(t), _backfill FROM {table} t WHERE "
                                   f"{id_column} = ?", [event_id]).fetchall()
            if not previous:
                raise IngestError(
                    f"stream '{stream}' has no stored event with id {event_id}",
                    hint="only accepted, visible events can be amended or voided")
            if event is not None:
                event = {**event, config.id_field: event_id}
                problem, config = self._check(tx, config, event)
                if problem is not None:
                    return Outcome(0, event_id, "rejected", problem)
            cur.execute("INSERT INTO local.__meterql__.event_history (stream, id, action, "
                        "previous, actor) VALUES (?, ?, ?, ?, ?)",
                        [stream, event_id, "amend" if event is not None else "void",
                         previous[0][0], actor])
            cur.execute(f"DELETE FROM {table} WHERE {id_column} = ?", [event_id])
            if event is not None:
                amended = events_to_table(config, [(event_id, event)])
                cur.register("amended_event", amended)
                try:
                    digest = cur.execute(f"SELECT {fingerprint_of(amended)} "
                                         "FROM amended_event").fetchall()[0][0]
                    cur.execute("UPDATE local.__meterql__.event_ids SET body_hash = ? WHERE "
                                "stream = ? AND id = ?", [digest, stream, event_id])
                    cur.execute(f"INSERT INTO {table} BY NAME SELECT *, now() AS _ingested_at, "
                                "?::VARCHAR AS _backfill FROM amended_event", [previous[0][1]])
                finally:
                    cur.unregister("amended_event")
            self._store.touch(cur, f"events.{stream}")
        if config is not before:
            self._store.refresh_catalog()
        return Outcome(0, event_id, "amended" if event is not None else "voided")

    def _check(self, tx: EventsTransaction, config: StreamConfig, event: dict[str, Any]
               ) -> tuple[str | None, StreamConfig]:
        """Why the corrected event is refused (or None), adding or widening the columns it
        needs: the checks of a push, but any time within a century from now."""
        if holds_lone_surrogate(event):  # (an amend's body is parsed by FastAPI, not parse_body)
            return LONE_SURROGATE, config
        now = datetime.now(UTC)
        limits = Limits.of(self._settings())
        window = AcceptWindow(now - _AMEND_REACH, now + _AMEND_REACH)
        problem, when = row_problem(config, event, str(event[config.id_field]), window, limits)
        if problem is not None:
            return problem, config
        event[config.timestamp_field] = when
        return fit_event(tx, config, event, limits)
