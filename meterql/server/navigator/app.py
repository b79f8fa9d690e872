"""The navigator's routes: sign-in, sign-out, the home page, its static files, and the pages
of ``pages/`` (one module each: ``NAV`` names its menu entry, ``router(ctx)`` its routes).

Every page declares its scope as the API's routes do (``Depends(Access(...))``), so the guard
checks the session before a byte of the body is read; a GET without a session is sent to the
sign-in form and back.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.resources import files
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

import meterql
from meterql.access.sessions import COOKIE, SessionStore
from meterql.errors import AuthenticationError
from meterql.server.guard import PUBLIC, Access
from meterql.server.navigator.forms import checked_form, session_of
from meterql.server.navigator.render import page

#: The page modules under meterql/server/navigator/pages, in menu order.
PAGES: tuple[str, ...] = ("sources", "tables", "workbench", "aggregates", "events", "uploads",
                           "manual", "keys")
STATIC = "/static/navigator"


@dataclass(frozen=True)
class NavContext:
    """What a page module's ``router(ctx)`` gets: the workspace, the sessions, and the
    dependencies that declare a route's scope."""

    ws: meterql.Workspace
    sessions: SessionStore
    read: DependsParam
    admin: DependsParam
    timeout: float


def install(app: FastAPI, ws: meterql.Workspace, sessions: SessionStore,
            timeout: float = 60.0) -> None:
    """Add the navigator to the API's app (before ``route_policies`` reads the routes)."""
    static = files("meterql.server.navigator") / "static"
    app.mount(STATIC, StaticFiles(directory=str(static)), name="navigator-static")
    ctx = NavContext(ws, sessions, Depends(Access("read")), Depends(Access("admin")), timeout)
    modules = [importlib.import_module(f"meterql.server.navigator.pages.{name}")
               for name in PAGES]
    menu = [module.NAV for module in modules]
    app.state.navigator_menu = menu
    app.include_router(_core(ctx))
    for module in modules:
        app.include_router(module.router(ctx))


def _core(ctx: NavContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/signin", dependencies=[Depends(PUBLIC)])
    async def signin_form(request: Request, next: str = "/") -> HTMLResponse:
        return page(request, "signin.html", next=_local(next), error=None)

    @router.post("/signin", dependencies=[Depends(PUBLIC)])
    async def signin(request: Request) -> Response:
        form = await request.form()
        key, target = str(form.get("key", "")), _local(str(form.get("next", "/")))
        try:
            session = ctx.sessions.open(ctx.ws.keys, key)
        except AuthenticationError as exc:
            return page(request, "signin.html", status_code=401, next=target, error=exc)
        answer = RedirectResponse(target, status_code=303)
        answer.set_cookie(COOKIE, session.id, httponly=True, samesite="strict", path="/",
                          secure=request.url.scheme == "https")
        return answer

    @router.post("/signout", dependencies=[ctx.read])
    async def signout(request: Request) -> Response:
        await checked_form(request)
        ctx.sessions.close(session_of(request).id)
        answer = RedirectResponse("/signin", status_code=303)
        answer.delete_cookie(COOKIE, path="/")
        return answer

    @router.get("/", dependencies=[ctx.read])
    async def home(request: Request) -> HTMLResponse:
        sources = ctx.ws.sources.list()
        return page(request, "home.html", sources=sources)

    return router


def _local(target: str) -> str:
    """``target`` if it is a path on this server, else ``/`` (no redirect elsewhere)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
