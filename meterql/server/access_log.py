"""One log line per request, and the last word on an unexpected error."""

from __future__ import annotations

import logging
import time
from typing import Any

from meterql.server import problems


class AccessLog:
    """ASGI middleware: one log line per request (method, path, status, ms, the key's id, never
    the key); an unexpected exception is logged once here, with its traceback, and answered as
    a 500 problem. Plain ASGI: a BaseHTTPMiddleware would wrap every streamed body."""

    def __init__(self, app: Any, log: logging.Logger) -> None:
        self.app, self.log = app, log

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            self.log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if "started" not in status:
                status["code"] = 500
                await problems.internal_error(scope["path"])(scope, receive, send)
        finally:
            self.log.info("%s %s %s %.1f ms key=%s", scope["method"], scope["path"],
                          status["code"], (time.perf_counter() - t0) * 1000,
                          scope.get("state", {}).get("key", "-"))
