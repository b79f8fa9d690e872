"""``meterql status``: who holds the workspace, its sources, replicas, schedule and streams.

Beside a running ``meterql serve`` (or with ``--server``) it asks that server, which holds the
workspace and knows its schedule and ingestion rates; otherwise it opens the workspace itself
(``owner`` is then null). The document is the same as ``GET /v1/status``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from meterql.cli.common import home_path_option, open_workspace
from meterql.workspace import Workspace


@click.command("status")
@home_path_option
def status_cmd(home: Path | None) -> None:
    """Show the workspace's state as JSON (the same document as GET /v1/status)."""
    from meterql.server.status_routes import workspace_status

    with open_workspace(home) as ws:
        document = (workspace_status(ws, None, None) if isinstance(ws, Workspace)
                    else ws.status())
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))
