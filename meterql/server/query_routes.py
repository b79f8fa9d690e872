"""``POST /v1/query``: one SELECT, answered as JSON, CSV or Arrow (scope ``read``), written by
:mod:`meterql.encoders` as the CLI writes them; small results in one body, large ones streamed.
``POST /v1/explain``: a query's plan, the text ``meterql explain`` prints."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql.encoders import encode, json_envelope, json_value
from meterql.engine import Result
from meterql.server.disconnect import until_done

ARROW_STREAM = "application/vnd.apache.arrow.stream"

#: Results up to this many bytes (in Arrow) are sent in one piece, larger ones streamed.
SMALL_RESULT = 1 << 20


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str = Field(description="one SELECT; tables as source.schema.table",
                     examples=["SELECT count(*) AS n FROM pg.public.events"])
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="values for :name parameters (always bound)")
    timeout_s: float | None = Field(None, gt=0, description="at most the server's limit")
    max_rows: int | None = Field(None, ge=0, description="at most the server's row cap")
    dialect: str = Field("duckdb", description="the SQL dialect the query is written in "
                         "(as meterql query --dialect)", examples=["postgres"])


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str = Field(description="one SELECT; tables as source.schema.table",
                     examples=["SELECT count(*) AS n FROM pg.public.events"])
    dialect: str = Field("duckdb", description="the SQL dialect the query is written in",
                         examples=["postgres"])


def router(ws: meterql.Workspace, read: Any, *, timeout: float, max_rows: int,
           log: logging.Logger) -> APIRouter:
    """``timeout`` and ``max_rows``: the server's bounds; a request may ask for less."""
    api = APIRouter(tags=["query"], dependencies=[read])

    @api.post("/v1/query", responses={
        200: {"content": {"application/json": {}, "text/csv": {}, ARROW_STREAM: {}},
              "description": "rows as JSON (default), CSV or an Arrow IPC stream, by Accept"}})
    async def query(request: Request, body: QueryRequest) -> Response:
        """Run one SELECT. The answer's format follows ``Accept``; large results stream."""
        limit = timeout if body.timeout_s is None else min(body.timeout_s, timeout)
        cap = max_rows if body.max_rows is None else min(body.max_rows, max_rows)
        running = ws.submit(body.sql, body.params, body.dialect, timeout=limit, max_rows=cap)
        result = await until_done(request, asyncio.wrap_future(running.future), running.cancel)
        log.info("query key=%s rows=%d truncated=%s %.1f ms params=%s sql=%s",
                 request.state.key, result.num_rows, result.truncated, result.seconds * 1000,
                 sorted(body.params), " ".join(body.sql.split()))
        return rows_response(result, request.headers.get("accept", ""))

    @api.post("/v1/explain")
    def explain(body: ExplainRequest) -> dict[str, str]:
        """How a query would run, without running it: each fragment with its source and SQL,
        and the residual (the text ``meterql explain`` prints; no source URI in it)."""
        return {"plan": str(ws.explain(body.sql, body.dialect))}

    return api


def rows_response(result: Result, accept: str) -> Response:
    """The rows of ``result`` in the format ``accept`` asks for, with the row count, the
    truncation flag and the watermarks in ``X-Meterql-*`` headers."""
    headers = {
        "X-Meterql-Rows": str(result.num_rows),
        "X-Meterql-Truncated": "true" if result.truncated else "false",
        "X-Meterql-Watermarks": json.dumps(json_value(result.watermarks)),
    }
    table = result.to_arrow()
    if ARROW_STREAM in accept:
        chunks, media = encode(table, "arrow"), ARROW_STREAM
    elif "text/csv" in accept:
        chunks, media = encode(table, "csv"), "text/csv; charset=utf-8"
    else:
        chunks, media = json_envelope(table, {
            "row_count": result.num_rows, "truncated": result.truncated,
            "seconds": round(result.seconds, 6), "watermarks": result.watermarks,
        }), "application/json"
    if table.nbytes <= SMALL_RESULT:  # one body: streaming costs a thread hop per chunk
        return Response(b"".join(chunks), media_type=media, headers=headers)
    return StreamingResponse(chunks, media_type=media, headers=headers)
