"""``meterql repl`` (and ``meterql`` alone in a terminal): the interactive shell."""

from __future__ import annotations

import sys

import click

from meterql.cli.common import console, home_option
from meterql.errors import MeterqlError
from meterql.workspace import Workspace


@click.command("repl")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.option("--tz", "tz", metavar="ZONE",
              help="The session's time zone (as \\timezone ZONE): TIMESTAMPTZ values are shown "
                   "in it. Default UTC.")
@home_option
def repl_cmd(ws: Workspace, debug: bool, tz: str | None) -> None:
    """The interactive shell: SQL ending with ;, meta-commands (\\help), completion, history.
    With piped input (meterql repl < script.sql) it runs the script with plain output."""
    from meterql.repl.session import Repl

    repl = Repl(ws, console(), interactive=sys.stdin.isatty(), debug=debug)
    if tz is not None:
        try:
            repl.set_time_zone(tz)
        except MeterqlError as exc:
            raise click.BadParameter(str(exc), param_hint="--tz") from None
    if repl.interactive:
        repl.run_interactive()
        return
    failed = repl.run_script(sys.stdin.read())
    if failed:
        raise SystemExit(1)
