"""What every command module shares: the group class that prints errors, the ``--home`` option
(which opens the workspace, or a client of the server that holds it), the console, and the
parsers of repeated ``NAME=VALUE`` and ``NAME:TYPE`` options.

Example:
    >>> pairs(("plan=growth", "tz=UTC"), "--set")
    {'plan': 'growth', 'tz': 'UTC'}
    >>> typed_columns(("amount:DECIMAL(18,2)",))
    {'amount': 'DECIMAL(18,2)'}
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from meterql.errors import AuthenticationError, MeterqlError

if TYPE_CHECKING:
    from rich.console import Console

    from meterql.client import Client
    from meterql.workspace import Workspace

ROUND_HELP = ("Round numbers with more decimal places than their column keeps (half away "
              "from zero) instead of refusing them.")

#: Where the root group keeps a ``--home`` given before the command (``ctx.meta``).
HOME = "meterql.home"


def _home_given_before(ctx: click.Context, param: click.Parameter,
                       value: Path | None) -> Path | None:
    """A command's ``--home``: its own if given on the command line, else the one given
    before the command (``meterql --home DIR source list``), else ``$METERQL_HOME``."""
    before = ctx.meta.get(HOME)
    if before is not None and ctx.get_parameter_source("home") != ParameterSource.COMMANDLINE:
        ctx.set_parameter_source("home", ParameterSource.COMMANDLINE)
        return Path(before)
    return value


home_path_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="METERQL_HOME",
    default=None,
    callback=_home_given_before,
    help="Workspace folder [default: $METERQL_HOME or ./meterql_home].",
)
"""``--home`` alone: the command receives the folder (``home``) and opens it itself."""


def _keep_home(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[HOME] = value


root_home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    expose_value=False,
    callback=_keep_home,
    help="Workspace folder for the command (the same as the command's own --home).",
)
"""``meterql --home DIR COMMAND``: the root group's ``--home``, which every command takes as
if given after it."""


server_option = click.option(
    "--server",
    envvar="METERQL_SERVER",
    default=None,
    metavar="URL",
    help="Work through the meterql server at URL (with the API key in $METERQL_API_KEY) "
         "instead of a workspace folder [default: $METERQL_SERVER].",
)
"""``meterql --server URL``: every command becomes a client of that server."""

#: Where the root group keeps ``--server`` for the commands (``ctx.meta``).
SERVER = "meterql.server"


def home_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--home`` and open the workspace, or a client of the server that holds it (see
    :func:`open_workspace`); the command receives ``ws``."""

    @home_path_option
    @functools.wraps(func)
    def wrapper(home: Path | None, **kwargs: Any) -> Any:
        with open_workspace(home) as ws:
            return func(ws, **kwargs)

    return wrapper


@contextlib.contextmanager
def open_workspace(home: Path | None) -> Iterator[Workspace | Client]:
    """What a command works on: with ``--server URL`` (or ``$METERQL_SERVER``), a client of
    that server with ``$METERQL_API_KEY``'s scope; else, when a live ``meterql serve`` holds
    the folder, a client of it through its owner's socket (admin scope); else the folder
    itself, opened here."""
    from meterql.server.presence import read_presence
    from meterql.workspace import connect, default_home

    server = chosen_server(home)
    if server is not None:
        from meterql import client

        key = os.environ.get("METERQL_API_KEY")
        if not key:
            raise AuthenticationError(f"working through {server} needs an API key",
                                      hint="set METERQL_API_KEY (meterql apikey create on the "
                                           "server's workspace)")
        with client.remote(server, key) as remote:
            yield remote
        return
    # the client (httpx) is imported only when a server holds the folder
    if read_presence(home or default_home()) is not None:
        from meterql import client

        owner = client.owner(home or default_home())
        if owner is not None:
            with owner:
                yield owner
            return
    with connect(home) as ws:
        yield ws


def chosen_server(home: Path | None) -> str | None:
    """The server to work through, if any: ``--server`` beats ``$METERQL_HOME`` and
    ``--home`` beats ``$METERQL_SERVER``; ``--home`` and ``--server`` together (or both
    variables) are refused, saying which to drop."""
    ctx = click.get_current_context()
    server = ctx.find_root().meta.get(SERVER)
    if server is None or home is None:
        return server
    home_from = ctx.get_parameter_source("home")
    if home_from is None and ctx.meta.get(HOME) is not None:  # (the shell of a bare meterql)
        home_from = ParameterSource.COMMANDLINE
    server_from = ctx.find_root().meta.get(f"{SERVER}.source")
    if home_from == ParameterSource.COMMANDLINE and server_from == ParameterSource.COMMANDLINE:
        raise click.UsageError(f"--home and --server together: drop --home to work through "
                               f"{server}, or drop --server to open {home} here")
    if home_from == ParameterSource.COMMANDLINE:
        return None
    if server_from == ParameterSource.COMMANDLINE:
        return server
    raise click.UsageError(f"METERQL_HOME and METERQL_SERVER are both set: unset "
                           f"METERQL_SERVER to open {home} here, or METERQL_HOME to work "
                           f"through {server}")


def console(stderr: bool = False) -> Console:
    """A rich console for standard output (or standard error), without syntax highlighting."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    """``text`` with rich markup escaped, so names and values print as they are.

    Example:
        >>> escape("[bold]x")
        '\\\\[bold]x'
    """
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_error(exc: MeterqlError) -> None:
    """A meterql error as one line on standard error, and the SQL with a caret if it has one."""
    err = console(stderr=True)
    err.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
    caret = exc.caret()
    if caret:
        err.print(escape(caret), style="dim")


class MeterqlGroup(click.Group):
    """Turns meterql errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MeterqlError as exc:
            print_error(exc)
            ctx.exit(1)


def pairs(values: tuple[str, ...], option: str, form: str = "NAME=VALUE") -> dict[str, str]:
    """Repeated ``NAME=VALUE`` options as a dict (names stripped, values as given)."""
    out = {}
    for pair in values:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"'{pair}' is not {form}", param_hint=option)
        out[name.strip()] = value
    return out


def typed_columns(values: tuple[str, ...]) -> dict[str, str]:
    """Repeated ``--column NAME:TYPE`` options as a dict of column types."""
    from meterql.sql_text import column_pairs

    try:
        return column_pairs(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--column") from None
