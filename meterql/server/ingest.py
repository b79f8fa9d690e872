"""Ingestion endpoints: usage events, corrections and backfills (scope ``ingest``)."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

import meterql
from meterql import exact_json
from meterql.encoders import json_value
from meterql.errors import InputLimitError, InvalidBodyError, UnsupportedMediaTypeError
from meterql.local.events import answer_json, count_outcomes
from meterql.local.uploads import Mode as UploadMode
from meterql.server import problems
from meterql.server.guard import BODY_LIMIT
from meterql.server.stream_routes import stream_json
from meterql.sql_text import column_pairs

#: The push endpoint, answered by this module's route and by :class:`meterql.server.push.EventPush`.
EVENTS_PATH = "/v1/events/{stream}"

#: The settings bounding the bodies of pushes and uploads, in MB (guard.py reads them off the
#: routes; every other route has ``http_max_body_mb``).
EVENTS_LIMIT, UPLOAD_LIMIT = "http_max_events_mb", "http_max_upload_mb"

_EVENT_BODY = {
    BODY_LIMIT: EVENTS_LIMIT,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"oneOf": [
                {"type": "object"}, {"type": "array", "items": {"type": "object"}}]}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/cloudevents+json": {"schema": {"type": "object"}},
            "application/cloudevents-batch+json": {"schema": {"type": "array",
                                                              "items": {"type": "object"}}},
        },
    }
}


class EventIn(RootModel[dict[str, Any]]):
    """A whole event (a JSON object)."""


class RowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, Any]


class RowKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: dict[str, Any]


class RowChange(RowKey):
    values: dict[str, Any]


def _exact_body(model: type[BaseModel]) -> Any:
    """A dependency that reads the request's JSON body into ``model`` with its numbers
    exact: FastAPI would read ``12345678901234567.89`` as a float (``12345678901234568.0``)
    before a manual row's column could refuse or keep it. Errors are answered as FastAPI
    answers a body that does not validate (422 ``InvalidRequest``)."""

    async def parse(request: Request) -> BaseModel:
        body = await request.body()
        try:
            data = exact_json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise RequestValidationError([{"loc": ("body",), "type": "json_invalid",
                                           "msg": f"the body is not JSON: {exc}"}]) from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                          for e in exc.errors()]) from None

    return Depends(parse)


def _exact_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads ``model`` with :func:`_exact_body`."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


class StreamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id_field: str = "id"
    timestamp_field: str = "timestamp"
    customer_field: str = "customer_id"
    columns: dict[str, str] | None = Field(
        None, description="declared columns (DuckDB types), then enforced; omit to infer")


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: datetime
    end: datetime


def router(ws: meterql.Workspace, ingest: Any) -> APIRouter:
    api = APIRouter(tags=["ingestion"], dependencies=[ingest])

    @api.post(EVENTS_PATH, openapi_extra=_EVENT_BODY, responses={
        200: {"description": "every event accepted or a duplicate (all durable)"},
        207: {"description": "some events rejected; the others are stored"},
        422: {"description": "every event rejected (problem+json with the results)"}})
    async def push(request: Request, stream: str, backfill: str | None = None) -> Response:
        """Usage events as a JSON object, a JSON array, NDJSON or CloudEvents (gzip
        accepted). The answer lists each event as accepted, duplicate or rejected with the
        reason; a 2xx means the accepted events are committed. (Without ``backfill`` the
        request is answered by :class:`meterql.server.push.EventPush`, the same way.)"""
        return await push_response(ws, stream, request.url.path, request.headers,
                                   request.receive, backfill)

    @api.put(EVENTS_PATH, status_code=201)
    def create_stream(stream: str, body: StreamIn) -> dict[str, Any]:
        """Create a stream before its first event: to name its required fields, or to declare
        its columns (then enforced). Answers the stream as ``GET /v1/streams/{stream}``."""
        config = ws.events.create_stream(
            stream, id_field=body.id_field, timestamp_field=body.timestamp_field,
            customer_field=body.customer_field, schema=body.columns)
        return stream_json(config)

    @api.post("/v1/events/{stream}/{event_id}/amend", openapi_extra=_exact_schema(EventIn))
    def amend(request: Request, stream: str, event_id: str,
              event: Annotated[EventIn, _exact_body(EventIn)]) -> JSONResponse:
        """Replace a stored event (same id) by a corrected one, the whole event with its id,
        timestamp and customer; the original is kept. Numbers are read exactly."""
        outcome = ws.events.amend(stream, event_id, event.root, actor=request.state.key)
        status = 422 if outcome.status == "rejected" else 200
        return JSONResponse(outcome.describe(), status_code=status)

    @api.post("/v1/events/{stream}/{event_id}/void")
    def void(request: Request, stream: str, event_id: str) -> dict[str, Any]:
        """Remove a stored event from usage (kept in the history; its id stays taken)."""
        return ws.events.void(stream, event_id, actor=request.state.key).describe()

    @api.post("/v1/events/{stream}/backfills", status_code=201)
    def open_backfill(stream: str, body: BackfillIn) -> dict[str, Any]:
        """Open a backfill for a time range: push events with ?backfill=ID, then close it to
        make them visible (or revert it later)."""
        backfill = ws.events.open_backfill(stream, body.start, body.end)
        return json_value(ws.events.backfill(backfill))

    @api.get("/v1/backfills/{backfill}")
    def get_backfill(backfill: str) -> dict[str, Any]:
        return json_value(ws.events.backfill(backfill))

    @api.post("/v1/backfills/{backfill}/close")
    def close_backfill(backfill: str) -> dict[str, Any]:
        return json_value(ws.events.close_backfill(backfill))

    @api.post("/v1/backfills/{backfill}/revert")
    def revert_backfill(backfill: str) -> dict[str, Any]:
        return json_value(ws.events.revert_backfill(backfill))

    @api.post("/v1/tables/{name}/upload", status_code=201,
              openapi_extra={BODY_LIMIT: UPLOAD_LIMIT},
              dependencies=[Depends(_multipart_upload)])
    async def upload(request: Request, name: str, file: UploadFile,
                     mode: UploadMode = "append",
                     key: Annotated[list[str] | None, Query()] = None,
                     keep_good: bool = False,
                     dry_run: Annotated[bool, Query(
                         description="read the file as the load would and answer what it "
                         "read (columns and types, the first rows, the rows that do not fit); "
                         "nothing is stored")] = False,
                     round_decimals: Annotated[bool, Query(alias="round")] = False,
                     column: Annotated[list[str] | None, Query(
                         description="NAME:TYPE, repeated: the file's columns declared "
                         "instead of sniffed (as meterql load --column)")] = None
                     ) -> JSONResponse:
        """A CSV file (multipart field ``file``) into ``local.uploads.<name>``: all rows or
        none (``keep_good=true`` loads the good ones and lists the others); the same file
        uploaded again adds nothing (200, status ``unchanged``); ``dry_run=true`` answers
        what the load would read and stores nothing (200). A number with more decimal
        places than its column keeps is a rejected row, unless ``round=true``."""
        limit = ws.catalog.settings[UPLOAD_LIMIT] << 20
        data = await file.read(limit + 1)
        if len(data) > limit:  # (the request guard counted the whole body already)
            raise _too_large(UPLOAD_LIMIT, limit, "file")
        if dry_run:
            preview = await run_in_threadpool(
                ws.uploads.preview, data, name, mode=mode, columns=_declared(column),
                round_decimals=round_decimals)
            return JSONResponse(json_value(preview), status_code=200)
        report = await run_in_threadpool(
            ws.uploads.load, data, name, mode=mode, key=key, keep_good=keep_good,
            columns=_declared(column), round_decimals=round_decimals)
        return JSONResponse(json_value(report.describe()),
                            status_code=201 if report.status == "loaded" else 200)

    @api.post("/v1/tables/{name}/rows", status_code=201, openapi_extra=_exact_schema(RowIn))
    def insert_row(request: Request, name: str,
                   body: Annotated[RowIn, _exact_body(RowIn)],
                   round_decimals: Annotated[bool, Query(alias="round")] = False
                   ) -> dict[str, Any]:
        """Insert one row into ``local.manual.<name>`` (audited). A number with more decimal
        places than its column keeps is refused (422), unless ``round=true``."""
        return json_value(ws.manual.insert(name, body.values, actor=request.state.key,
                                           round_decimals=round_decimals))

    @api.patch("/v1/tables/{name}/rows", openapi_extra=_exact_schema(RowChange))
    def update_row(request: Request, name: str,
                   body: Annotated[RowChange, _exact_body(RowChange)],
                   round_decimals: Annotated[bool, Query(alias="round")] = False
                   ) -> dict[str, Any]:
        """Change one row, found by its key (audited); values as for inserting."""
        return json_value(ws.manual.update(name, body.key, body.values,
                                           actor=request.state.key,
                                           round_decimals=round_decimals))

    @api.delete("/v1/tables/{name}/rows", status_code=204,
                openapi_extra=_exact_schema(RowKey))
    def delete_row(request: Request, name: str,
                   body: Annotated[RowKey, _exact_body(RowKey)]) -> Response:
        """Delete one row, found by its key (audited)."""
        ws.manual.delete(name, body.key, actor=request.state.key)
        return Response(status_code=204)

    return api


def _multipart_upload(request: Request) -> None:
    """Refuse an upload that is not ``multipart/form-data`` (a CSV sent as the raw body, as
    ``curl --data-binary @file.csv -H 'Content-Type: text/csv'`` does) with the way to send it,
    before its form is read as missing its field."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        sent = f"as {content_type}" if content_type else "without a Content-Type"
        raise UnsupportedMediaTypeError(
            f"an upload is sent as multipart/form-data; this one was sent {sent}",
            hint="send the CSV file as the multipart field 'file': curl -F file=@FILE.csv "
                 "(or meterql load FILE --table NAME, which does it for you)")


