"""``POST /v1/events/{stream}`` without a query string, answered before FastAPI's routing.

The push endpoint is the API's hot path: a billing engine may send one event per request,
thousands per second, and the event loop is the server's one thread for every request.
FastAPI's routing, dependency resolution and request objects cost as much as the push itself,
so these requests are answered by :class:`EventPush`, an ASGI middleware (``create_app``
registers it with ``app.add_middleware``, inside the request guard, guard.py, which has checked
the key, scope ``ingest``, and the body's size already). It gives the same answer as the route
(:func:`meterql.server.ingest.push_response`, the same body handling) on the same path
(:data:`meterql.server.ingest.EVENTS_PATH`, matched with Starlette's own pattern for it), and
``tests/test_push_parity.py`` holds the two to the same answers.

What the fast path skips, so that a push through it does not get it: FastAPI's routing and
exception handlers (a :class:`MeterqlError` is answered here with the same problem), the route's
dependencies (only :class:`meterql.server.guard.Access`, whose check the guard made), and any
middleware added after (inside) this one. The route in ingest.py stays: it documents the
endpoint in OpenAPI, gives the guard its scope and limit, and answers pushes with a query string
(``?backfill=``).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.routing import compile_path

import meterql
from meterql.errors import MeterqlError
from meterql.server import problems
from meterql.server.ingest import EVENTS_PATH, push_response

_PATH = compile_path(EVENTS_PATH)[0]  # (the route's own regular expression)


class EventPush:
    """ASGI middleware: answers ``POST /v1/events/{stream}`` (no query string) itself, anything
    else goes to ``app``."""

    def __init__(self, app: Any, ws: meterql.Workspace) -> None:
        self.app, self.ws = app, ws

    async def __call__(self, scope, receive, send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope["query_string"]:
            match = _PATH.match(scope["path"])
        if match is None or scope.get("state", {}).get("access") != "ingest":
            await self.app(scope, receive, send)  # (unchecked: FastAPI's route refuses it)
            return
        headers = Headers(scope=scope)
        try:
            response = await push_response(self.ws, match.group(1), scope["path"], headers,
                                           receive)
        except MeterqlError as exc:
            response = problems.meterql_problem(exc, scope["path"])
        await response(scope, receive, send)
