"""The catalog over HTTP (scope ``read``): sources with their replicas' watermarks, tables, and
one table's columns with a sample of its rows."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

import meterql
from meterql.catalog import Source
from meterql.encoders import json_value
from meterql.errors import AmbiguousNameError, UnknownTableError
from meterql.server import problems
from meterql.server.disconnect import until_done
from meterql.sql_text import quote_qualified


def source_json(ws: meterql.Workspace, source: Source) -> dict[str, Any]:
    """A source as the API shows it: its URI with a written password as ***."""
    return json_value({
        "name": source.name, "kind": source.kind, "mode": source.mode,
        "uri": source.display_uri, "options": source.options,
        "tables": len(ws.tables(source.name)),
        "watermarks": [w.describe() for w in ws.sync.watermarks(source.name)]
        if source.mode == "sync" else [],
    })


def router(ws: meterql.Workspace, read: Any, *, timeout: float) -> APIRouter:
    """``timeout``: the time limit of a table's sample query."""
    api = APIRouter(tags=["catalog"], dependencies=[read])

    @api.get("/v1/sources")
    def sources() -> list[dict[str, Any]]:
        """Registered sources (passwords shown as ***) and their replicas' watermarks."""
        return [source_json(ws, source) for source in ws.sources()]

    @api.get("/v1/tables")
    def tables(source: str | None = None) -> list[dict[str, Any]]:
        """Every table as source.schema.table."""
        return [{"name": t.full_name, "kind": t.kind, "columns": len(t.columns)}
                for t in ws.tables(source)]

    @api.get("/v1/tables/{name}")
    async def table(request: Request, name: str,
                    sample: Annotated[int, Query(ge=0, le=1000)] = 10) -> JSONResponse:
        """A table's columns and a sample of its rows."""
        try:
            entry = ws.tables.get(name)
        except (UnknownTableError, AmbiguousNameError) as exc:
            return problems.meterql_problem(exc, request.url.path,
                                            404 if isinstance(exc, UnknownTableError) else 400)
        rows: list[dict[str, Any]] = []
        if sample:
            ident = quote_qualified(entry.source, entry.schema, entry.name)
            running = ws.submit(f"SELECT * FROM {ident} LIMIT {int(sample)}", timeout=timeout)
            result = await until_done(request, asyncio.wrap_future(running.future),
                                      running.cancel)
            rows = result.to_pylist()
        return JSONResponse(json_value({
            "name": entry.full_name, "kind": entry.kind,
            "primary_key": list(entry.primary_key),
            "columns": [{"name": c.name, "type": c.type, "source_type": c.source_type,
                         "nullable": c.nullable} for c in entry.columns],
            "sample": rows,
        }))

    return api
