"""The HTTP API (FastAPI): queries, aggregates, sources and tables under ``/v1``.

Every endpoint but ``/v1/health`` needs ``Authorization: Bearer KEY`` with a scope that covers
it; errors are ``application/problem+json``; OpenAPI is at ``/openapi.json`` and ``/docs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import date, datetime
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql.aggregates import Cancel, new_aggregate
from meterql.engine import Result
from meterql.errors import AmbiguousNameError, QueryCancelledError, UnknownTableError
from meterql.output import json_value, plain_decimals
from meterql.server import docs, problems
from meterql.server.guard import PUBLIC, Access, RequestGuard
from meterql.server.ingest import router as ingest_routes
from meterql.server.key_routes import router as key_routes
from meterql.server.push import EventPush
from meterql.sql_text import quote_qualified
from meterql.sync.schedule import SyncSchedule, log_attempts

ARROW_STREAM = "application/vnd.apache.arrow.stream"


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sql: str = Field(description="one SELECT; tables as source.schema.table",
                     examples=["SELECT count(*) AS n FROM pg.public.events"])
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="values for :name parameters (always bound)")
    timeout_s: float | None = Field(None, gt=0, description="at most the server's limit")
    max_rows: int | None = Field(None, ge=0, description="at most the server's row cap")


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


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: date | datetime = Field(alias="from", description="inclusive; a date is midnight "
                                   "in tz")
    end: date | datetime = Field(alias="to", description="exclusive")
    customers: list[str] | None = Field(None, description="customers to report; those "
                                        "without usage get quantity 0")
    tz: str = Field("UTC", description="IANA time zone of the dates and windows",
                    examples=["Europe/Berlin"])
    window: Literal["day", "month"] | None = None


class EvaluateRequest(Period):
    version: int | None = Field(None, ge=1, description="default: the latest")


class DryRunRequest(Period):
    sql: str
    description: str | None = None
    unit: str | None = None
    dialect: str = "duckdb"
    customer_column: str = "customer_id"


def create_app(ws: meterql.Workspace, *, timeout: float = 60.0, max_rows: int = 10_000_000,
               sync: bool = False, sync_every_s: float = 900.0,
               log: logging.Logger | None = None) -> FastAPI:
    """The API over one open workspace. ``timeout`` and ``max_rows`` bound every query;
    with ``sync`` the server runs the synced sources' schedules in the background."""
    log = log or logging.getLogger("meterql.server")
    scheduler = SyncSchedule(ws, sync_every_s, notify=log_attempts(log)) if sync else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if scheduler is not None:
            scheduler.start()
        yield
        if scheduler is not None:
            scheduler.stop()

    app = _App(
        ws, log,
        title="meterql",
        version=meterql.__version__,
        description="Federated SQL over billing data: queries, aggregates, sources. Errors "
        "are application/problem+json.",
        lifespan=lifespan,
        docs_url=None,  # (served from the package by docs.install: no third-party script)
        redoc_url=None,
    )
    app.state.log = log
    problems.install(app)
    docs.install(app)

    read, admin = Depends(Access("read")), Depends(Access("admin"))
    app.include_router(ingest_routes(ws, Depends(Access("ingest"))))
    app.include_router(key_routes(ws, admin))

    @app.get("/v1/health", tags=["meta"], dependencies=[Depends(PUBLIC)])
    async def health() -> dict[str, Any]:
        """Liveness: no key needed."""
        return {"status": "ok", "version": meterql.__version__}

    @app.post("/v1/query", tags=["query"], dependencies=[read], responses={
        200: {"content": {"application/json": {}, "text/csv": {}, ARROW_STREAM: {}},
              "description": "rows as JSON (default), CSV or an Arrow IPC stream, by Accept"}})
    async def query(request: Request, body: QueryRequest) -> Response:
        """Run one SELECT. The answer's format follows ``Accept``; large results stream."""
        limit = timeout if body.timeout_s is None else min(body.timeout_s, timeout)
        cap = max_rows if body.max_rows is None else min(body.max_rows, max_rows)
        running = ws.submit(body.sql, body.params, timeout=limit, max_rows=cap)
        result = await _until_done(request, asyncio.wrap_future(running.future),
                                   running.cancel)
        log.info("query key=%s rows=%d truncated=%s %.1f ms params=%s sql=%s",
                 request.state.key, result.num_rows, result.truncated, result.seconds * 1000,
                 sorted(body.params), " ".join(body.sql.split()))
        return _rows_response(result, request.headers.get("accept", ""))

    @app.get("/v1/aggregates", tags=["aggregates"], dependencies=[read])
    def list_aggregates() -> list[dict[str, Any]]:
        """The latest version of every aggregate."""
        return [a.describe() for a in ws.aggregates.list()]

    @app.post("/v1/aggregates", tags=["aggregates"], dependencies=[admin], status_code=201,
              responses={200: {"description": "the same definition is already the latest"}})
    def save_aggregate(body: AggregateIn) -> JSONResponse:
        """Validate and save a definition as the aggregate's next version."""
        saved, new = ws.aggregates.save(body.name, body.sql, description=body.description,
                                        unit=body.unit, dialect=body.dialect,
                                        customer_column=body.customer_column)
        return JSONResponse({**saved.describe(), "created": new}, status_code=201 if new else 200)

    @app.get("/v1/aggregates/{name}", tags=["aggregates"], dependencies=[read])
    def aggregate_versions(name: str) -> list[dict[str, Any]]:
        """Every version of one aggregate, oldest first."""
        return [a.describe() for a in ws.aggregates.versions(name)]

    @app.post("/v1/aggregates/{name}/evaluate", tags=["aggregates"], dependencies=[read])
    async def evaluate(request: Request, name: str, body: EvaluateRequest) -> JSONResponse:
        """Billable usage per customer (and window) for a period, with its provenance."""
        cancel = Cancel()

        def work():
            return ws.aggregates.evaluate(name, body.start, body.end, customers=body.customers,
                                          tz=body.tz, window=body.window, version=body.version,
                                          timeout=timeout, cancel=cancel)

        loop = asyncio.get_running_loop()
        ev = await _until_done(request, loop.run_in_executor(None, work), cancel.cancel)
        return JSONResponse({"evaluation": _jsonable(ev.describe()),
                             "rows": [_jsonable(r) for r in ev.rows()]})

    @app.post("/v1/aggregates/{name}/dry-run", tags=["aggregates"], dependencies=[read])
    async def dry_run(request: Request, name: str, body: DryRunRequest) -> JSONResponse:
        """Evaluate a draft without saving it; shows what would change against the current
        version."""
        draft = new_aggregate(name, body.sql, description=body.description, unit=body.unit,
                              dialect=body.dialect, customer_column=body.customer_column)
        cancel = Cancel()

        def work():
            return ws.aggregates.dry_run(draft, body.start, body.end, customers=body.customers,
                                         tz=body.tz, window=body.window, timeout=timeout,
                                         cancel=cancel)

        loop = asyncio.get_running_loop()
        out = await _until_done(request, loop.run_in_executor(None, work), cancel.cancel)
        return JSONResponse(_jsonable({
            "current_version": out["current_version"],
            "diff": out["diff"],
            "rows": out["draft"].rows(),
        }))

    @app.get("/v1/evaluations", tags=["aggregates"], dependencies=[read])
    def evaluations(aggregate: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
        """The evaluation log, newest first: what was billed from what."""
        return _jsonable(ws.aggregates.log(aggregate, limit))

    @app.get("/v1/sources", tags=["catalog"], dependencies=[read])
    def sources() -> list[dict[str, Any]]:
        """Registered sources (passwords shown as ***) and their replicas' watermarks."""
        out = []
        for source in ws.sources():
            out.append({
                "name": source.name, "kind": source.kind, "mode": source.mode,
                "uri": source.display_uri, "options": source.options,
                "tables": len(ws.tables(source.name)),
                "watermarks": [w.describe() for w in ws.watermarks(source.name)]
                if source.mode == "sync" else [],
            })
        return out

    @app.get("/v1/tables", tags=["catalog"], dependencies=[read])
    def tables(source: str | None = None) -> list[dict[str, Any]]:
        """Every table as source.schema.table."""
        return [{"name": t.full_name, "kind": t.kind, "columns": len(t.columns)}
                for t in ws.tables(source)]

    @app.get("/v1/tables/{name}", tags=["catalog"], dependencies=[read])
    async def table(request: Request, name: str,
                    sample: Annotated[int, Query(ge=0, le=1000)] = 10) -> JSONResponse:
        """A table's columns and a sample of its rows."""
        try:
            entry = ws.table(name)
        except (UnknownTableError, AmbiguousNameError) as exc:
            return problems.meterql_problem(exc, request.url.path,
                                            404 if isinstance(exc, UnknownTableError) else 400)
        rows: list[dict[str, Any]] = []
        if sample:
            ident = quote_qualified(entry.source, entry.schema, entry.name)
            running = ws.submit(f"SELECT * FROM {ident} LIMIT {int(sample)}", timeout=timeout)
            result = await _until_done(request, asyncio.wrap_future(running.future),
                                       running.cancel)
            rows = result.to_pylist()
        return JSONResponse(_jsonable({
            "name": entry.full_name, "kind": entry.kind,
            "primary_key": list(entry.primary_key),
            "columns": [{"name": c.name, "type": c.type, "source_type": c.source_type,
                         "nullable": c.nullable} for c in entry.columns],
            "sample": rows,
        }))

    app.guard.load(app.routes)
    return app


class _App(FastAPI):
    """FastAPI behind three plain ASGI layers: the access log (outermost, so it also answers an
    unexpected error with a 500 problem), the request guard (key, scope and body size, before
    the body is read; see guard.py), then the event push path (see push.py), which answers
    ``POST /v1/events/{stream}`` before FastAPI's own middleware and routing."""

    def __init__(self, ws: meterql.Workspace, log: logging.Logger, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guard = RequestGuard(EventPush(super().__call__, ws), ws)
        self._front = AccessLog(self.guard, log=log)

    async def __call__(self, scope, receive, send) -> None:
        await self._front(scope, receive, send)


class AccessLog:
    """One log line per request (method, path, status, ms, the key's id, never the key); an
    unexpected exception is logged once here and answered as a 500 problem. Plain ASGI: a
    BaseHTTPMiddleware would wrap every streamed body."""

    def __init__(self, app, log: logging.Logger) -> None:
        self.app, self.log = app, log

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            self.log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if "started" not in status:
                status["code"] = 500
                await problems.internal_error(scope["path"])(scope, receive, send)
        finally:
            self.log.info("%s %s %s %.1f ms key=%s", scope["method"], scope["path"],
                          status["code"], (time.perf_counter() - t0) * 1000,
                          scope.get("state", {}).get("key", "-"))


async def _until_done(request: Request, work: asyncio.Future, cancel) -> Any:
    """The work's result; if the client goes away first, the work is cancelled."""
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            cancel()
            with contextlib.suppress(Exception):
                await work
            raise QueryCancelledError("the client disconnected; its query was cancelled")
        return work.result()
    finally:
        watcher.cancel()


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


# -- results as JSON, CSV or Arrow --------------------------------------------------------------
def _rows_response(result: Result, accept: str) -> Response:
    headers = {
        "X-Meterql-Rows": str(result.num_rows),
        "X-Meterql-Truncated": "true" if result.truncated else "false",
        "X-Meterql-Watermarks": json.dumps(_jsonable(result.watermarks)),
    }
    table = result.to_arrow()
    if ARROW_STREAM in accept:
        chunks, media = _arrow_chunks(table), ARROW_STREAM
    elif "text/csv" in accept:
        chunks, media = _csv_chunks(table), "text/csv; charset=utf-8"
    else:
        chunks, media = _json_chunks(result), "application/json"
    if table.nbytes <= _SMALL:  # one body: streaming costs a thread hop per chunk
        return Response(b"".join(chunks), media_type=media, headers=headers)
    return StreamingResponse(chunks, media_type=media, headers=headers)


#: Results up to this many bytes (in Arrow) are sent in one piece, larger ones streamed.
_SMALL = 1 << 20


def _arrow_chunks(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=65536):
            writer.write_batch(batch)
            yield _drain(sink)
    yield _drain(sink)


def _csv_chunks(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    schema = plain_decimals(pa.RecordBatch.from_pylist([], schema=table.schema)).schema
    with pacsv.CSVWriter(sink, schema) as writer:
        for batch in table.to_batches(max_chunksize=65536):
            writer.write_batch(plain_decimals(batch))
            yield _drain(sink)
    yield _drain(sink)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _json_chunks(result: Result) -> Iterator[bytes]:
    table = result.to_arrow()
    columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    yield b'{"columns": ' + json.dumps(columns).encode() + b', "rows": ['
    first = True
    for batch in table.to_batches(max_chunksize=16384):
        names = batch.schema.names
        values = [col.to_pylist() for col in batch.columns]
        rows = [[json_value(v) for v in row] for row in zip(*values, strict=True)] if names else []
        if rows:
            text = ", ".join(json.dumps(r) for r in rows)
            yield (b"" if first else b", ") + text.encode()
            first = False
    tail = {"row_count": result.num_rows, "truncated": result.truncated,
            "seconds": round(result.seconds, 6), "watermarks": _jsonable(result.watermarks)}
    yield b"], " + json.dumps(tail).encode()[1:]


def _jsonable(value: Any) -> Any:
    return json_value(value)

