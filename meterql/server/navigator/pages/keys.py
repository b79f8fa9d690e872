"""API keys (admins only, as ``/v1/keys``): create one (shown once, with a copy button), the
list (id, name, scope, created, revoked), and revoke one after a confirmation. Revoking the key
of one's own session signs it out on its next request (the session checks its key each time)."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from meterql.access.keys import Scope, create_key
from meterql.errors import MeterqlError
from meterql.server.navigator.forms import checked_form, session_of
from meterql.server.navigator.render import page

NAV = ("Keys", "/keys", "admin")
SCOPES: tuple[str, ...] = get_args(Scope)


def router(ctx: Any) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    ws = ctx.ws

    def show(request: Request, status_code: int = 200, **extra: Any) -> HTMLResponse:
        context: dict[str, Any] = {"created": None, "error": None, "revoked": None, **extra}
        return page(request, "keys.html", status_code=status_code, keys=ws.keys.list(),
                    scopes=SCOPES, me=session_of(request).key_id, **context)

    @router.get("/keys", dependencies=[ctx.admin])
    def keys(request: Request, revoked: str | None = None) -> HTMLResponse:
        return show(request, revoked=revoked)

    @router.post("/keys", dependencies=[ctx.admin])
    async def create(request: Request) -> Response:
        form = await checked_form(request)
        scope, name = str(form.get("scope", "")), str(form.get("name", "")).strip()[:200]

        def made() -> HTMLResponse:
            try:
                key_id, key = create_key(ws.keys, scope, name or None)
            except MeterqlError as exc:
                return show(request, 422, error=exc)
            return show(request, 201, created={"id": key_id, "name": name, "scope": scope,
                                               "key": key})

        return await run_in_threadpool(made)

    @router.post("/keys/{key_id}/revoke", dependencies=[ctx.admin])
    async def revoke(request: Request, key_id: str) -> Response:
        await checked_form(request)
        if ws.keys.get(key_id) is None:
            return show(request, 404, error=MeterqlError(
                f"no API key with id '{key_id}'", hint="the list below shows the keys"))
        ws.keys.revoke(key_id)
        return RedirectResponse(f"/keys?revoked={key_id}", status_code=303)

    return router
