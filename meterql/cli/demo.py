"""``meterql demo``: build the demo workspace (:mod:`meterql.demo`) and run its federated query."""

from __future__ import annotations

import click

from meterql.cli.common import console, escape, home_option
from meterql.encoders import render_table, row_count
from meterql.workspace import Workspace


@click.command("demo")
@click.option("--plan", "plan_name", default="growth", show_default=True,
              help="Which plan's customers to bill in the demo query.")
@home_option
def demo_cmd(ws: Workspace, plan_name: str) -> None:
    """Build a small SQLite + DuckDB workspace and run a federated billing query on it."""
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
