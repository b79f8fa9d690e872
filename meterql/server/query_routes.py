"""``POST /v1/query``: one SELECT, answered as JSON, CSV or Arrow (scope ``read``), written by
:mod:`meterql.encoders` as the CLI writes them; small results in one body, large ones streamed.

A query sent with an ``X-Meterql-Query-Id`` header can be cancelled from another connection by
the same key (``POST /v1/queries/{id}/cancel``): it stops at its sources and in DuckDB, as
closing the connection does. That is how a client's Ctrl-C reaches the server through proxies
that hide a closed connection.

``POST /v1/explain``: a query's plan, the text ``meterql explain`` prints.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql import exact_json
from meterql.encoders import encode, json_envelope, json_value
from meterql.engine import Result
from meterql.errors import ConflictError, ParameterError, QueryError, UnknownQueryError
from meterql.server.disconnect import until_done
from meterql.workspace import RunningQuery

ARROW_STREAM = "application/vnd.apache.arrow.stream"

#: Results up to this many bytes (in Arrow) are sent in one piece, larger ones streamed.
SMALL_RESULT = 1 << 20

#: The header naming a query for ``POST /v1/queries/{id}/cancel``, and what an id may be.
QUERY_ID = "X-Meterql-Query-Id"
QUERY_ID_FORM = re.compile(r"[A-Za-z0-9_-]{1,64}")


MAX_STALENESS = (
    "the freshness bound for sources in auto mode: a duration (\"0\" is live, \"5m\", "
    "\"1h\") or \"none\" (a replica of any age); absent: the workspace setting "
    "max_staleness. A table is read from its replica when synced within it, else from the "
    "source")


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str = Field(description="one SELECT; tables as source.schema.table",
                     examples=["SELECT count(*) AS n FROM pg.public.events"])
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="values for :name parameters (always bound); a decimal, date, time or "
        "timestamp as {\"type\": \"decimal\"|\"date\"|\"time\"|\"timestamp\"|"
        "\"timestamptz\", \"value\": TEXT} keeps its type, as in Python")
    timeout_s: float | None = Field(None, gt=0, description="at most the server's limit")
    max_rows: int | None = Field(None, ge=0, description="at most the server's row cap")
    dialect: str = Field("duckdb", max_length=64,
                         description="the SQL dialect the query is written in")
    time_zone: str | None = Field(
        None, max_length=64, examples=["Europe/Berlin"],
        description="the session's time zone (IANA name; UTC if absent): TIMESTAMPTZ values "
        "are written in it, and a query that reads no table (SELECT now()) runs in it")
    max_staleness: str | float | None = Field(
        None, examples=["5m"], description=MAX_STALENESS)


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str = Field(description="one SELECT; tables as source.schema.table",
                     examples=["SELECT count(*) AS n FROM pg.public.events"])
    dialect: str = Field("duckdb", description="the SQL dialect the query is written in",
                         examples=["postgres"])
    max_staleness: str | float | None = Field(
        None, examples=["5m"], description=MAX_STALENESS)


def router(ws: meterql.Workspace, read: Any, *, timeout: float, max_rows: int,
           log: logging.Logger) -> APIRouter:
    """``timeout`` and ``max_rows``: the server's bounds; a request may ask for less."""
    api = APIRouter(tags=["query"], dependencies=[read])
    #: queries sent with an id, by (key id, query id), while they run
    running: dict[tuple[str, str], RunningQuery] = {}

    @api.post("/v1/query", responses={
        200: {"content": {"application/json": {}, "text/csv": {}, ARROW_STREAM: {}},
              "description": "rows as JSON (default), CSV or an Arrow IPC stream, by Accept"}})
    async def query(request: Request, body: QueryRequest) -> Response:
        """Run one SELECT. The answer's format follows ``Accept``; large results stream."""
        limit = timeout if body.timeout_s is None else min(body.timeout_s, timeout)
        cap = max_rows if body.max_rows is None else min(body.max_rows, max_rows)
        query_id = request.headers.get(QUERY_ID)
        if query_id is not None and not QUERY_ID_FORM.fullmatch(query_id):
            raise QueryError(f"{QUERY_ID} '{query_id[:80]}' is not a query id",
                             hint="1 to 64 letters, digits, '-' or '_'")
        named = None if query_id is None else (str(request.state.key), query_id)
        if named is not None and named in running:
            raise ConflictError(f"query '{query_id}' is running already",
                                hint="give each query its own id")
        try:
            params = {k: exact_json.param_value(v) for k, v in body.params.items()}
        except ValueError as exc:
            raise ParameterError(str(exc), hint="e.g. {\"type\": \"date\", \"value\": "
                                 "\"2026-10-01\"}") from None
        job = ws.submit(body.sql, params, body.dialect, timeout=limit, max_rows=cap,
                        tz=body.time_zone, max_staleness=body.max_staleness)
        if named is not None:
            running[named] = job
        try:
            result = await until_done(request, asyncio.wrap_future(job.future), job.cancel)
        finally:
            if named is not None:
                running.pop(named, None)
        log.info("query key=%s rows=%d truncated=%s %.1f ms params=%s sql=%s",
                 request.state.key, result.num_rows, result.truncated, result.seconds * 1000,
                 sorted(body.params), " ".join(body.sql.split()))
        return rows_response(result, request.headers.get("accept", ""))

    @api.post("/v1/queries/{query_id}/cancel", status_code=202, responses={
        404: {"description": "no query of this key runs with that id"}})
    def cancel(request: Request, query_id: str) -> dict[str, str]:
        """Stop a query this key sent with ``X-Meterql-Query-Id``, at its sources and in
        DuckDB; its own request then answers ``QueryCancelledError``."""
        job = running.get((request.state.key, query_id))
        if job is None:
            raise UnknownQueryError(f"no query with id '{query_id[:80]}' is running for this key",
                                    hint="it may have finished; a query is cancelled by the "
                                         "key that sent it")
        job.cancel()
        return {"cancelled": query_id}

    @api.post("/v1/explain")
    def explain(body: ExplainRequest) -> dict[str, Any]:
        """How a query would run, without running it: each fragment with its source and SQL,
        and the residual (the text ``meterql explain`` prints; no source URI in it), and the
        names of the parameters it takes."""
        plan = ws.explain(body.sql, body.dialect, body.max_staleness)
        return {"plan": str(plan), "params": list(plan.params)}

    return api


def rows_response(result: Result, accept: str) -> Response:
    """The rows of ``result`` in the format ``accept`` asks for, with the row count, the
    truncation flag and the watermarks in ``X-Meterql-*`` headers."""
    headers = {
        "X-Meterql-Rows": str(result.num_rows),
        "X-Meterql-Truncated": "true" if result.truncated else "false",
        "X-Meterql-Watermarks": json.dumps(json_value(result.watermarks)),
    }
    if result.warnings:
        headers["X-Meterql-Warnings"] = json.dumps(result.warnings)
    table = result.to_arrow()
    if ARROW_STREAM in accept:
        chunks, media = encode(table, "arrow"), ARROW_STREAM
    elif "text/csv" in accept:
        chunks, media = encode(table, "csv"), "text/csv; charset=utf-8"
    else:
        chunks, media = json_envelope(table, {
            "row_count": result.num_rows, "truncated": result.truncated,
            "seconds": round(result.seconds, 6), "watermarks": result.watermarks,
            "warnings": result.warnings,
        }), "application/json"
    if table.nbytes <= SMALL_RESULT:  # one body: streaming costs a thread hop per chunk
        return Response(b"".join(chunks), media_type=media, headers=headers)
    return StreamingResponse(chunks, media_type=media, headers=headers)
