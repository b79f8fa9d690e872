"""``GET /v1/status`` (scope ``admin``): who serves the workspace, since when, and the state of
its sources (replicas' last syncs, the sync schedule's next turns and last runs) and event
streams (each one's newest event, and how fast this process accepts its events)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

import meterql
from meterql.encoders import json_value
from meterql.sync.schedule import SyncSchedule


def workspace_status(ws: meterql.Workspace, schedule: SyncSchedule | None,
                     owner: dict[str, Any] | None) -> dict[str, Any]:
    """The status document of ``GET /v1/status`` and ``meterql status``: ``owner`` is the
    serving process (None when no server holds the workspace), ``schedule`` its sync
    schedule, if it runs one."""
    turns = schedule.status() if schedule is not None else {}
    sources = []
    for source in ws.sources():
        entry: dict[str, Any] = {"name": source.name, "kind": source.kind, "mode": source.mode}
        if source.replicated:
            entry["replicas"] = [w.describe() for w in ws.sync.watermarks(source.name)]
            entry["schedule"] = turns.get(source.name)
        sources.append(entry)
    streams = []
    for config in ws.events.streams():
        mark = ws.tables.freshness(f"local.events.{config.name}") or {}
        streams.append({"name": config.name, "last_event_at": mark.get("last_ingest_at"),
                        "accepted_per_s": ws.events.rates.per_second(config.name),
                        "accepted_since_start": ws.events.rates.total(config.name)})
    return json_value({
        "version": meterql.__version__,
        "owner": owner,
        "home": str(ws.home),
        "sync": {"running": schedule is not None,
                 "every_s": None if schedule is None else schedule.every_s},
        "sources": sources,
        "streams": streams,
    })


def router(ws: meterql.Workspace, admin: Any, schedule: SyncSchedule | None) -> APIRouter:
    api = APIRouter(tags=["meta"], dependencies=[admin])
    started_at, started = datetime.now(UTC), time.monotonic()

    @api.get("/v1/status")
    def status() -> dict[str, Any]:
        """The server process (pid, start, uptime, version), every source (kind, mode, its
        replicas' last syncs, its schedule) and every event stream (its newest event, its
        ingestion rate). Source URIs are not shown: they may hold secrets."""
        return workspace_status(ws, schedule, {
            "pid": os.getpid(), "started": started_at.isoformat(timespec="seconds"),
            "uptime_s": round(time.monotonic() - started, 3)})

    return api
