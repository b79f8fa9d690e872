"""Manual tables: the list, one table's rows and its audit (who, when, before, after) as
``GET /v1/audit`` shows it. Keys that may write rows through ``/v1/tables/{name}/rows`` (scope
ingest or admin) add, edit and delete them here: each value is checked by ``ws.manual``, a
refused cell's reason is shown next to it, and nothing is stored.

A form sends every value as text, as the CLI does; an empty field is NULL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from meterql import exact_json
from meterql.catalog import Table
from meterql.encoders import json_value, type_name
from meterql.errors import ConflictError, MeterqlError, UnknownTableError
from meterql.server.guard import Access
from meterql.server.manual_routes import manual_tables, table_json
from meterql.server.navigator.forms import checked_form, session_of
from meterql.server.navigator.render import page
from meterql.sql_text import quote_ident, quote_qualified

NAV = ("Manual tables", "/manual", "read")
#: Rows and audit entries per page.
ROWS, AUDIT = 50, 50
_DONE = {"added": "Row added.", "saved": "Row saved.", "deleted": "Row deleted."}


def router(ctx: Any) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    ws = ctx.ws
    ingest = Depends(Access("ingest"))  # (rows are written with ingest, as /v1/tables/.../rows)

    def table_of(name: str) -> Table:
        found = manual_tables(ws)
        if name not in found:
            raise UnknownTableError(f"no manual table local.manual.{name}",
                                    table=f"local.manual.{name}",
                                    hint="the list at /manual shows the manual tables")
        return found[name]

    def show(request: Request, name: str, rows_page: int = 0, audit_page: int = 0,
             status_code: int = 200, edit: dict[str, Any] | None = None,
             done: str | None = None) -> HTMLResponse:
        """The table's page; ``edit``: a refused form (``form``: ``add`` or the row's key
        text, ``values``, ``errors`` by column, ``error``) shown again with its reasons."""
        table = table_of(name)
        info = table_json(table)
        info["columns"] = {c: type_name(t) for c, t in info["columns"].items()}  # (as headers)
        key_cols = info["key"]
        ident = quote_qualified("local", "manual", name)
        order = ", ".join(quote_ident(k) for k in key_cols)
        rows_page, audit_page = max(rows_page, 0), max(audit_page, 0)
        total = ws.query(f"SELECT count(*) FROM {ident}").rows()[0][0]
        result = ws.query(f"SELECT * FROM {ident} ORDER BY {order} "
                          f"LIMIT {ROWS} OFFSET {rows_page * ROWS}")
        rows = []
        for row in result.to_pylist():
            key_text = json.dumps(json_value({k: row[k] for k in key_cols}))
            rows.append({"key": key_text, "cells": {c: cell_text(v) for c, v in row.items()}})
        audit = list(reversed(ws.manual.audit(name)))  # newest first
        names = {k["id"]: k["name"] for k in ws.keys.list()}
        entries = [{"when": _when(a["changed_at"]), "actor": a["actor"],
                    "actor_name": names.get(a["actor"]), "action": a["action"],
                    "key": _json(a["key"]), "before": _json(a["before"]),
                    "after": _json(a["after"])}
                   for a in audit[audit_page * AUDIT:(audit_page + 1) * AUDIT]]
        return page(request, "manual_table.html", status_code=status_code, table=info,
                    rows=rows, total=total, rows_page=rows_page, row_pages=-(-total // ROWS),
                    entries=entries, audit_total=len(audit), audit_page=audit_page,
                    audit_pages=-(-len(audit) // AUDIT), edit=edit, done=_DONE.get(done or ""),
                    editor=session_of(request).scope in ("ingest", "admin"))

    @router.get("/manual", dependencies=[ctx.read])
    def tables(request: Request) -> HTMLResponse:
        return page(request, "manual.html",
                    tables=[table_json(t) for t in manual_tables(ws).values()])

    @router.get("/manual/{name}", dependencies=[ctx.read])
    def table(request: Request, name: str, rows: Annotated[int, Query(alias="page")] = 0,
              audit: int = 0, done: str | None = None) -> Response:
        try:
            return show(request, name, rows, audit, done=done)
        except UnknownTableError as exc:
            return page(request, "manual.html", status_code=404, error=exc,
                        tables=[table_json(t) for t in manual_tables(ws).values()])

    async def change(request: Request, name: str, action: str) -> Response:
        form = await checked_form(request)
        return await run_in_threadpool(changed, request, form, name, action)

    def changed(request: Request, form: Any, name: str, action: str) -> Response:
        actor = session_of(request).key_id
        types = table_json(table_of(name))["columns"]
        values = {c: _value(form.get(f"c.{c}")) for c in types if f"c.{c}" in form}
        key_text = str(form.get("key", ""))
        try:
            if action == "add":
                ws.manual.insert(name, {c: v for c, v in values.items() if v is not None},
                                 actor=actor)
                done = "added"
            else:
                key = exact_json.loads(key_text)
                if not isinstance(key, dict):
                    raise ValueError(f"the row's key {key_text[:80]!r} is not a JSON object")
                if action == "save":
                    ws.manual.update(name, key, values, actor=actor)
                    done = "saved"
                else:
                    ws.manual.delete(name, key, actor=actor)
                    done = "deleted"
        except (MeterqlError, ValueError) as exc:
            cells = {r["column"]: r["reason"] for r in getattr(exc, "details", {}).get(
                "rows", []) if isinstance(r, dict) and "column" in r}
            edit = {"form": "add" if action == "add" else key_text,
                    "values": {c: str(form.get(f"c.{c}", "")) for c in types},
                    "errors": cells, "error": exc}
            return show(request, name, edit=edit,
                        status_code=409 if isinstance(exc, ConflictError) else 422)
        return RedirectResponse(f"/manual/{quote(name)}?done={done}", status_code=303)

    @router.post("/manual/{name}/add", dependencies=[ingest])
    async def add(request: Request, name: str) -> Response:
        return await change(request, name, "add")

    @router.post("/manual/{name}/save", dependencies=[ingest])
    async def save(request: Request, name: str) -> Response:
        return await change(request, name, "save")

    @router.post("/manual/{name}/delete", dependencies=[ingest])
    async def delete(request: Request, name: str) -> Response:
        return await change(request, name, "delete")

    return router


def cell_text(value: Any) -> str | None:
    """A value as its cell (and its input) shows it: the API's JSON value, a list or an object
    as JSON text; None for NULL."""
    shown = json_value(value)
    if shown is None or isinstance(shown, str):
        return shown
    if isinstance(shown, (list, dict, bool)):
        return json.dumps(shown)
    return str(shown)


def _value(field: Any) -> str | None:
    """A form field as the value sent to ``ws.manual``: its text, None when empty."""
    text = "" if field is None else str(field)
    return text if text.strip() else None


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(json_value(value), ensure_ascii=False)


def _when(value: Any) -> str:
    """A change's time in UTC, to the second."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)
