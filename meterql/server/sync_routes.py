"""Sync over HTTP (scope ``admin``), as ``meterql sync`` and ``meterql source strategy`` do it:
``POST /v1/sync`` runs sources now (with the schedule's retries; its progress streamed as NDJSON
when asked), ``PUT /v1/tables/{name}/sync`` chooses how a table is copied."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql.encoders import json_value
from meterql.errors import InvalidSourceError, MeterqlError
from meterql.sync.config import Strategy
from meterql.sync.runner import SyncReport
from meterql.sync.schedule import SyncAttempt, SyncSchedule

NDJSON = "application/x-ndjson"


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
    cluster_by: list[Annotated[str, Field(max_length=256)]] | None = Field(
        None, max_length=16, description="the order the replica keeps, e.g. [customer_id, ts]")


def report_json(report: SyncReport) -> dict[str, Any]:
    """A sync run as the API answers it, table by table (an error as its class, message and
    hint: the run's, and each failed table's)."""
    return json_value({
        "source": report.source, "rows": report.rows, "seconds": round(report.seconds, 3),
        "tables": [{"table": t.table, "strategy": t.strategy, "rows": t.rows, "read": t.read,
                    "seconds": round(t.seconds, 3), "note": t.note, "changes": t.changes,
                    "snapshot": t.snapshot, "error": _error_json(t.error)}
                   for t in report.tables],
        "error": _error_json(report.error),
    })


def _error_json(error: MeterqlError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    out = {"title": type(error).__name__, "detail": error.message, "hint": error.hint}
    out.update({k: v for k, v in (("source", error.source), ("table", error.table)) if v})
    return out


def _sources(ws: meterql.Workspace, body: SyncIn) -> list[str]:
    """The sources a request syncs, by their names (checked: "did you mean")."""
    names = body.sources or [s.name for s in ws.sources() if s.replicated]
    if not names:
        raise InvalidSourceError("no source is in sync mode",
                                 hint="PATCH /v1/sources/{name} with {\"mode\": \"sync\"}")
    return [ws.sources.get(name).name for name in names]


async def _progress_lines(ws: meterql.Workspace, names: list[str]) -> AsyncIterator[bytes]:
    """The NDJSON answer of a sync: the runs' progress as the sync thread reports it, then
    the reports (as the JSON answer has them)."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def tell(line: dict[str, Any]) -> None:  # (from the sync thread)
        loop.call_soon_threadsafe(lines.put_nowait, line)

    def run(name: str) -> SyncReport:
        def progress(table: str, rows: int) -> None:
            tell({"event": "progress", "source": name, "table": table, "rows": rows})

        return ws.sync(name, progress=progress)[0]

    def notify(attempt: SyncAttempt) -> None:
        if attempt.retry_in is not None:
            tell({"event": "retry", "source": attempt.source, "attempt": attempt.attempt,
                  "retry_in_s": round(attempt.retry_in, 3),
                  "error": report_json(attempt.report)["error"]})

    schedule = SyncSchedule(ws, sources=names, run=run, notify=notify)
    running = loop.run_in_executor(None, schedule.run_due)
    running.add_done_callback(lambda _: lines.put_nowait(None))
    while (line := await lines.get()) is not None:
        yield _line(line)
    try:
        reports = running.result()
    except MeterqlError as exc:  # (the status is sent: the error is the last line)
        yield _line({"event": "error", "title": type(exc).__name__, "detail": exc.message,
                     "hint": exc.hint})
        return
    yield _line({"event": "done", "reports": [report_json(r) for r in reports]})


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode() + b"\n"


def router(ws: meterql.Workspace, admin: Any) -> APIRouter:
    api = APIRouter(tags=["sync"], dependencies=[admin])

    @api.post("/v1/sync", responses={
        200: {"content": {"application/json": {}, NDJSON: {}},
              "description": "every source synced (JSON); or, when Accept is "
              "application/x-ndjson, the run's progress as it goes, one JSON object a line, "
              "ending with the reports"},
        207: {"description": "a source failed: its report holds the error (JSON only)"}})
    async def sync(request: Request, body: SyncIn) -> Response:
        """Copy what changed at the sources into their replicas now; each source's report.
        200 when every source synced, 207 when one failed (its report holds the error).
        With ``Accept: application/x-ndjson`` the answer streams a line per progress report
        (``{"event": "progress", "source", "table", "rows"}``), a line per failed attempt
        that is tried again (``{"event": "retry", "source", "attempt", "retry_in_s",
        "error"}``) and last ``{"event": "done", "reports": [...]}``, always with status 200
        once it has started (a failure is in its report)."""
        names = await run_in_threadpool(_sources, ws, body)
        if NDJSON in request.headers.get("accept", ""):
            return StreamingResponse(_progress_lines(ws, names), media_type=NDJSON)
        reports = await run_in_threadpool(SyncSchedule(ws, sources=names,
                                                       notify=lambda attempt: None).run_due)
        failed = any(r.error is not None for r in reports)
        return JSONResponse({"reports": [report_json(r) for r in reports]},
                            status_code=207 if failed else 200)

    @api.put("/v1/tables/{name}/sync")
    def strategy(name: str, body: StrategyIn) -> dict[str, Any]:
        """How a table is synced: full, append (a cursor), merge (a cursor and the key) or
        cdc; the answer is the configuration stored, columns spelt as the table spells them."""
        ws.sync.set_strategy(name, body.strategy, body.cursor, body.lag, body.soft_delete,
                             body.cluster_by)
        table = ws.tables.get(name)
        stored, cursor, lag, soft_delete, cluster_by = ws.catalog.sync_configs(table.source)[
            (table.schema, table.name)]
        return {"table": table.full_name, "strategy": stored, "cursor": cursor, "lag": lag,
                "soft_delete": soft_delete, "cluster_by": list(cluster_by)}

    return api
