"""The workspace's settings over HTTP (scope ``admin``), as ``meterql settings`` shows and
changes them: ``GET /v1/settings``, ``PUT /v1/settings/{name}``. A change applies to the next
request (the request limits, the events' rules)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

import meterql
from meterql.encoders import json_value


class SettingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: bool | int | str | None = Field(
        description="the new value (a number, true/false, or text such as '30'); null "
        "restores the default", examples=[30])


def router(ws: meterql.Workspace, admin: Any) -> APIRouter:
    api = APIRouter(tags=["settings"], dependencies=[admin])

    @api.get("/v1/settings")
    def settings() -> list[dict[str, Any]]:
        """Every setting: ``name``, ``value`` in force, ``default``, ``meaning``."""
        return json_value(ws.settings.describe())

    @api.put("/v1/settings/{name}")
    def set_setting(name: str, body: SettingIn) -> dict[str, Any]:
        """Change a setting (an unknown name or a value out of range: 400, naming the
        allowed values); the answer is the value in force."""
        return {"name": name, "value": json_value(ws.settings.set(name, body.value))}

    return api
