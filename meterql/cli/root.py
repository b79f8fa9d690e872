"""The ``meterql`` group: every command, named here with the module that defines it and loaded
only when used (``meterql --help`` and each command import just what they need, so the command
line starts fast; no command module imports this one)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from meterql.cli.common import HOME, SERVER, MeterqlGroup, root_home_option, server_option

#: Every command: name -> (module, attribute, the first paragraph of its help). The help is
#: kept here so that ``meterql --help`` lists the commands without importing them;
#: tests/test_cli_startup.py checks it against each command's own help.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "source": ("meterql.cli.sources", "source", "Register, inspect and remove sources."),
    "calibrate": ("meterql.cli.sources", "calibrate_cmd",
                  "Measure a source's costs per row with a few short probes and store them for "
                  "routing."),
    "sync": ("meterql.cli.sync", "sync_cmd",
             "Copy what changed at synced sources into their replicas (all synced sources by "
             "default)."),
    "settings": ("meterql.cli.settings", "settings_group", "Show or change workspace settings."),
    "tables": ("meterql.cli.tables", "tables_cmd", "List tables, of every source or of one."),
    "describe": ("meterql.cli.tables", "describe_cmd",
                 "Show a table's columns with their source and meterql types."),
    "query": ("meterql.cli.query", "query_cmd",
              "Run a SELECT over the registered sources. Use - to read the SQL from standard "
              "input."),
    "explain": ("meterql.cli.query", "explain_cmd",
                "Show how a query is split: each fragment with its source and SQL, and the "
                "residual."),
    "demo": ("meterql.cli.demo", "demo_cmd",
             "Build a small SQLite + DuckDB workspace and run a federated billing query on it "
             "(--serve: then serve the Data Navigator on it)."),
    "repl": ("meterql.cli.repl", "repl_cmd",
             "The interactive shell: SQL ending with ;, meta-commands (\\help), completion, "
             "history."),
    "aggregate": ("meterql.cli.aggregates", "aggregate",
                  "Define and evaluate aggregates: named, versioned SQL for billable usage."),
    "apikey": ("meterql.cli.apikeys", "apikey", "API keys for the HTTP API."),
    "serve": ("meterql.cli.serve", "serve",
              "Serve the HTTP API (OpenAPI at /docs) until interrupted."),
    "events": ("meterql.cli.events", "events",
               "Usage event streams in local.events: push, correct, backfill."),
    "load": ("meterql.cli.load", "load_cmd",
             "Load a CSV file into local.uploads.TABLE (the same file twice is not added twice)."),
    "rows": ("meterql.cli.rows", "rows",
             "Tables edited by hand in local.manual, every change audited."),
    "status": ("meterql.cli.status", "status_cmd",
               "Show the workspace's state as JSON (the same document as GET /v1/status)."),
}


class LazyGroup(MeterqlGroup):
    """A group whose commands are imported when they run (or when their own help is shown)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attribute, _ = entry
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The commands' one-line help from COMMANDS, as click would write it from each
        # command, without importing them.
        stubs = [(name, click.Command(name, help=COMMANDS[name][2])) for name in
                 self.list_commands(ctx)]
        limit = formatter.width - 6 - max(len(name) for name, _ in stubs)
        with formatter.section("Commands"):
            formatter.write_dl([(name, stub.get_short_help_str(limit)) for name, stub in stubs])


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.version_option(package_name="meterql")
@root_home_option
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
            repl = main.get_command(ctx, "repl")
            assert repl is not None
            home: Path | None = ctx.meta.get(HOME)
            ctx.invoke(repl, home=home)
        else:
            click.echo(ctx.get_help())
