"""Aggregates in the navigator: the list with versions, a version's SQL, header and provenance,
the evaluation log with hashes, evaluation for a period (table and chart), and a draft in the
editor, checked as it is typed, dry-run against the current version and saved (admin).

Every action calls the library as the HTTP API and the CLI do: ``check_definition`` (what
``meterql aggregate apply`` and ``POST /v1/aggregates/apply`` validate each file with),
``dry_run`` read through ``dry_run_plan`` (as ``meterql aggregate dry-run``), ``evaluate`` and
``log``; saving is ``apply_definitions``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from meterql.aggregates import WINDOWS, Aggregate, Cancel
from meterql.aggregates.plan import dry_run_plan
from meterql.encoders import json_envelope, json_value
from meterql.errors import UnknownAggregateError
from meterql.server.aggregate_routes import EvaluateRequest, Period, evaluation
from meterql.server.disconnect import until_done
from meterql.server.navigator.render import page, render_fragment

NAV = ("Aggregates", "/aggregates", "read")
#: The evaluations the log shows, newest first.
LOG_ROWS = 50
#: The rows of an evaluation or a dry run sent to the page (it shows them a page at a time).
ROW_CAP = 5000
#: The customers drawn in an evaluation's chart (those with the largest totals).
SERIES = 12
#: What errors call the editor's text.
ORIGIN = "draft"
#: A new aggregate's text in the editor: the definition file's format.
TEMPLATE = """-- name: my_aggregate
-- description: what is billed
-- unit: call
SELECT customer_id, count(*) AS quantity
FROM source.schema.table
WHERE ts >= :period_start AND ts < :period_end
GROUP BY customer_id
"""


class DefinitionText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=1_000_000)


class DraftPeriod(Period):
    text: str = Field(max_length=1_000_000)


def definition_text(a: Aggregate) -> str:
    """A version as a definition file (what ``parse_definition`` reads back)."""
    lines = [f"-- name: {a.name}"]
    for key, value in (("description", a.description), ("unit", a.unit)):
        if value:
            lines.append(f"-- {key}: {value}")
    if a.dialect != "duckdb":
        lines.append(f"-- dialect: {a.dialect}")
    if a.customer_column != "customer_id":
        lines.append(f"-- customer: {a.customer_column}")
    if a.freshness is not None:
        lines.append(f"-- freshness: {a.freshness}")
    return "\n".join(lines) + "\n" + a.sql + "\n"


def when(value: Any) -> Any:
    """A period bound as shown: the date at a midnight, else the date and time."""
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def table_json(table: pa.Table) -> dict[str, Any]:
    """Columns with their types and the first :data:`ROW_CAP` rows as lists of JSON values,
    the periods as shown, and how many rows there are."""
    # (the column list of the API's JSON answers: each column's SQL type name)
    columns = json.loads(b"".join(json_envelope(table.schema.empty_table(), {})))["columns"]
    rows = [[json_value(when(v)) for v in row.values()]
            for row in table.slice(0, ROW_CAP).to_pylist()]
    return {"columns": columns, "rows": rows, "row_count": table.num_rows}


def chart_json(table: pa.Table, customer: str) -> dict[str, Any]:
    """The chart of an evaluation: the quantity per customer and period (dimensions summed),
    for the :data:`SERIES` customers with the largest totals."""
    if table.num_rows == 0:
        return {"labels": [], "series": [], "customers": 0}
    keyed = pa.table({"customer": table.column(customer).cast(pa.string()),
                      "period": table.column("period_start"),
                      "quantity": table.column("quantity")})
    sums = keyed.group_by(["customer", "period"]).aggregate([("quantity", "sum")]).to_pylist()
    totals: dict[str, Any] = {}
    cells: dict[tuple[str, Any], Any] = {}
    for row in sums:
        name = "" if row["customer"] is None else row["customer"]
        totals[name] = totals.get(name, 0) + (row["quantity_sum"] or 0)
        cells[name, row["period"]] = row["quantity_sum"] or 0
    periods = sorted({row["period"] for row in sums})
    top = sorted(totals, key=lambda c: (-totals[c], c))[:SERIES]
    return {"labels": [json_value(when(p)) for p in periods],
            "series": [{"name": c, "values": [float(cells.get((c, p), 0)) for p in periods]}
                       for c in top],
            "customers": len(totals)}


def _defaults() -> dict[str, Any]:
    today = date.today()
    first = today.replace(day=1)
    following = (first.replace(year=first.year + 1, month=1) if first.month == 12
                 else first.replace(month=first.month + 1))
    return {"from": first.isoformat(), "to": following.isoformat()}


def router(ctx: Any) -> APIRouter:
    ws, timeout = ctx.ws, ctx.timeout
    nav = APIRouter(include_in_schema=False)

    def missing(request: Request, exc: UnknownAggregateError) -> HTMLResponse:
        return page(request, "aggregate_missing.html", status_code=404, error=exc)

    @nav.get("/aggregates", dependencies=[ctx.read])
    def aggregate_list(request: Request) -> HTMLResponse:
        rows = [(a, len(ws.aggregates.versions(a.name))) for a in ws.aggregates.list()]
        return page(request, "aggregates.html", rows=rows)

    @nav.get("/aggregates/+new", dependencies=[ctx.read])
    def new_aggregate(request: Request) -> HTMLResponse:
        return page(request, "aggregate_editor.html", name=None, based_on=None,
                    text=TEMPLATE, windows=WINDOWS, **_defaults())

    @nav.get("/aggregates/{name}", dependencies=[ctx.read])
    def aggregate_latest(request: Request, name: str) -> HTMLResponse:
        return _show(request, name, None)

    @nav.get("/aggregates/{name}/versions/{version}", dependencies=[ctx.read])
    def aggregate_version(request: Request, name: str, version: int) -> HTMLResponse:
        return _show(request, name, version)

    def _show(request: Request, name: str, version: int | None) -> HTMLResponse:
        try:
            versions = ws.aggregates.versions(name)
            shown = ws.aggregates.get(name, version)
        except UnknownAggregateError as exc:
            return missing(request, exc)
        return page(request, "aggregate.html", aggregate=shown, versions=versions,
                    latest=versions[-1], log=ws.aggregates.log(name, LOG_ROWS),
                    log_rows=LOG_ROWS, windows=WINDOWS, **_defaults())

    @nav.get("/aggregates/{name}/edit", dependencies=[ctx.read])
    def aggregate_edit(request: Request, name: str) -> HTMLResponse:
        try:
            latest = ws.aggregates.get(name)
        except UnknownAggregateError as exc:
            return missing(request, exc)
        return page(request, "aggregate_editor.html", name=name, based_on=latest.version,
                    text=definition_text(latest), windows=WINDOWS, **_defaults())

    @nav.get("/aggregates/{name}/log", dependencies=[ctx.read])
    def aggregate_log(name: str) -> HTMLResponse:
        html = render_fragment("aggregate_log.html", log=ws.aggregates.log(name, LOG_ROWS),
                               log_rows=LOG_ROWS)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @nav.post("/aggregates/check", dependencies=[ctx.read])
    def check(body: DefinitionText) -> dict[str, Any]:
        """Validate a definition's text as ``apply`` does (an error is a problem with the
        line and column in the text)."""
        draft = ws.aggregates.check_definition(ORIGIN, body.text)
        return {"valid": True, "name": draft.name}

    @nav.post("/aggregates/dry-run", dependencies=[ctx.read])
    async def dry_run(request: Request, body: DraftPeriod) -> Response:
        draft = ws.aggregates.check_definition(ORIGIN, body.text)
        cancel = Cancel()

        def work() -> dict[str, Any]:
            return ws.aggregates.dry_run(draft, body.start, body.end, customers=body.customers,
                                         tz=body.tz, window=body.window, timeout=timeout,
                                         cancel=cancel, max_staleness=body.max_staleness)

        loop = asyncio.get_running_loop()
        out = await until_done(request, loop.run_in_executor(None, work), cancel.cancel)
        plan = dry_run_plan(out, draft)
        return JSONResponse({"name": plan.name, "against": plan.against, "tz": plan.tz,
                             "summary": json_value(plan.summary()),
                             **table_json(plan.changes)})

    @nav.post("/aggregates/save", dependencies=[ctx.admin])
    def save(body: DefinitionText) -> dict[str, Any]:
        """Save a definition's text as the aggregate's next version (``apply``)."""
        [(saved, new)] = ws.aggregates.apply_definitions([(ORIGIN, body.text)])
        return {"name": saved.name, "version": saved.version, "new": new,
                "url": f"/aggregates/{saved.name}/versions/{saved.version}"}

    @nav.post("/aggregates/{name}/evaluate", dependencies=[ctx.read])
    async def evaluate(request: Request, name: str, body: EvaluateRequest) -> Response:
        ev = await evaluation(request, ws, name, body, timeout)
        zoned = ev.in_zone()
        return JSONResponse({"evaluation": json_value(ev.describe()),
                             "customer_column": ev.aggregate.customer_column,
                             "unit": ev.aggregate.unit, **table_json(zoned),
                             "chart": chart_json(zoned, ev.aggregate.customer_column)})

    return nav
