"""Sync over HTTP (scope ``admin``), as ``meterql sync`` and ``meterql source strategy`` do it:
``POST /v1/sync`` runs sources now (with the schedule's retries), ``PUT /v1/tables/{name}/sync``
chooses how a table is copied."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql.encoders import json_value
from meterql.errors import InvalidSourceError
from meterql.sync.config import Strategy
from meterql.sync.runner import SyncReport
from meterql.sync.schedule import SyncSchedule


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[str] | None = Field(
        None, max_length=1000, description="the sources to sync; default: every source in "
        "sync mode")


class StrategyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategy: Strategy
    cursor: str | None = Field(None, max_length=256)
    lag: int = Field(0, ge=0)
    soft_delete: str | None = Field(None, max_length=256)


def report_json(report: SyncReport) -> dict[str, Any]:
    """A sync run as the API answers it (an error as its class, message and hint)."""
    error = report.error
    return json_value({
        "source": report.source, "rows": report.rows, "seconds": round(report.seconds, 3),
        "tables": [{"table": t.table, "strategy": t.strategy, "rows": t.rows,
                    "seconds": round(t.seconds, 3), "note": t.note, "changes": t.changes}
                   for t in report.tables],
        "error": None if error is None else {"title": type(error).__name__,
                                              "detail": error.message, "hint": error.hint},
    })


def router(ws: meterql.Workspace, admin: Any) -> APIRouter:
    api = APIRouter(tags=["sync"], dependencies=[admin])

    @api.post("/v1/sync")
    def sync(body: SyncIn) -> JSONResponse:
        """Copy what changed at the sources into their replicas now; each source's report.
        200 when every source synced, 207 when one failed (its report holds the error)."""
        names = body.sources or [s.name for s in ws.sources() if s.mode == "sync"]
        if not names:
            raise InvalidSourceError("no source is in sync mode",
                                     hint="PATCH /v1/sources/{name} with {\"mode\": \"sync\"}")
        names = [ws.sources.get(name).name for name in names]  # (unknown: did you mean)
        reports = SyncSchedule(ws, sources=names, notify=lambda attempt: None).run_due()
        failed = any(r.error is not None for r in reports)
        return JSONResponse({"reports": [report_json(r) for r in reports]},
                            status_code=207 if failed else 200)

    @api.put("/v1/tables/{name}/sync")
    def strategy(name: str, body: StrategyIn) -> dict[str, Any]:
        """How a table is synced: full, append (a cursor), merge (a cursor and the key) or
        cdc; the answer is the configuration stored, columns spelt as the table spells them."""
        ws.sync.set_strategy(name, body.strategy, body.cursor, body.lag, body.soft_delete)
        table = ws.tables.get(name)
        stored, cursor, lag, soft_delete = ws.catalog.sync_configs(table.source)[
            (table.schema, table.name)]
        return {"table": table.full_name, "strategy": stored, "cursor": cursor, "lag": lag,
                "soft_delete": soft_delete}

    return api
