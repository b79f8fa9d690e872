"""The Uploads page: a CSV file chosen or dropped, previewed before it is stored (its parsed
rows, the types the load would choose, the rows that do not fit with their line and reason:
``ws.uploads.preview``, the load's own reader), then stored by ``POST /v1/tables/{name}/upload``
(``ws.uploads.load``) in append, replace or upsert mode. Loading needs an ingest key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from meterql.encoders import json_value
from meterql.errors import InputLimitError, InvalidBodyError
from meterql.server.guard import BODY_LIMIT, Access
from meterql.server.ingest import UPLOAD_LIMIT
from meterql.server.navigator.forms import checked_form
from meterql.server.navigator.pages.events import can_ingest
from meterql.server.navigator.render import page

NAV = ("Uploads", "/uploads", "read")
SHOWN = 20  # rows shown in a preview


def router(ctx: Any) -> APIRouter:
    ingest = Depends(Access("ingest"))
    api = APIRouter(include_in_schema=False)
    ws = ctx.ws

    @api.get("/uploads", dependencies=[ctx.read])
    def uploads(request: Request) -> HTMLResponse:
        tables = [t for t in ws.tables("local") if t.full_name.startswith("local.uploads.")]
        return page(request, "uploads.html", tables=tables, editable=can_ingest(request),
                    shown=SHOWN)

    @api.post("/uploads/preview", dependencies=[ingest],
              openapi_extra={BODY_LIMIT: UPLOAD_LIMIT})
    async def preview(request: Request) -> JSONResponse:
        """What storing the form's ``file`` into ``table`` with ``mode`` would read (JSON),
        stored nowhere; errors as the API answers them (problem+json)."""
        form = await checked_form(request)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidBodyError("choose a CSV file to preview", hint="the form field 'file'")
        limit = ws.catalog.settings[UPLOAD_LIMIT] << 20
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise InputLimitError(f"the file is larger than {limit >> 20} MB",
                                  hint=f"raise the workspace setting {UPLOAD_LIMIT}")
        table = str(form.get("table", "")).strip()
        mode = str(form.get("mode", "append"))
        answer = await run_in_threadpool(ws.uploads.preview, data, table, mode=mode)
        return JSONResponse(json_value(answer))

    return api
