"""``meterql source ...``: register, inspect, switch and remove sources."""

from __future__ import annotations

from typing import Any, get_args

import click

from meterql.catalog import Mode
from meterql.cli.common import MeterqlGroup, console, escape, home_option, pairs
from meterql.sync.config import Strategy
from meterql.workspace import Workspace

MODES = get_args(Mode)
STRATEGIES = get_args(Strategy)


@click.group(cls=MeterqlGroup)
def source() -> None:
    """Register, inspect and remove sources."""


def source_options(values: tuple[str, ...]) -> dict[str, Any]:
    """``--option KEY=VALUE`` pairs; integers become ``int``.

    Example:
        >>> source_options(("statement_timeout_ms=60000", "cdc_slot=meterql"))
        {'statement_timeout_ms': 60000, 'cdc_slot': 'meterql'}
    """
    options: dict[str, Any] = {}
    for key, value in pairs(values, "--option", "KEY=VALUE").items():
        options[key] = int(value) if value.strip().lstrip("-").isdigit() else value
    return options


@source.command("add")
@click.argument("name")
@click.argument("uri")
@click.option("--mode", type=click.Choice(MODES), default="direct",
              show_default=True,
              help="direct: query the source at query time; sync: query a local replica "
                   "(run 'meterql sync' to fill it).")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Source option, e.g. statement_timeout_ms=60000 or numeric_scale=12.")
@home_option
def source_add(ws: Workspace, name: str, uri: str, mode: Mode, options: tuple[str, ...]) -> None:
    """Register a source and read its tables.

    URI is postgresql://user:env:PGPASSWORD@host:5432/db, sqlite:///path/file.db or
    duckdb:///path/file.duckdb.
    """
    src = ws.sources.add(name, uri, mode=mode, options=source_options(options))
    n = len(ws.tables(src.name))
    click.echo(f"added source '{src.name}' ({src.kind}, {src.mode}): {n} tables")
    if src.replicated:
        click.echo(f"next: meterql sync {src.name}   (copies its tables into the local replica)")


@source.command("list")
@home_option
def source_list(ws: Workspace) -> None:
    """List the registered sources."""
    from rich.table import Table

    view = Table("name", "kind", "mode", "tables", header_style="bold")
    view.add_column("uri", overflow="fold")
    for src in ws.sources():
        view.add_row(src.name, src.kind, src.mode, str(len(ws.tables(src.name))),
                     escape(src.display_uri))
    console().print(view)


@source.command("show")
@click.argument("name")
@home_option
def source_show(ws: Workspace, name: str) -> None:
    """Show one source and its tables."""
    from meterql.encoders import row_count

    src = ws.sources.get(name)
    out = console()
    out.print(f"name:    {src.name}\nkind:    {src.kind}\nmode:    {src.mode}")
    out.print(f"uri:     {escape(src.display_uri)}")
    for key, value in sorted(src.options.items()):
        out.print(f"option:  {key}={value}")
    marks = {w.table: w for w in ws.sync.watermarks(src.name)}
    for table in ws.tables(src.name):
        line = f"table:   {table.full_name} ({len(table.columns)} columns, {table.kind})"
        mark = marks.get(table.full_name)
        if src.replicated:
            line += (
                f"; synced {mark.synced_at:%Y-%m-%d %H:%M:%S %Z}, {row_count(mark.rows)}, "
                f"{mark.strategy}"
                + (f", cursor {mark.cursor_column} = {mark.cursor}" if mark.cursor_column else "")
                if mark is not None else "; not synced yet"
            )
        out.print(escape(line))


@source.command("set")
@click.argument("name")
@click.option("--mode", type=click.Choice(MODES),
              help="direct: query the source; sync: query its local replica.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Set a source option (KEY= with no value removes it), e.g. cdc_slot=meterql.")
@home_option
def source_set(ws: Workspace, name: str, mode: Mode | None, options: tuple[str, ...]) -> None:
    """Switch a source between direct, sync and auto mode (the SQL stays the same), or change its
    options."""
    if mode is None and not options:
        raise click.UsageError("give --mode and/or --option KEY=VALUE")
    if options:
        parsed = {k: (None if v == "" else v) for k, v in source_options(options).items()}
        src = ws.sources.set_options(name, parsed)
        click.echo(f"source '{src.name}' options: "
                   + (", ".join(f"{k}={v}" for k, v in sorted(src.options.items())) or "none"))
    if mode is not None:
        src = ws.sources.set_mode(name, mode)
        click.echo(f"source '{src.name}' is now in {src.mode} mode")


@source.command("strategy")
@click.argument("table")
@click.argument("strategy", type=click.Choice(STRATEGIES))
@click.option("--cursor",
              help="append: a monotonic column (id, created_at); merge: an updated_at column.")
@click.option("--lag", type=int, default=0, show_default=True,
              help="re-read this much before the last cursor (seconds for timestamps).")
@click.option("--soft-delete", "soft_delete", metavar="COLUMN",
              help="merge: the column that marks deleted rows (deletes are then updates, and "
                   "the key read that finds hard deletes is skipped).")
@click.option("--cluster-by", "cluster_by", metavar="COLUMNS",
              help="keep the replica's rows in this order, e.g. customer_id,ts (reads on the "
                   "first column then skip the other row groups; from the next whole copy).")
@home_option
def source_strategy(ws: Workspace, table: str, strategy: Strategy, cursor: str | None,
                    lag: int, soft_delete: str | None, cluster_by: str | None) -> None:
    """Choose how a table of a synced source is copied (cdc: PostgreSQL's change log)."""
    key = [c.strip() for c in cluster_by.split(",") if c.strip()] if cluster_by else None
    ws.sync.set_strategy(table, strategy, cursor, lag, soft_delete, key)
    click.echo(f"{ws.tables.get(table).full_name}: {strategy}"
               + (f" on {cursor} (lag {lag})" if strategy in ("append", "merge") else "")
               + (f", soft delete by {soft_delete}" if soft_delete else "")
               + (f", clustered by {', '.join(key)}" if key else ""))


@source.command("test")
@click.argument("name")
@home_option
def source_test(ws: Workspace, name: str) -> None:
    """Connect to a source and print its version."""
    version = ws.sources.test(name)
    click.echo(f"source '{name}' is reachable: {version}")


@source.command("remove")
@click.argument("name")
@home_option
def source_remove(ws: Workspace, name: str) -> None:
    """Forget a source (the database itself is not touched)."""
    src = ws.sources.remove(name)
    click.echo(f"removed source '{src.name}'")


@source.command("refresh")
@click.argument("name")
@home_option
def source_refresh(ws: Workspace, name: str) -> None:
    """Read a source's tables and columns again, and its statistics."""
    tables = ws.sources.refresh(name)
    click.echo(f"refreshed source '{name}': {len(tables)} tables")


@click.command("calibrate")
@click.argument("name")
@home_option
def calibrate_cmd(ws: Workspace, name: str) -> None:
    """Measure a source's costs per row with a few short probes and store them for routing.

    Probes: a round trip (SELECT 1), a sequential scan and a transfer of a bounded number of
    rows of the largest table, reads through an index, and a scan of the replica when synced.
    """
    measured = ws.sources.calibrate(name)
    click.echo(f"calibrated source '{name}':")
    for key, value in measured.items():
        click.echo(f"  {key} = {value:.3g}")
