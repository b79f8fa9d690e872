"""The OpenAPI document as clients read it: every operation declares the problem answers
(``application/problem+json``, RFC 9457) it can give, from one shared table, and the route
docstrings it is made of are turned from the package's reStructuredText into the Markdown that
OpenAPI descriptions are.

Example:
    >>> markdown("Answers ``GET /v1/sources``, see :class:`~meterql.catalog.Source`.")
    'Answers `GET /v1/sources`, see `Source`.'
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI

from meterql.server.problems import PROBLEM

#: The problem document every error answer is (problems.py builds them).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "/problems/ and the error's kind"},
        "title": {"type": "string", "description": "the error's class, e.g. UnknownTableError"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong"},
        "instance": {"type": "string", "description": "the request's path"},
        "hint": {"type": "string", "description": "how to fix it"},
        "source": {"type": "string"},
        "table": {"type": "string"},
        "line": {"type": "integer"},
        "column": {"type": "integer"},
        "retryable": {"type": "boolean", "description": "the same request may succeed later"},
        "rows": {"type": "array", "items": {"type": "object"},
                 "description": "rejected rows or events, each with its reason"},
        "errors": {"type": "array", "items": {"type": "object"},
                   "description": "each invalid field of the request (422)"},
    },
    "additionalProperties": True,
}

#: Every problem status of the API and when it is answered: the one table each operation's
#: declared error responses are taken from (see :func:`problem_statuses` for which).
PROBLEM_RESPONSES: dict[int, str] = {
    400: "the request is refused: SQL that does not parse or names an unknown table or column, "
         "a bad parameter, a body that cannot be read",
    401: "no API key, or an unknown or revoked one (AuthenticationError)",
    403: "the key's scope does not cover this route (ScopeError)",
    404: "nothing with that name or id (an aggregate, stream, backfill, table, key or query)",
    409: "it conflicts with what is stored: a source or a row key that exists",
    413: "the body, or the result, is over its limit (a setting or max_rows names it)",
    415: "a body of a media type the route does not read (UnsupportedMediaTypeError)",
    422: "the request does not match its schema, or data that does not fit its table",
    499: "the query was cancelled (QueryCancelledError)",
    500: "the server failed to answer; the error is in its log",
    502: "a source failed the query (SourceError)",
    503: "a source or the workspace is unavailable; retryable says whether to try again",
    504: "the query ran past its timeout (QueryTimeoutError)",
}

#: Operations (by tag) that run queries at sources: their problems include the sources'.
QUERYING_TAGS = {"query", "aggregates", "catalog", "sources", "sync"}
#: Of those, the ones a client can cancel (499).
CANCELLABLE_TAGS = {"query", "aggregates"}


def problem_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    """The problem statuses an operation can answer with: 500 always; with a key (every route
    but ``/v1/health``) 400, 401, 403, 413, 422 and 503; 404 with a path parameter; 409 for
    writes; 415 for a multipart body; 502 and 504 where a source can be queried (the
    querying tags' operations but their listings); 499 where a query can be cancelled (their
    POSTs)."""
    statuses = {500}
    if operation.get("security"):
        statuses |= {400, 401, 403, 413, 422, 503}
    if "{" in path:
        statuses.add(404)
    if method in ("post", "put", "patch"):
        statuses.add(409)
    if "multipart/form-data" in operation.get("requestBody", {}).get("content", {}):
        statuses.add(415)
    tags = set(operation.get("tags", ()))
    if tags & QUERYING_TAGS and (method != "get" or "{" in path):  # (not the listings)
        statuses |= {502, 504}
    if tags & CANCELLABLE_TAGS and method == "post":
        statuses.add(499)
    return sorted(statuses)


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    return {"description": description or PROBLEM_RESPONSES[status],
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_TILDE_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_FIELD = re.compile(r"^(\s*):(?:param|parameter|arg|type|returns?|raises?)\s*([^:]*):\s*",
                    re.M)


def markdown(text: str) -> str:
    """A docstring's reStructuredText markup as Markdown: ``code`` in single backticks, a
    cross-reference role as its name in code (``~`` keeps the last part), ``:param x:`` fields
    as ``x:``."""
    text = _TILDE_ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    text = _LITERAL.sub(lambda m: f"`{m.group(1)}`", text)
    return _FIELD.sub(lambda m: f"{m.group(1)}{m.group(2).strip()}: " if m.group(2).strip()
                      else m.group(1), text)


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: markdown(value) if key in ("description", "summary")
                and isinstance(value, str) else _clean(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_clean(item) for item in node]
    return node


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (FastAPI's document) with every operation's problem answers declared and its
    descriptions in Markdown. FastAPI's own 422 (``HTTPValidationError``) becomes the problem
    it is answered with; a route's own description of a status is kept."""
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status in problem_statuses(method, path, operation):
                own = responses.get(str(status), {}).get("description")
                if own == "Validation Error":  # (FastAPI's, for its schema)
                    own = None
                responses[str(status)] = problem_response(status, own)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):  # (the first refers to the other)
        if f'"#/components/schemas/{unused}"' not in json.dumps(spec):
            schemas.pop(unused, None)
    cleaned: dict[str, Any] = _clean(spec)
    return cleaned


def install(app: FastAPI) -> None:
    """Serve :func:`document` of the app's routes at ``/openapi.json`` (made once)."""
    made = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(made())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
