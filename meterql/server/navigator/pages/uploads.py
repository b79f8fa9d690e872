"""The Uploads page: a CSV file chosen or dropped, previewed before it is stored (its parsed
rows, the types the load would choose, the rows that do not fit with their line and reason), then
stored in append, replace or upsert mode. The page's script calls the API's upload route
(``POST /v1/tables/{name}/upload``): with ``dry_run=true`` for the preview
(``ws.uploads.preview``, the load's own reader), then to store (``ws.uploads.load``). Loading
needs an ingest key; a read key sees the uploaded tables only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from meterql.server.navigator.pages.events import can_ingest
from meterql.server.navigator.render import page

NAV = ("Uploads", "/uploads", "read")
SHOWN = 20  # rows shown in a preview (meterql.local.uploads.preview_csv's default)


def router(ctx: Any) -> APIRouter:
    api = APIRouter(include_in_schema=False)

    @api.get("/uploads", dependencies=[ctx.read])
    def uploads(request: Request) -> HTMLResponse:
        tables = [t for t in ctx.ws.tables("local") if t.schema == "uploads"]
        return page(request, "uploads.html", tables=tables, editable=can_ingest(request),
                    shown=SHOWN)

    return api
