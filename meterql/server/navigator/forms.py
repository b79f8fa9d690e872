"""The navigator's forms: read with their size bounded by the guard, which has also checked
their ``csrf`` field against the session's token before the page runs (guard.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from meterql.access.sessions import Session


def session_of(request: Request) -> Session:
    """The signed-in session of a navigator request (the guard has checked it)."""
    return request.scope["state"]["session"]


async def checked_form(request: Request) -> Any:
    """The request's form (the guard has checked its ``csrf`` field, or the
    ``X-CSRF-Token`` header, before the page runs)."""
    return await request.form()
