"""``POST /v1/events/{stream}`` without a query string, answered before FastAPI.

The push endpoint is the API's hot path: a billing engine may send one event per request,
thousands per second, and the event loop is the server's one thread for every request.
FastAPI's middleware, routing, dependency resolution and request objects cost as much as the
push itself, so these requests are answered here, in front of FastAPI and behind the request
guard (guard.py), which has checked the key (scope ``ingest``) and the body's size already:
the same body handling and the same answer (:func:`meterql.server.ingest.push_response`).
The route in ingest.py stays: it documents the endpoint in OpenAPI, gives the guard its scope
and limit, and answers pushes into a backfill (``?backfill=``).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import Headers

import meterql
from meterql.errors import MeterqlError
from meterql.server import problems
from meterql.server.ingest import push_response

_PATH = re.compile(r"^/v1/events/([^/]+)$")


class EventPush:
    """ASGI layer: answers ``POST /v1/events/{stream}`` (no query string) itself, anything
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
