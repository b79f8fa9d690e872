"""Event streams over HTTP (scope ``read``): ``GET /v1/streams`` lists every stream's
configuration, ``GET /v1/streams/{stream}`` shows one. A stream is created with
``PUT /v1/events/{stream}`` (ingest.py), which answers the same shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import meterql
from meterql.local.events import StreamConfig


def stream_json(config: StreamConfig) -> dict[str, Any]:
    """A stream as the API shows it: its name, required fields, whether its columns are
    declared (then enforced), and its columns (field -> DuckDB type, in table order)."""
    return {"stream": config.name, "id_field": config.id_field,
            "timestamp_field": config.timestamp_field,
            "customer_field": config.customer_field, "declared": config.declared,
            "columns": dict(config.columns)}


def router(ws: meterql.Workspace, read: Any) -> APIRouter:
    api = APIRouter(tags=["ingestion"], dependencies=[read])

    @api.get("/v1/streams")
    def streams() -> list[dict[str, Any]]:
        """Every event stream of ``local.events``, with its configuration."""
        return [stream_json(config) for config in ws.events.streams()]

    @api.get("/v1/streams/{stream}")
    def stream(stream: str) -> dict[str, Any]:
        """One stream's configuration (an unknown stream: 404)."""
        return stream_json(ws.events.stream(stream))

    return api
