"""A client that goes away cancels its work: queries and evaluations stop at every source."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import Request

from meterql.errors import QueryCancelledError


async def until_done(request: Request, work: asyncio.Future, cancel: Callable[[], Any]) -> Any:
    """The work's result; if the client goes away first, ``cancel()`` is called and
    :class:`QueryCancelledError` raised."""
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            cancel()
            with contextlib.suppress(Exception):
                await work
            raise QueryCancelledError("the client disconnected; its query was cancelled")
        return work.result()
    finally:
        watcher.cancel()


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
