"""The ``meterql`` group: every command module's commands, added here from the bottom up (no
command module imports this one)."""

from __future__ import annotations

import sys

import click

from meterql.cli.aggregates import aggregate
from meterql.cli.apikeys import apikey
from meterql.cli.common import SERVER, MeterqlGroup, server_option
from meterql.cli.demo import demo_cmd
from meterql.cli.events import events
from meterql.cli.load import load_cmd
from meterql.cli.query import explain_cmd, query_cmd
from meterql.cli.repl import repl_cmd
from meterql.cli.rows import rows
from meterql.cli.serve import serve
from meterql.cli.settings import settings_group
from meterql.cli.sources import source
from meterql.cli.status import status_cmd
from meterql.cli.sync import sync_cmd
from meterql.cli.tables import describe_cmd, tables_cmd


@click.group(cls=MeterqlGroup, invoke_without_command=True)
@click.version_option(package_name="meterql")
@server_option
@click.pass_context
def main(ctx: click.Context, server: str | None) -> None:
    """meterql: one SQL interface over the databases where your usage data lives.

    Without a command in a terminal, opens the interactive shell (meterql repl). Beside a
    running meterql serve, every command works through it."""
    ctx.meta[SERVER] = server
    ctx.meta[f"{SERVER}.source"] = ctx.get_parameter_source("server")
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(repl_cmd)
        else:
            click.echo(ctx.get_help())


for command in (source, sync_cmd, settings_group, tables_cmd, describe_cmd, query_cmd,
                explain_cmd, demo_cmd, repl_cmd, aggregate, apikey, serve, events, load_cmd,
                rows, status_cmd):
    main.add_command(command)
