"""The navigator's forms: read with their size bounded by the guard, which has also checked
their ``csrf`` field against the session's token before the page runs (guard.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from meterql.access.sessions import Session
from meterql.errors import CsrfError


def session_of(request: Request) -> Session:
    """The signed-in session of a navigator request (the guard has checked it)."""
    return request.scope["state"]["session"]


async def checked_form(request: Request) -> Any:
    """The request's form; its ``csrf`` field (or the ``X-CSRF-Token`` header) has been
    checked by the guard, and is checked again here should a form reach a page unchecked."""
    form = await request.form()
    state = request.scope.get("state", {})
    if state.get("csrf_pending"):
        token = form.get("csrf")
        if not isinstance(token, str) or not session_of(request).csrf_ok(token):
            raise CsrfError("this form lacks the session's CSRF token",
                            hint="reload the page and send the form again")
        state["csrf_pending"] = False
    return form
