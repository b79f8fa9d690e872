"""Every error the API returns is ``application/problem+json`` (RFC 9457), built here only."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from meterql import errors as e

PROBLEM = "application/problem+json"

#: The most specific class listed wins (checked in order).
STATUS: tuple[tuple[type[e.MeterqlError], int], ...] = (
    (e.AuthenticationError, 401),
    (e.ScopeError, 403),
    (e.CsrfError, 403),
    (e.UnknownAggregateError, 404),
    (e.UnknownStreamError, 404),
    (e.UnknownBackfillError, 404),
    (e.UnknownQueryError, 404),
    (e.UnsupportedMediaTypeError, 415),
    (e.SourceExistsError, 409),
    (e.SourceUnavailableError, 503),
    (e.SourceError, 502),
    (e.QueryTimeoutError, 504),
    (e.RowLimitError, 413),
    (e.InputLimitError, 413),
    (e.QueryCancelledError, 499),
    (e.ConflictError, 409),
    (e.DataError, 422),
    (e.IngestError, 400),
    (e.WorkspaceError, 503),
    (e.CatalogError, 400),
    (e.QueryError, 400),
)


def status_of(exc: e.MeterqlError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def problem(status: int, title: str, detail: str, instance: str | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{_kebab(title)}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def internal_error(path: str) -> JSONResponse:
    """The answer to an unexpected error (a bug): nothing of it but that it is logged."""
    return problem(500, "InternalError", "the server failed to answer this request; the error "
                   "is in its log", path)


def meterql_problem(exc: e.MeterqlError, path: str | None = None,
                    status: int | None = None) -> JSONResponse:
    info = exc.to_dict()
    return problem(
        status or status_of(exc), type(exc).__name__, exc.message, path,
        hint=info.get("hint"), source=info.get("source"), table=info.get("table"),
        line=info.get("line"), column=info.get("column"), retryable=exc.retryable,
        rows=exc.details.get("rows"),
    )


def install(app) -> None:
    """One handler per kind of failure; none of them echoes secrets or tracebacks. (Anything
    else is a bug: answered as a 500 problem, and logged once by the access log.)"""

    @app.exception_handler(e.MeterqlError)
    async def _meterql(request: Request, exc: e.MeterqlError):
        return meterql_problem(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = [
            {"location": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg")}
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"location": "body", "message": "invalid"}
        return problem(422, "InvalidRequest",
                       f"{first['location']}: {first['message']}", request.url.path,
                       errors=problems)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # (Starlette answers with this, then raises the error on to the access log, which
        # logs it once with its traceback.)
        return internal_error(request.url.path)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        title = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HttpError")
        return problem(exc.status_code, title, str(exc.detail), request.url.path)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name.removesuffix("Error") or name).lower()
