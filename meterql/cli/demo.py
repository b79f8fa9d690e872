"""``meterql demo``: build the demo workspace (:mod:`meterql.demo`) and run its federated query;
with ``--serve``, then serve the navigator on it (:func:`meterql.cli.serve.run_server`, what
``meterql serve`` runs) with an admin key made for the occasion."""

from __future__ import annotations

from pathlib import Path

import click

from meterql.cli.common import console, escape, home_path_option, open_workspace
from meterql.encoders import render_table, row_count
from meterql.workspace import Workspace, default_home

#: The name of the admin keys ``meterql demo --serve`` makes (``meterql apikey list``).
DEMO_KEY_NAME = "demo navigator"


@click.command("demo")
@click.option("--plan", "plan_name", default="growth", show_default=True,
              help="Which plan's customers to bill in the demo query.")
@click.option("--serve", "then_serve", is_flag=True,
              help="Then serve the Data Navigator on the demo workspace until Ctrl-C, and "
                   "print its URL and an admin key made to sign in with.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: the address.")
@click.option("--port", default=8080, show_default=True, type=int,
              help="With --serve: the port.")
@home_path_option
def demo_cmd(home: Path | None, plan_name: str, then_serve: bool, host: str, port: int) -> None:
    """Build a small SQLite + DuckDB workspace and run a federated billing query on it
    (--serve: then serve the Data Navigator on it)."""
    from meterql.server.presence import read_presence

    folder = home or default_home()
    if then_serve:
        held = read_presence(folder)
        if held is not None:
            raise click.UsageError(f"a meterql server already holds {folder}: open {held.url} "
                                   f"in a browser, or stop that server first")
    with open_workspace(home) as ws:
        _run_demo(ws, plan_name)  # type: ignore[arg-type]  # (a server's client too)
        folder = ws.home or folder
    out = console()
    if not then_serve:
        held = read_presence(folder)
        if held is not None:
            out.print(f"\nData Navigator: {held.url}/ (the server holding this folder)")
            return
        out.print(f"\nData Navigator: meterql demo --serve --home {escape(str(folder))}   "
                  f"(serves it on http://{host}:{port} and prints an admin key to sign in with)")
        return
    from meterql.cli.serve import run_server

    def ready(ws: Workspace, url: str) -> None:
        for earlier in ws.keys.list():  # one demo key at a time: an earlier run's ends now
            if earlier["name"] == DEMO_KEY_NAME and earlier["revoked_at"] is None:
                ws.keys.revoke(earlier["id"])
        key_id, key = ws.keys.create("admin", DEMO_KEY_NAME)
        out.print(f"\n[bold]Data Navigator[/bold] {url}/")
        out.print(f"sign in with this admin key (made for the demo, shown only now; the next "
                  f"demo --serve or meterql apikey revoke {key_id} ends it):")
        out.print(key, markup=False)
        out.print("Ctrl-C stops the server.", style="dim")

    run_server(folder, host=host, port=port, log_level="warning", ready=ready)


def _run_demo(ws: Workspace, plan_name: str) -> None:
    """Build the demo workspace and print its sources, the query, its plan and its answer."""
    from meterql.demo import DEMO_QUERY, prepare_demo

    out = console()
    prepare_demo(ws)
    out.print(f"[bold]workspace[/bold] {ws.home}")
    for src in ws.sources():
        out.print(f"  source [cyan]{src.name}[/cyan] ({src.kind}, {src.mode}): "
                  f"{escape(src.display_uri)}")
    out.print("\n[bold]query[/bold] (October 2026 usage per customer, plan = :plan)")
    out.print(escape(DEMO_QUERY), style="dim")
    result = ws.query(DEMO_QUERY, {"plan": plan_name})
    out.print("\n[bold]plan[/bold]")
    out.print(escape(str(result.plan)), style="dim")
    out.print(render_table(result.to_arrow()))
    out.print(f"[dim]{row_count(result.num_rows)} in {result.seconds * 1000:.1f} ms[/dim]")
    out.print("\nNext: meterql tables --home " + str(ws.home)
              + "   |   meterql query \"SELECT ...\" --home " + str(ws.home))
