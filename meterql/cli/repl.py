"""``meterql repl`` (and ``meterql`` alone in a terminal): the interactive shell."""

from __future__ import annotations

import sys

import click

from meterql.cli.common import console, home_option
from meterql.workspace import Workspace


@click.command("repl")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@home_option
def repl_cmd(ws: Workspace, debug: bool) -> None:
    """The interactive shell: SQL ending with ;, meta-commands (\\help), completion, history.
    With piped input (meterql repl < script.sql) it runs the script with plain output."""
    from meterql.repl.session import Repl

    if sys.stdin.isatty():
        Repl(ws, console(), interactive=True, debug=debug).run_interactive()
        return
    failed = Repl(ws, console(), interactive=False, debug=debug).run_script(sys.stdin.read())
    if failed:
        raise SystemExit(1)
