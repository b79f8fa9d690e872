"""The Events page: every stream with its fields, a stream's recent events (paged), its events
per hour as a chart, amend and void from a row (scope ``ingest``, the same library calls as
``POST /v1/events/{stream}/{id}/amend`` and ``/void``), and its backfills with their state."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from meterql import exact_json
from meterql.access.keys import SCOPES
from meterql.errors import InvalidBodyError, MeterqlError
from meterql.server.guard import Access
from meterql.server.navigator.forms import checked_form, session_of
from meterql.server.navigator.render import page
from meterql.server.stream_routes import stream_json
from meterql.sql_text import quote_ident

NAV = ("Events", "/events", "read")
PER_PAGE = 50
HOURS = 48  # hours shown in the chart, back from the stream's newest event


def can_ingest(request: Request) -> bool:
    """Whether the signed-in key may change data (ingest or admin)."""
    return SCOPES.index(session_of(request).scope) >= SCOPES.index("ingest")


def router(ctx: Any) -> APIRouter:
    ingest = Depends(Access("ingest"))
    api = APIRouter(include_in_schema=False)
    ws = ctx.ws

    def view(request: Request, stream: str | None, number: int, *, message: str | None = None,
             error: MeterqlError | None = None, amend: dict[str, Any] | None = None,
             status_code: int = 200) -> HTMLResponse:
        streams = [stream_json(c) for c in ws.events.streams()]
        chosen = next((s for s in streams if s["stream"] == stream),
                      streams[0] if streams and stream is None else None)
        context: dict[str, Any] = {"streams": streams, "chosen": chosen, "message": message,
                                   "error": error, "amend": amend, "page_number": number,
                                   "per_page": PER_PAGE, "editable": can_ingest(request),
                                   "wanted": stream}
        if chosen is not None:
            context.update(_stream_view(ws, chosen, number))
        return page(request, "events.html", status_code=status_code, **context)

    @api.get("/events", dependencies=[ctx.read])
    def events(request: Request, stream: str | None = None, page_number: int = 1,
               voided: str | None = None, amended: str | None = None) -> HTMLResponse:
        message = (f"Event {voided} was voided." if voided else
                   f"Event {amended} was amended." if amended else None)
        return view(request, stream, max(page_number, 1), message=message)

    @api.post("/events/{stream}/{event_id}/void", dependencies=[ingest])
    async def void(request: Request, stream: str, event_id: str) -> Response:
        form = await checked_form(request)
        number = _page_of(form)
        try:
            outcome = await run_in_threadpool(ws.events.void, stream, event_id,
                                              actor=session_of(request).key_id)
        except MeterqlError as exc:
            return view(request, stream, number, error=exc, status_code=exc_status(exc))
        if outcome.status == "rejected":
            error = InvalidBodyError(outcome.reason or f"event {event_id} was not voided")
            return view(request, stream, number, error=error, status_code=422)
        return RedirectResponse("/events?" + urlencode(
            {"stream": stream, "page_number": number, "voided": event_id}), status_code=303)

    @api.get("/events/{stream}/{event_id}/amend", dependencies=[ingest])
    def amend_form(request: Request, stream: str, event_id: str,
                   page_number: int = 1) -> HTMLResponse:
        try:
            config = ws.events.stream(stream)
            row = _event(ws, stream, config.id_field, event_id)
        except MeterqlError as exc:
            return view(request, stream, page_number, error=exc, status_code=exc_status(exc))
        text = _event_text(row) if row else ""
        amend = {"id": event_id, "text": text, "found": row is not None}
        return view(request, stream, page_number, amend=amend)

    @api.post("/events/{stream}/{event_id}/amend", dependencies=[ingest])
    async def amend(request: Request, stream: str, event_id: str) -> Response:
        form = await checked_form(request)
        number, text = _page_of(form), str(form.get("event", ""))
        redo = {"id": event_id, "text": text, "found": True}
        try:
            event = exact_json.loads(text)
            if not isinstance(event, dict):
                raise ValueError("it is not a JSON object")
        except (ValueError, RecursionError) as exc:
            error = InvalidBodyError(f"the event is not a JSON object: {exc}",
                                     hint="the whole event, with its id, timestamp and "
                                          "customer, as a JSON object")
            return view(request, stream, number, error=error, amend=redo, status_code=422)
        try:
            outcome = await run_in_threadpool(ws.events.amend, stream, event_id, event,
                                              actor=session_of(request).key_id)
        except MeterqlError as exc:
            return view(request, stream, number, error=exc, amend=redo,
                        status_code=exc_status(exc))
        if outcome.status == "rejected":
            error = InvalidBodyError(outcome.reason or f"event {event_id} was not amended")
            return view(request, stream, number, error=error, amend=redo, status_code=422)
        return RedirectResponse("/events?" + urlencode(
            {"stream": stream, "page_number": number, "amended": event_id}), status_code=303)

    return api


def exc_status(exc: MeterqlError) -> int:
    from meterql.server.problems import status_of

    return status_of(exc)


def _page_of(form: Any) -> int:
    try:
        return max(int(str(form.get("page_number", "1"))), 1)
    except ValueError:
        return 1


def _table(stream: str) -> str:
    return f"local.events.{quote_ident(stream)}"


def _stream_view(ws: Any, stream: dict[str, Any], number: int) -> dict[str, Any]:
    """A stream's recent events (page ``number``, newest first), its count, its events per
    hour over the last :data:`HOURS` hours before its newest event, and its backfills."""
    table, ts = _table(stream["stream"]), quote_ident(stream["timestamp_field"])
    key = quote_ident(stream["id_field"])
    total = ws.query(f"SELECT count(*) AS n FROM {table}").rows()[0][0]
    result = ws.query(f"SELECT * FROM {table} ORDER BY {ts} DESC, {key} LIMIT :n OFFSET :o",
                      {"n": PER_PAGE, "o": (number - 1) * PER_PAGE})
    columns = [c for c in result.columns if not c.startswith("_")]
    rows = [{c: row[c] for c in columns} for row in result.to_pylist()]
    counted = dict(ws.query(
        f"SELECT date_trunc('hour', {ts}) AS hour, count(*) AS n FROM {table} "
        f"WHERE {ts} >= date_trunc('hour', (SELECT max({ts}) FROM {table})) "
        f"- INTERVAL {HOURS - 1} HOUR GROUP BY 1").rows())
    hours = ([max(counted) - timedelta(hours=h) for h in range(HOURS - 1, -1, -1)]
             if counted else [])
    chart = {"labels": [h.strftime("%Y-%m-%d %H:00") for h in hours],
             "counts": [counted.get(h, 0) for h in hours],
             "label": f"{stream['stream']}: events per hour (UTC)"}
    return {"total": total, "columns": columns, "rows": rows,
            "pages": max((total + PER_PAGE - 1) // PER_PAGE, 1),
            "chart": json.dumps(chart), "backfills": ws.events.backfills(stream["stream"])}


def _event(ws: Any, stream: str, id_field: str, event_id: str) -> dict[str, Any] | None:
    """A stored event's fields (those not kept for meterql), or None."""
    rows = ws.query(f"SELECT * FROM {_table(stream)} WHERE {quote_ident(id_field)} = :id",
                    {"id": event_id}).to_pylist()
    if not rows:
        return None
    return {k: v for k, v in rows[0].items() if not k.startswith("_") and v is not None}


def _event_text(row: dict[str, Any]) -> str:
    """An event as JSON to edit, one field a line, numbers exact, times ISO 8601."""
    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, date | time) else value

    return "{\n" + ",\n".join(f"  {json.dumps(k, ensure_ascii=False)}: "
                               f"{exact_json.dumps(plain(v))}" for k, v in row.items()) + "\n}"
