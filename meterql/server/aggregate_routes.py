"""Aggregates over HTTP: list, save and apply a set of definitions (scope ``admin``),
versions, evaluate, dry-run, and the evaluation log (scope ``read``)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql.aggregates import Cancel, new_aggregate
from meterql.aggregates.evaluate import Evaluation, Window
from meterql.encoders import encode, json_value
from meterql.server.disconnect import until_done
from meterql.server.query_routes import ARROW_STREAM, MAX_STALENESS

FRESHNESS = ("the aggregate's freshness bound (as its header '-- freshness: 1h'): a duration "
             "(\"0\" is live) or \"none\"; an evaluation's max_staleness wins over it, and "
             "it over the workspace setting max_staleness")


class AggregateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(examples=["api_calls"])
    sql: str = Field(examples=["SELECT customer_id, count(*) AS quantity FROM pg.public.events "
                               "WHERE ts >= :period_start AND ts < :period_end "
                               "GROUP BY customer_id"])
    description: str | None = None
    unit: str | None = None
    dialect: str = "duckdb"
    customer_column: str = "customer_id"
    freshness: str | None = Field(None, examples=["1h"], description=FRESHNESS)


class DefinitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    origin: str = Field(max_length=1000, description="where the text comes from, named in "
                        "errors: the file's name", examples=["api_calls.sql"])
    text: str = Field(description="the file's text: '-- key: value' header lines, then the "
                      "SQL", examples=["-- name: api_calls\n-- unit: call\nSELECT "
                                       "customer_id, count(*) AS quantity FROM pg.public.events "
                                       "WHERE ts >= :period_start AND ts < :period_end "
                                       "GROUP BY customer_id"])


class ApplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    definitions: list[DefinitionIn] = Field(
        min_length=1, max_length=10_000,
        description="one definition per aggregate: the .sql files of a folder")


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: date | datetime = Field(alias="from", description="inclusive; a date is midnight "
                                   "in tz")
    end: date | datetime = Field(alias="to", description="exclusive")
    customers: list[str] | None = Field(None, description="customers to report; those "
                                        "without usage get quantity 0")
    tz: str = Field("UTC", description="IANA time zone of the dates and windows",
                    examples=["Europe/Berlin"])
    window: Window | None = None
    max_staleness: str | float | None = Field(
        None, examples=["5m"], description=MAX_STALENESS.replace(
            "absent: the workspace setting", "absent: the aggregate's header '-- freshness:', "
            "else the workspace setting"))


class EvaluateRequest(Period):
    version: int | None = Field(None, ge=1, description="default: the latest")


class DryRunRequest(Period):
    sql: str
    description: str | None = None
    unit: str | None = None
    dialect: str = "duckdb"
    customer_column: str = "customer_id"
    freshness: str | None = Field(None, examples=["1h"], description=FRESHNESS)


def router(ws: meterql.Workspace, read: Any, admin: Any, *, timeout: float) -> APIRouter:
    """``timeout``: the time limit of each query an evaluation runs."""
    api = APIRouter(tags=["aggregates"])

    @api.get("/v1/aggregates", dependencies=[read])
    def list_aggregates() -> list[dict[str, Any]]:
        """The latest version of every aggregate."""
        return [a.describe() for a in ws.aggregates.list()]

    @api.post("/v1/aggregates", dependencies=[admin], status_code=201,
              responses={200: {"description": "the same definition is already the latest"}})
    def save_aggregate(body: AggregateIn) -> JSONResponse:
        """Validate and save a definition as the aggregate's next version."""
        saved, new = ws.aggregates.save(body.name, body.sql, description=body.description,
                                        unit=body.unit, dialect=body.dialect,
                                        customer_column=body.customer_column,
                                        freshness=body.freshness)
        return JSONResponse({**saved.describe(), "created": new}, status_code=201 if new else 200)

    @api.post("/v1/aggregates/apply", dependencies=[admin])
    def apply(body: ApplyIn) -> list[dict[str, Any]]:
        """Validate a set of definitions (the .sql files of a folder, as ``meterql aggregate
        apply``) and save each changed one as a new version: all or nothing, an invalid one
        is a 400 naming its origin and line, and nothing is saved. Answers each aggregate's
        version in force (as ``GET /v1/aggregates/{name}`` shows a version) and whether it is
        new, in the order sent."""
        applied = ws.aggregates.apply_definitions([(d.origin, d.text)
                                                   for d in body.definitions])
        return [{**saved.describe(), "new": new} for saved, new in applied]

    @api.get("/v1/aggregates/{name}", dependencies=[read])
    def aggregate_versions(name: str) -> list[dict[str, Any]]:
        """Every version of one aggregate, oldest first."""
        return [a.describe() for a in ws.aggregates.versions(name)]

    @api.get("/v1/aggregates/{name}/versions/{version}", dependencies=[read])
    def aggregate_version(name: str, version: Annotated[int, Path(ge=1)]) -> dict[str, Any]:
        """One version of an aggregate (an unknown version: 404, naming the versions)."""
        return ws.aggregates.get(name, version).describe()

    @api.post("/v1/aggregates/{name}/evaluate", dependencies=[read])
    async def evaluate(request: Request, name: str, body: EvaluateRequest) -> Response:
        """Billable usage per customer (and window) for a period, with its provenance."""
        ev = await evaluation(request, ws, name, body, timeout)
        if ARROW_STREAM in request.headers.get("accept", ""):
            return arrow_response(ev.table, {"evaluation": ev.describe(),
                                             "aggregate": ev.aggregate.describe()})
        return JSONResponse({"evaluation": json_value(ev.describe()),
                             "rows": [json_value(r) for r in ev.rows()]})

    @api.post("/v1/aggregates/{name}/dry-run", dependencies=[read])
    async def dry_run(request: Request, name: str, body: DryRunRequest) -> Response:
        """Evaluate a draft without saving it; shows what would change against the current
        version."""
        draft = new_aggregate(name, body.sql, description=body.description, unit=body.unit,
                              dialect=body.dialect, customer_column=body.customer_column,
                              freshness=body.freshness)
        cancel = Cancel()

        def work():
            return ws.aggregates.dry_run(draft, body.start, body.end, customers=body.customers,
                                         tz=body.tz, window=body.window, timeout=timeout,
                                         cancel=cancel, max_staleness=body.max_staleness)

        loop = asyncio.get_running_loop()
        out = await until_done(request, loop.run_in_executor(None, work), cancel.cancel)
        if ARROW_STREAM in request.headers.get("accept", ""):
            return arrow_response(out["draft"].table, {
                "current_version": out["current_version"], "diff": out["diff"],
                "evaluation": out["draft"].describe(),
                "aggregate": out["draft"].aggregate.describe()})
        return JSONResponse(json_value({
            "current_version": out["current_version"],
            "diff": out["diff"],
            "rows": out["draft"].rows(),
            "evaluation": out["draft"].describe(),
        }))

    @api.get("/v1/evaluations", dependencies=[read])
    def evaluations(aggregate: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        """The evaluation log, newest first: what was billed from what."""
        return json_value(ws.aggregates.log(aggregate, limit))

    return api


def arrow_response(table: pa.Table, about: dict[str, Any]) -> Response:
    """Rows as an Arrow IPC stream, with what they are (``about``, as JSON) in the schema's
    metadata under ``meterql``: a client rebuilds the rows with their exact types."""
    text = json.dumps(json_value(about), ensure_ascii=False)
    tagged = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                            b"meterql": text.encode()})
    return Response(b"".join(encode(tagged, "arrow")), media_type=ARROW_STREAM)


async def evaluation(request: Request, ws: meterql.Workspace, name: str, body: EvaluateRequest,
                     timeout: float) -> Evaluation:
    """``name`` evaluated as ``body`` asks, off the event loop; a client that goes away
    cancels it (the API's and the navigator's evaluate)."""
    cancel = Cancel()

    def work() -> Evaluation:
        return ws.aggregates.evaluate(name, body.start, body.end, customers=body.customers,
                                      tz=body.tz, window=body.window, version=body.version,
                                      timeout=timeout, cancel=cancel,
                                      max_staleness=body.max_staleness)

    loop = asyncio.get_running_loop()
    return await until_done(request, loop.run_in_executor(None, work), cancel.cancel)
