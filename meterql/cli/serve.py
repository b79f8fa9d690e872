"""``meterql serve``: the HTTP API (:mod:`meterql.server`) under uvicorn until interrupted."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from meterql.cli.common import SERVER, home_path_option
from meterql.cli.sync import DURATION
from meterql.workspace import Workspace, connect

LOG_LEVELS = ("debug", "info", "warning", "error")  # uvicorn's, as far as serve offers them


@click.command("serve")
@home_path_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--timeout", default=60.0, show_default=True, type=float,
              help="Time limit of every query, in seconds (requests may ask for less).")
@click.option("--max-rows", default=10_000_000, show_default=True, type=int,
              help="Row cap of every query (requests may ask for less).")
@click.option("--sync/--no-sync", default=True, show_default=True,
              help="Run the synced sources' schedules in the background.")
@click.option("--sync-every", default="15m", show_default=True, type=DURATION,
              help="How often a source without its own sync_every_s is synced, e.g. 15m, "
                   "1h30m (or seconds).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(LOG_LEVELS))
def serve(home: Path | None, host: str, port: int, timeout: float, max_rows: int, sync: bool,
          sync_every: float, log_level: str) -> None:
    """Serve the HTTP API (OpenAPI at /docs) until interrupted."""
    run_server(home, host=host, port=port, timeout=timeout, max_rows=max_rows, sync=sync,
               sync_every=sync_every, log_level=log_level)


def run_server(home: Path | None, *, host: str = "127.0.0.1", port: int = 8080,
               timeout: float = 60.0, max_rows: int = 10_000_000, sync: bool = True,
               sync_every: float = 900.0, log_level: str = "info",
               ready: Callable[[Workspace, str], object] | None = None) -> None:
    """Serve the workspace at ``home`` (the API and the navigator) until interrupted: what
    ``meterql serve`` and ``meterql demo --serve`` run. ``ready(ws, url)`` is called once the
    server listens. Ctrl-C stops it and returns."""
    command = click.get_current_context()
    server = command.find_root().meta.get(SERVER)
    if server is not None:
        raise click.UsageError(f"{command.command_path} holds a workspace folder itself: drop "
                               f"--server {server} (or unset METERQL_SERVER)")
    import logging

    import uvicorn

    from meterql.server.app import create_app
    from meterql.server.presence import (
        Presence,
        owner_socket,
        remove_presence,
        write_presence,
    )

    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    with connect(home) as ws:
        ws.open_parts()  # now, not at the first request: a damaged part is reported here
        owner = owner_socket(ws.home)
        path = None if owner is None else owner.getsockname()
        app = create_app(ws, timeout=timeout, max_rows=max_rows, sync=sync,
                         sync_every_s=sync_every, owner_socket=path)
        url = f"http://{host}:{port}"
        ws.label_owner(Presence(url, os.getpid(), "").describe())
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                access_log=False)

        def announce() -> None:
            write_presence(ws.home, url, path)
            if ready is not None:
                ready(ws, url)

        server = _announcing_server()(config, announce, lambda: remove_presence(ws.home))
        try:
            click.echo(f"meterql serving {ws.home} on {url} (docs at /docs)", err=True)
            server.run(sockets=[config.bind_socket()] + ([owner] if owner else []))
        except KeyboardInterrupt:  # uvicorn stopped, then raised the Ctrl-C again
            click.echo("meterql server stopped", err=True)
        finally:
            remove_presence(ws.home)


def _announcing_server() -> type:
    import uvicorn

    class Announcing(uvicorn.Server):
        """uvicorn's server that calls ``announce`` once it listens and ``withdraw`` when it
        begins to stop (uvicorn ends a stop by a signal by raising that signal again, so code
        after ``run()`` does not run then)."""

        def __init__(self, config: uvicorn.Config, announce: Callable[[], object],
                     withdraw: Callable[[], object]) -> None:
            super().__init__(config)
            self._announce, self._withdraw = announce, withdraw

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                self._announce()

        async def shutdown(self, sockets: Any = None) -> None:
            self._withdraw()
            await super().shutdown(sockets)

    return Announcing
