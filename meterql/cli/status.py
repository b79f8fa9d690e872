"""``meterql status``: who holds the workspace, its sources, replicas, schedule and streams.

Beside a running ``meterql serve`` it asks that server (through the owner's socket), which
holds the workspace and knows its schedule and ingestion rates; otherwise it opens the
workspace itself (``owner`` is then null). The document is the same as ``GET /v1/status``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from meterql.cli.common import home_path_option
from meterql.workspace import connect, default_home


@click.command("status")
@home_path_option
def status_cmd(home: Path | None) -> None:
    """Show the workspace's state as JSON (the same document as GET /v1/status)."""
    from meterql.server.owner_client import owner_request
    from meterql.server.presence import read_presence
    from meterql.server.status_routes import workspace_status

    presence = read_presence(home or default_home())
    if presence is not None:
        document = owner_request(presence, "GET", "/v1/status")
    else:
        with connect(home) as ws:
            document = workspace_status(ws, None, None)
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))
