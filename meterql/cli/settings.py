"""``meterql settings ...``: show and change workspace settings."""

from __future__ import annotations

from typing import Any

import click

from meterql.cli.common import MeterqlGroup, console, home_option
from meterql.workspace import Workspace


@click.group("settings", cls=MeterqlGroup)
def settings_group() -> None:
    """Show or change workspace settings."""


@settings_group.command("list")
@home_option
def settings_list(ws: Workspace) -> None:
    """List every setting with its value and what it does."""
    from rich.table import Table

    view = Table("setting", "value", "default", "meaning", header_style="bold")
    for entry in ws.settings.describe():
        view.add_row(entry["name"], _show(entry["value"]), _show(entry["default"]),
                     entry["meaning"])
    console().print(view)


def _show(value: Any) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


@settings_group.command("set")
@click.argument("name")
@click.argument("value")
@home_option
def settings_set(ws: Workspace, name: str, value: str) -> None:
    """Change a setting."""
    click.echo(f"{name} = {_show(ws.settings.set(name, value))}")


@settings_group.command("reset")
@click.argument("name")
@home_option
def settings_reset(ws: Workspace, name: str) -> None:
    """Restore a setting's default."""
    click.echo(f"{name} = {_show(ws.settings.set(name, None))}")
