"""The catalog over HTTP (scope ``read``): sources with their replicas' watermarks, tables, and
one table's columns with a sample of its rows."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

import meterql
from meterql.catalog import Source, Table, TableStats
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
        if source.replicated else [],
    })


def statistics_json(stats: TableStats | None) -> dict[str, Any] | None:
    """A table's statistics as the API shows them: rows, indexes, and per column the distinct
    values and null fraction (the values of bounds and histograms stay in the workspace)."""
    if stats is None:
        return None
    return {
        "rows": stats.rows, "read_at": stats.read_at,
        "indexes": [{"name": i.name, "columns": list(i.columns), "unique": i.unique}
                    for i in stats.indexes],
        "columns": [{"name": c.column, "distinct": c.distinct, "null_frac": c.null_frac}
                    for c in stats.columns.values()],
    }


def table_json(table: Table) -> dict[str, Any]:
    """A table as the API shows it: its name and parts, kind, key, estimated rows and
    columns (the same fields a :class:`~meterql.Table` has)."""
    return json_value({
        "name": table.full_name, "source": table.source, "schema": table.schema,
        "table": table.name, "kind": table.kind, "rows": table.rows,
        "primary_key": list(table.primary_key),
        "columns": [{"name": c.name, "type": c.type, "source_type": c.source_type,
                     "nullable": c.nullable} for c in table.columns],
    })


def router(ws: meterql.Workspace, read: Any, *, timeout: float) -> APIRouter:
    """``timeout``: the time limit of a table's sample query."""
    api = APIRouter(tags=["catalog"], dependencies=[read])

    @api.get("/v1/sources")
    def sources() -> list[dict[str, Any]]:
        """Registered sources (passwords shown as ***) and their replicas' watermarks."""
        return [source_json(ws, source) for source in ws.sources()]

    @api.get("/v1/sources/{name}")
    def source(name: str) -> dict[str, Any]:
        """One source as ``GET /v1/sources`` shows it."""
        return source_json(ws, ws.sources.get(name))

    @api.get("/v1/tables")
    def tables(source: str | None = None, detail: bool = False) -> list[dict[str, Any]]:
        """Every table as source.schema.table (of one source when given), with its number of
        columns; ``detail=true``: each table as ``GET /v1/tables/{name}`` shows it, without
        a sample."""
        if detail:
            return [table_json(t) for t in ws.tables(source)]
        return [{"name": t.full_name, "kind": t.kind, "columns": len(t.columns)}
                for t in ws.tables(source)]

    @api.get("/v1/functions")
    def functions() -> list[str]:
        """The SQL functions a query may call (for completion)."""
        return ws.tables.functions()

    @api.get("/v1/tables/{name}")
    async def table(request: Request, name: str,
                    sample: Annotated[int, Query(ge=0, le=1000)] = 10) -> JSONResponse:
        """A table's columns, its freshness (a replica's last sync, a local table's last
        write; null for a direct source's table) and a sample of its rows."""
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
        return JSONResponse({
            **table_json(entry),
            "freshness": json_value(ws.tables.freshness(entry.full_name)),
            "statistics": statistics_json(ws.tables.statistics(entry.full_name)),
            "sample": json_value(rows),
        })

    return api
