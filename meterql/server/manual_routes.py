"""Manual tables over HTTP, as ``meterql rows create`` and ``meterql rows audit`` do it:
``POST /v1/manual`` creates ``local.manual.<name>`` (scope ``admin``), ``GET /v1/manual`` and
``GET /v1/manual/{name}`` show their columns and keys, ``GET /v1/audit`` reads the audit of
their changes (scope ``read``). Rows are written through ``/v1/tables/{name}/rows``
(ingest.py)."""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql.catalog import Table
from meterql.encoders import json_value
from meterql.errors import UnknownTableError
from meterql.server import problems


class ManualTableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="the table's name in local.manual: letters, digits and _",
                      examples=["credits"])
    columns: dict[str, str] = Field(
        description="column name -> DuckDB type, in table order",
        examples=[{"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)"}])
    key: list[str] = Field(description="the primary key's columns (among columns)",
                           examples=[["customer_id"]])


def table_json(table: Table) -> dict[str, Any]:
    """A manual table as the API shows it: its full name, short name, columns (name ->
    type, in table order) and key."""
    return {"table": table.full_name, "name": table.name,
            "columns": {c.name: c.type for c in table.columns},
            "key": list(table.primary_key)}


def manual_tables(ws: meterql.Workspace) -> dict[str, Table]:
    """The workspace's manual tables by short name."""
    return {t.name: t for t in ws.tables("local") if t.schema == "manual"}


def router(ws: meterql.Workspace, read: Any, admin: Any) -> APIRouter:
    api = APIRouter(tags=["manual tables"])

    @api.post("/v1/manual", dependencies=[admin], status_code=201)
    def create(request: Request, body: ManualTableIn) -> dict[str, Any]:
        """Create ``local.manual.<name>`` (audited; the actor is the key's id). Answers the
        table as ``GET /v1/manual/{name}`` shows it, types as DuckDB spells them."""
        ws.manual.create(body.name, body.columns, body.key, actor=request.state.key)
        return table_json(manual_tables(ws)[body.name])

    @api.get("/v1/manual", dependencies=[read])
    def tables() -> list[dict[str, Any]]:
        """Every manual table, with its columns and key."""
        return [table_json(t) for t in manual_tables(ws).values()]

    @api.get("/v1/manual/{name}", dependencies=[read])
    def table(request: Request, name: str) -> JSONResponse:
        """One manual table's columns and key (an unknown table: 404)."""
        found = manual_tables(ws)
        if name not in found:
            close = difflib.get_close_matches(name, list(found), n=1)
            unknown = UnknownTableError(
                f"no manual table local.manual.{name}", table=f"local.manual.{name}",
                hint=f"did you mean '{close[0]}'?" if close else
                "create it with POST /v1/manual or 'meterql rows create'")
            return problems.meterql_problem(unknown, request.url.path, 404)
        return JSONResponse(table_json(found[name]))

    @api.get("/v1/audit", dependencies=[read])
    def audit(table: Annotated[str | None, Query(
            description="one manual table's short name; default: every table")] = None
              ) -> list[dict[str, Any]]:
        """Every change to manual tables, oldest first: ``table``, ``action`` (create,
        insert, update, delete), the row's ``key``, the row ``before`` and ``after``, the
        ``actor`` (a key's id, ``owner`` through the owner's socket, or ``cli``) and
        ``changed_at``. A table without changes (or unknown) has none."""
        return json_value(ws.manual.audit(table))

    return api
