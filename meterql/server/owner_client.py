"""Requests to the server that holds a workspace, through its owner's Unix socket
(:mod:`meterql.server.presence`): how a command run beside ``meterql serve`` reaches the
workspace. A refusal comes back as the same :class:`~meterql.errors.MeterqlError` class, message
and hint the command would have raised in-process.

Example:
    >>> error_of({"title": "InvalidSettingError", "detail": "no setting named 'x'",
    ...           "hint": "did you mean 'y'?"})
    InvalidSettingError("no setting named 'x'")
"""

from __future__ import annotations

from typing import Any

import httpx

from meterql import errors
from meterql.server.presence import Presence


def owner_request(presence: Presence, method: str, path: str, *,
                  json: Any = None, timeout: float = 60.0) -> Any:
    """The JSON answer of ``method path`` on the server of ``presence``; a problem answer is
    raised as its error."""
    if presence.socket is None:
        raise errors.WorkspaceError(
            f"the workspace is held by {presence.describe()}, which has no owner's socket",
            hint="stop the server, or use its HTTP API with an admin key")
    transport = httpx.HTTPTransport(uds=presence.socket)
    try:
        with httpx.Client(transport=transport, base_url="http://meterql",
                          timeout=timeout) as client:
            response = client.request(method, path, json=json)
    except httpx.HTTPError as exc:
        raise errors.WorkspaceError(
            f"cannot reach {presence.describe()} through {presence.socket}: {exc}",
            hint="check that the server is running (its log), or stop it",
        ) from exc
    body = response.json() if response.content else None
    if response.status_code >= 400:
        raise error_of(body if isinstance(body, dict) else {"detail": response.text})
    return body


def error_of(problem: dict[str, Any]) -> errors.MeterqlError:
    """The error a problem+json answer stands for (its ``title`` names the class)."""
    cls = getattr(errors, str(problem.get("title")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.MeterqlError)):
        cls = errors.MeterqlError
    return cls(str(problem.get("detail") or "the server refused the request"),
               hint=problem.get("hint"), source=problem.get("source"),
               table=problem.get("table"), line=problem.get("line"),
               column=problem.get("column"))
