"""API keys managed while the server runs (scope ``admin``): create, list, revoke.

The server holds the workspace, so ``meterql apikey`` cannot change keys meanwhile; these
routes call the same functions (:mod:`meterql.access.keys`). A revoked key fails on the very
next request: the server's copy of the keys is dropped by the revocation.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql.access.keys import Scope, create_key
from meterql.encoders import json_value
from meterql.server import problems


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Scope = Field(
        description="read < ingest < admin (each includes the ones before)")
    name: str | None = Field(None, max_length=200, description="a label for people, e.g. "
                             "billing-engine", examples=["billing-engine"])


def router(ws: meterql.Workspace, admin: Any) -> APIRouter:
    api = APIRouter(tags=["keys"], dependencies=[admin])

    @api.post("/v1/keys", status_code=201)
    async def create(body: KeyIn) -> dict[str, Any]:
        """A new key. The answer is the only time the key is shown: only its SHA-256 is
        stored."""
        key_id, key = create_key(ws.keys, body.scope, body.name)
        return {"id": key_id, "name": body.name, "scope": body.scope, "key": key}

    @api.get("/v1/keys")
    async def list_keys() -> list[dict[str, Any]]:
        """Every key by id, name, scope and state; never the key or its hash."""
        return json_value(ws.keys.list())

    @api.delete("/v1/keys/{key_id}", status_code=204, responses={
        404: {"description": "no key with that id"}})
    async def revoke(request: Request, key_id: str) -> Response:
        """Revoke a key: requests with it are refused from the next one on. Revoking a
        revoked key changes nothing."""
        if ws.keys.get(key_id) is None:
            return problems.problem(404, "UnknownApiKey", f"no API key with id '{key_id}'",
                                    request.url.path, hint="GET /v1/keys lists the keys")
        ws.keys.revoke(key_id)
        return Response(status_code=204)

    return api