def _declared(columns: list[str] | None) -> dict[str, str] | None:
    """``NAME:TYPE`` query values as the column types an upload declares.

    >>> _declared(["amount:DECIMAL(18,2)", "plan:VARCHAR"])
    {'amount': 'DECIMAL(18,2)', 'plan': 'VARCHAR'}
    """
    try:
        return column_pairs(columns) if columns else None
    except ValueError as exc:
        raise InvalidBodyError(f"column {exc}", hint="e.g. column=amount:DECIMAL(18,2)"
                               ) from None


async def push_response(ws: meterql.Workspace, stream: str, path: str, headers: Mapping[str, str],
                        receive: Any, backfill: str | None = None) -> Response:
    """The answer to ``POST /v1/events/{stream}`` (``headers`` and ``receive`` are the
    request's; its key is checked already)."""
    body = await _body(receive, headers.get("content-encoding", ""),
                       ws.catalog.settings[EVENTS_LIMIT] << 20)
    outcomes = await ws.events.ingest_body_async(
        stream, body, headers.get("content-type", "application/json"), backfill=backfill)
    counts = count_outcomes(outcomes)
    if counts["rejected"] and counts["rejected"] == len(outcomes):
        return problems.problem(422, "EventsRejected", f"all {len(outcomes)} events were "
                                "rejected", path, **counts,
                                results=[o.describe() for o in outcomes])
    return Response(answer_json(counts, outcomes), media_type="application/json",
                    status_code=207 if counts["rejected"] else 200)


async def _body(receive: Any, encoding: str, limit: int) -> bytes:
    """The request's body, read from the ASGI ``receive``; gzip undone. At most ``limit`` bytes
    either way (the request guard has checked the bytes sent already)."""
    data = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidBodyError("the client went away before the body was read")
        data += message.get("body", b"")
        if len(data) > limit:
            raise _too_large(EVENTS_LIMIT, limit, "body")
        if not message.get("more_body", False):
            break
    if encoding.lower() == "gzip":
        try:
            decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out = decompressor.decompress(bytes(data), limit + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise InvalidBodyError(f"the gzip body does not decompress: {exc}") from None
        if len(out) > limit:
            raise _too_large(EVENTS_LIMIT, limit, "body once decompressed")
        return out
    return bytes(data)


def _too_large(setting: str, limit: int, what: str) -> InputLimitError:
    return InputLimitError(f"the {what} is larger than {limit >> 20} MB",
                           hint=f"send smaller batches, or raise the workspace setting "
                                f"{setting} (meterql settings set {setting} N)")
