"""``meterql rows ...``: tables edited by hand in ``local.manual``, every change audited."""

from __future__ import annotations

import json

import click

from meterql.cli.common import (
    ROUND_HELP,
    MeterqlGroup,
    console,
    escape,
    home_option,
    pairs,
    typed_columns,
)
from meterql.encoders import json_value
from meterql.workspace import Workspace


@click.group("rows", cls=MeterqlGroup)
def rows() -> None:
    """Tables edited by hand in local.manual, every change audited."""


@rows.command("create")
@click.argument("table")
@click.option("--column", "columns", multiple=True, required=True, metavar="NAME:TYPE")
@click.option("--key", multiple=True, required=True, help="The primary key column(s).")
@home_option
def rows_create(ws: Workspace, table: str, columns: tuple[str, ...], key: tuple[str, ...]
                ) -> None:
    """Create local.manual.TABLE."""
    created = ws.manual.create(table, typed_columns(columns), list(key), actor="cli")
    click.echo(f"created {created}")


@rows.command("insert")
@click.argument("table")
@click.option("--set", "values", multiple=True, required=True, metavar="COLUMN=VALUE")
@click.option("--round", "round_decimals", is_flag=True, help=ROUND_HELP)
@home_option
def rows_insert(ws: Workspace, table: str, values: tuple[str, ...], round_decimals: bool
                ) -> None:
    """Insert a row."""
    row = ws.manual.insert(table, pairs(values, "--set"), actor="cli",
                           round_decimals=round_decimals)
    click.echo(json.dumps(json_value(row)))


@rows.command("update")
@click.argument("table")
@click.option("--key", "key", multiple=True, required=True, metavar="COLUMN=VALUE")
@click.option("--set", "values", multiple=True, required=True, metavar="COLUMN=VALUE")
@click.option("--round", "round_decimals", is_flag=True, help=ROUND_HELP)
@home_option
def rows_update(ws: Workspace, table: str, key: tuple[str, ...], values: tuple[str, ...],
                round_decimals: bool) -> None:
    """Change the row with this key."""
    row = ws.manual.update(table, pairs(key, "--key"), pairs(values, "--set"), actor="cli",
                           round_decimals=round_decimals)
    click.echo(json.dumps(json_value(row)))


@rows.command("delete")
@click.argument("table")
@click.option("--key", "key", multiple=True, required=True, metavar="COLUMN=VALUE")
@home_option
def rows_delete(ws: Workspace, table: str, key: tuple[str, ...]) -> None:
    """Delete the row with this key."""
    ws.manual.delete(table, pairs(key, "--key"), actor="cli")
    click.echo("deleted")


@rows.command("audit")
@click.argument("table", required=False)
@home_option
def rows_audit(ws: Workspace, table: str | None) -> None:
    """Every change to manual tables: who, when, before, after."""
    out = console()
    for entry in ws.manual.audit(table):
        out.print(escape(f"{entry['changed_at']:%Y-%m-%d %H:%M:%S} {entry['actor'] or '-'} "
                         f"{entry['action']} {entry['table']} {json.dumps(entry['key'])}: "
                         f"{json.dumps(json_value(entry['before']))} -> "
                         f"{json.dumps(json_value(entry['after']))}"))
