"""What every command module shares: the group class that prints errors, the ``--home`` option,
the console, and the parsers of repeated ``NAME=VALUE`` and ``NAME:TYPE`` options.

Example:
    >>> pairs(("plan=growth", "tz=UTC"), "--set")
    {'plan': 'growth', 'tz': 'UTC'}
    >>> typed_columns(("amount:DECIMAL(18,2)",))
    {'amount': 'DECIMAL(18,2)'}
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from meterql.errors import MeterqlError
from meterql.workspace import connect

if TYPE_CHECKING:
    from rich.console import Console

ROUND_HELP = ("Round numbers with more decimal places than their column keeps (half away "
              "from zero) instead of refusing them.")

home_path_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="METERQL_HOME",
    default=None,
    help="Workspace folder [default: $METERQL_HOME or ./meterql_home].",
)
"""``--home`` alone: the command receives the folder (``home``) and opens it itself."""


def home_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--home`` and open the workspace; the command receives ``ws``."""

    @home_path_option
    @functools.wraps(func)
    def wrapper(home: Path | None, **kwargs: Any) -> Any:
        with connect(home) as ws:
            return func(ws, **kwargs)

    return wrapper


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
    out = {}
    for pair in values:
        name, sep, typ = pair.partition(":")
        if not sep:
            raise click.BadParameter(f"'{pair}' is not NAME:TYPE", param_hint="--column")
        out[name.strip()] = typ.strip()
    return out
