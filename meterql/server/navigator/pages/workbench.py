"""The SQL workbench (scope ``read``): an editor completing the catalog's tables, columns and
functions, ``:named`` parameter inputs, a results grid, the plan, errors marked in the editor,
cancel, and downloads.

The page's script runs queries and plans through the HTTP API (``POST /v1/query``,
``/v1/explain``, ``/v1/queries/{id}/cancel``) with the session cookie and CSRF token; this
module renders the page with the catalog for completion, and answers a download as CSV or
Parquet with the same encoders the API and the CLI write.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from meterql import exact_json
from meterql.encoders import encode
from meterql.engine.limits import DEFAULT_MAX_ROWS
from meterql.errors import ParameterError
from meterql.server.disconnect import until_done
from meterql.server.navigator.render import page

if TYPE_CHECKING:
    from meterql.server.navigator.app import NavContext

NAV = ("Workbench", "/workbench", "read")

#: What a download file is called and sent as, by format.
MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


class DownloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str
    params: dict[str, Any] = Field(default_factory=dict)
    format: Literal["csv", "parquet"] = "csv"
    max_rows: int | None = Field(None, ge=0)


def router(ctx: NavContext) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/workbench", dependencies=[ctx.read])
    def workbench(request: Request, sql: str = "") -> HTMLResponse:
        """The editor (``sql`` pre-fills it) with the catalog's tables, columns and
        functions for completion."""
        schema = {t.full_name: [c.name for c in t.columns] for t in ctx.ws.tables()}
        return page(request, "workbench.html", sql=sql, schema=schema,
                    functions=ctx.ws.tables.functions())

    @api.post("/workbench/download", dependencies=[ctx.read])
    async def download(request: Request, body: DownloadRequest) -> Response:
        """The query's rows as a CSV or Parquet file (``X-CSRF-Token`` header)."""
        try:
            params = {k: exact_json.param_value(v) for k, v in body.params.items()}
        except ValueError as exc:
            raise ParameterError(str(exc), hint="e.g. {\"type\": \"date\", \"value\": "
                                 "\"2026-10-01\"}") from None
        cap = DEFAULT_MAX_ROWS if body.max_rows is None else body.max_rows
        job = ctx.ws.submit(body.sql, params, timeout=ctx.timeout, max_rows=cap)
        result = await until_done(request, asyncio.wrap_future(job.future), job.cancel)
        suffix = "csv" if body.format == "csv" else "parquet"
        headers = {"Content-Disposition": f'attachment; filename="result.{suffix}"',
                   "X-Meterql-Rows": str(result.num_rows),
                   "X-Meterql-Truncated": "true" if result.truncated else "false"}
        return StreamingResponse(encode(result.to_arrow(), body.format),
                                 media_type=MEDIA[body.format], headers=headers)

    return api
