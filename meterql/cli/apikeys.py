"""``meterql apikey ...``: create, list and revoke keys for the HTTP API."""

from __future__ import annotations

import click

from meterql.access.keys import SCOPES
from meterql.cli.common import MeterqlGroup, home_option
from meterql.workspace import Workspace


@click.group("apikey", cls=MeterqlGroup)
def apikey() -> None:
    """API keys for the HTTP API."""


@apikey.command("create")
@click.option("--scope", type=click.Choice(SCOPES), required=True,
              help="read: queries and evaluations; ingest: also writes; admin: everything.")
@click.option("--name", help="A label to recognise the key by.")
@home_option
def apikey_create(ws: Workspace, scope: str, name: str | None) -> None:
    """Create a key. It is printed once, alone on the last line, and stored only hashed."""
    key_id, key = ws.keys.create(scope, name)
    click.echo(f"created key {key_id} with scope {scope}; it is shown only now:", err=True)
    click.echo(key)


@apikey.command("list")
@home_option
def apikey_list(ws: Workspace) -> None:
    """Keys by id, name and scope (never the keys themselves)."""
    keys = ws.keys.list()
    rows = [("id", "scope", "state", "name")] + [
        (key["id"], key["scope"],
         f"revoked {key['revoked_at']:%Y-%m-%d}" if key["revoked_at"] else "active",
         key["name"] or "") for key in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join([*(v.ljust(w) for v, w in zip(row, widths, strict=False)),
                              row[3]]).rstrip())
    if not keys:
        click.echo("no API keys yet: meterql apikey create --scope read", err=True)


@apikey.command("revoke")
@click.argument("key_id")
@home_option
def apikey_revoke(ws: Workspace, key_id: str) -> None:
    """Revoke a key by its id; requests with it are refused from now on."""
    if not ws.keys.revoke(key_id):
        raise click.UsageError(f"no active key with id '{key_id}' (see 'meterql apikey list')")
    click.echo(f"revoked key {key_id}")
