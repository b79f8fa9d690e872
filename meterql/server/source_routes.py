"""Sources over HTTP (scope ``admin``), as ``meterql source`` manages them: add, change mode or
options, test, refresh, remove.

A source added over the network may not make the server read its own environment, files or
local sockets on the caller's behalf (an ``env:`` password, a SQLite or DuckDB file, a local
socket folder as the host, libpq parameters outside
:data:`meterql.catalog.uri.REMOTE_PARAMETERS`): such a source is added on the server's host,
through the owner's socket or with ``meterql source add``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql.catalog import Catalog
from meterql.catalog.model import Mode
from meterql.catalog.uri import server_local_reference
from meterql.errors import ScopeError
from meterql.server.catalog_routes import source_json
from meterql.server.guard import OWNER_KEY, Access

#: The admin scope's check; as a parameter's type, the key id (OWNER_KEY through the owner's
#: socket).
ADMIN = Depends(Access("admin"))
AdminKey = Annotated[str, ADMIN]


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=63, examples=["billing"])
    uri: str = Field(max_length=4096, examples=["postgresql://meterql:secret@db:5432/billing"])
    mode: Mode = "direct"
    options: dict[str, int | str | bool] = Field(default_factory=dict)


class SourceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Mode | None = None
    options: dict[str, int | str | bool | None] | None = Field(
        None, description="the options to change (others are kept); null removes one")


def router(ws: meterql.Workspace) -> APIRouter:
    api = APIRouter(tags=["sources"])  # (each route names ADMIN once: add takes the key)

    @api.post("/v1/sources", status_code=201)
    def add(body: SourceIn, key: AdminKey) -> dict[str, Any]:
        """Register a database and read its tables (as ``meterql source add``)."""
        if key != OWNER_KEY:
            Catalog.kind_of(body.uri)  # (an unknown scheme: its own error first)
            reference = server_local_reference(body.uri)
            if reference is not None:
                raise ScopeError(
                    f"a source added over the network may not use {reference}",
                    hint="add it on the server's host (meterql source add, or the owner's "
                    "socket named in server.json), or write the password in the URI")
        return source_json(ws, ws.sources.add(body.name, body.uri, body.mode, body.options))

    @api.patch("/v1/sources/{name}", dependencies=[ADMIN])
    def change(name: str, body: SourceChange) -> dict[str, Any]:
        """Switch a source's mode and/or change its options."""
        if body.options is not None:
            ws.sources.set_options(name, body.options)
        if body.mode is not None:
            ws.sources.set_mode(name, body.mode)
        return source_json(ws, ws.sources.get(name))

    @api.post("/v1/sources/{name}/test", dependencies=[ADMIN])
    def test(name: str) -> dict[str, Any]:
        """Connect and answer the source's version."""
        return {"name": name, "version": ws.sources.test(name)}

    @api.post("/v1/sources/{name}/refresh", dependencies=[ADMIN])
    def refresh(name: str) -> dict[str, Any]:
        """Read the source's tables and columns again."""
        return {"name": name, "tables": len(ws.sources.refresh(name))}

    @api.post("/v1/sources/{name}/calibrate", dependencies=[ADMIN])
    def calibrate(name: str) -> dict[str, Any]:
        """Measure the source's costs per row for routing (a few short probes) and store them."""
        return {"name": name, "constants": ws.sources.calibrate(name)}

    @api.delete("/v1/sources/{name}", dependencies=[ADMIN])
    def remove(name: str) -> dict[str, Any]:
        """Forget a source (the database itself is not touched)."""
        return {"removed": ws.sources.remove(name).name}

    return api
