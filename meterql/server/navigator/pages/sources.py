"""The Sources page (scope ``read``): each source with its kind, mode and tables, a synced
source's replicas with their watermarks, its last and next scheduled sync and the last error
with its hint. Admins also test a source (``ws.sources.test``, as ``POST
/v1/sources/{name}/test``), switch its mode (``ws.sources.set_mode``, as ``PATCH
/v1/sources/{name}``) and sync it now: the page's script reads the NDJSON progress of ``POST
/v1/sync`` and shows it as it comes (static/sources.js)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from meterql.catalog import Source
from meterql.catalog.model import MODES
from meterql.errors import MeterqlError
from meterql.server.catalog_routes import source_json
from meterql.server.navigator.forms import checked_form
from meterql.server.navigator.render import HEADERS, page, render_fragment

NAV = ("Sources", "/sources", "read")


def source_view(request: Request, ws: Any, source: Source) -> dict[str, Any]:
    """What a source's card shows: the API's view of it (``source_json``), its replicas'
    watermarks and the server's sync schedule for it (``GET /v1/status``'s)."""
    view = source_json(ws, source)
    schedule = getattr(request.app.state, "sync_schedule", None)
    turns = schedule.status() if schedule is not None else {}
    view["schedule"] = turns.get(source.name)
    view["scheduled"] = schedule is not None
    view["every_s"] = schedule.interval(source.name) if schedule is not None else None
    marks = view["watermarks"]
    view["last_sync"] = max((m["synced_at"] for m in marks), default=None)
    return view


def router(ctx: Any) -> APIRouter:
    api = APIRouter(include_in_schema=False)
    ws = ctx.ws

    def views(request: Request) -> list[dict[str, Any]]:
        return [source_view(request, ws, s) for s in ws.sources()]

    @api.get("/sources", dependencies=[ctx.read])
    def sources(request: Request) -> HTMLResponse:
        return page(request, "sources.html", sources=views(request), modes=MODES,
                    tested={}, error=None)

    @api.get("/sources/{name}/card", dependencies=[ctx.read])
    def card(request: Request, name: str) -> HTMLResponse:
        """One source's card (htmx swaps it in after a sync)."""
        view = source_view(request, ws, ws.sources.get(name))
        return _fragment(request, "sources_card.html", s=view, tested=None)

    @api.post("/sources/{name}/test", dependencies=[ctx.admin])
    async def test(request: Request, name: str) -> Response:
        """Connect to the source: its version, or the error with its hint."""
        await checked_form(request)
        try:
            tested = {"ok": True, "version": await run_in_threadpool(ws.sources.test, name)}
        except MeterqlError as exc:
            tested = {"ok": False, "error": exc}
        if request.headers.get("hx-request"):
            return _fragment(request, "sources_test.html", tested=tested)
        return page(request, "sources.html", sources=await run_in_threadpool(views, request),
                    modes=MODES, tested={name: tested}, error=None)

    @api.post("/sources/{name}/mode", dependencies=[ctx.admin])
    async def mode(request: Request, name: str) -> Response:
        """Switch the source between direct and sync mode."""
        form = await checked_form(request)
        try:
            source = await run_in_threadpool(ws.sources.set_mode, name, str(form.get("mode")))
        except MeterqlError as exc:
            return page(request, "sources.html", status_code=400,
                        sources=await run_in_threadpool(views, request), modes=MODES,
                        tested={}, error=exc)
        return RedirectResponse(f"/sources#source-{source.name}", status_code=303)

    return api


def _fragment(request: Request, template: str, **context: Any) -> HTMLResponse:
    session = request.scope["state"]["session"]
    html = render_fragment(template, admin=session.scope == "admin", csrf=session.csrf,
                           modes=MODES, **context)
    return HTMLResponse(html, headers=HEADERS)
