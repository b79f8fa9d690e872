"""The HTTP API (FastAPI): queries, aggregates, sources and tables under ``/v1``.

Every endpoint but ``/v1/health`` needs ``Authorization: Bearer KEY`` with a scope that covers
it; errors are ``application/problem+json``; OpenAPI is at ``/openapi.json`` and ``/docs``.

:func:`create_app` composes the route groups, one module each (``query_routes``,
``aggregate_routes``, ``catalog_routes``, ``stream_routes``, ``manual_routes``, ``ingest``,
``key_routes``, ``status_routes``, ``settings_routes``, ``source_routes``, ``sync_routes``),
and three plain ASGI
middlewares in front of FastAPI's routing, outermost first:

1. :class:`AccessLog` (access_log.py): a line per request; an unexpected error becomes a 500
   problem;
2. :class:`RequestGuard` (guard.py): the key, scope and body size of every request, from the
   policies read off the routes here, before any body is read;
3. :class:`EventPush` (push.py): answers ``POST /v1/events/{stream}`` itself, without FastAPI's
   routing, dependencies and request objects (the hot path).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from fastapi import Depends, FastAPI

import meterql
from meterql.access.sessions import SessionStore
from meterql.server import (
    aggregate_routes,
    catalog_routes,
    docs,
    ingest,
    key_routes,
    manual_routes,
    navigator,
    openapi,
    problems,
    query_routes,
    settings_routes,
    source_routes,
    status_routes,
    stream_routes,
    sync_routes,
)
from meterql.server.access_log import AccessLog
from meterql.server.guard import PUBLIC, Access, RequestGuard, route_policies
from meterql.server.push import EventPush
from meterql.sync.schedule import SyncSchedule, log_attempts


def create_app(ws: meterql.Workspace, *, timeout: float = 60.0, max_rows: int = 10_000_000,
               sync: bool = False, sync_every_s: float = 900.0,
               log: logging.Logger | None = None, owner_socket: str | None = None) -> FastAPI:
    """The API over one open workspace. ``timeout`` and ``max_rows`` bound every query;
    with ``sync`` the server runs the synced sources' schedules in the background;
    requests through ``owner_socket`` (the Unix socket ``meterql serve`` opens in the
    workspace) have the admin scope without a key.

    Raises:
        RuntimeError: a ``/v1`` route declares no scope (see guard.py).
    """
    log = log or logging.getLogger("meterql.server")
    scheduler = SyncSchedule(ws, sync_every_s, notify=log_attempts(log)) if sync else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if scheduler is not None:
            scheduler.start()
        yield
        if scheduler is not None:
            scheduler.stop()

    app = FastAPI(
        title="meterql",
        version=meterql.__version__,
        description="Federated SQL over billing data: queries, aggregates, sources. Errors "
        "are application/problem+json.",
        lifespan=lifespan,
        docs_url=None,  # (served from the package by docs.install: no third-party script)
        redoc_url=None,
        # FastAPI asks OpenTelemetry whether it is set up on every request, before any
        # middleware: a cost the event push path (push.py) exists to avoid. meterql sets up
        # no tracing, and pushes were never traced.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.log = log
    problems.install(app)
    docs.install(app)
    openapi.install(app)

    read, admin = Depends(Access("read")), Depends(Access("admin"))
    app.include_router(ingest.router(ws, Depends(Access("ingest"))))
    app.include_router(key_routes.router(ws, admin))

    @app.get("/v1/health", tags=["meta"], dependencies=[Depends(PUBLIC)])
    async def health() -> dict[str, Any]:
        """Liveness: no key needed."""
        return {"status": "ok", "version": meterql.__version__}

    app.include_router(query_routes.router(ws, read, timeout=timeout, max_rows=max_rows,
                                           log=log))
    app.include_router(aggregate_routes.router(ws, read, admin, timeout=timeout))
    app.include_router(catalog_routes.router(ws, read, timeout=timeout))
    app.include_router(stream_routes.router(ws, read))
    app.include_router(manual_routes.router(ws, read, admin))
    app.include_router(status_routes.router(ws, admin, scheduler))
    app.include_router(settings_routes.router(ws, admin))
    app.include_router(source_routes.router(ws))
    app.include_router(sync_routes.router(ws, admin))
    sessions = SessionStore()
    app.state.sync_schedule = scheduler  # (the navigator shows its next turns)
    navigator.install(app, ws, sessions, timeout=timeout)

    # The routes' policies are read now, once: a route added later is refused (fails closed).
    policies = route_policies(app.routes)
    # (add_middleware puts each one outside the ones before it)
    app.add_middleware(EventPush, ws=ws)
    app.add_middleware(RequestGuard, ws=ws, policies=policies, owner_socket=owner_socket,
                       sessions=sessions)
    app.add_middleware(AccessLog, log=log)
    return app
