"""``meterql tables`` and ``meterql describe``: the catalog's tables and their columns."""

from __future__ import annotations

import click

from meterql.cli.common import console, home_option
from meterql.dialects.arrow_types import type_name
from meterql.wording import approx_count, count
from meterql.workspace import Workspace


@click.command("tables")
@click.argument("source_name", metavar="[SOURCE]", required=False)
@home_option
def tables_cmd(ws: Workspace, source_name: str | None) -> None:
    """List tables, of every source or of one."""
    from rich.table import Table

    view = Table("table", "kind", "columns", header_style="bold")
    for table in ws.tables(source_name):
        view.add_row(table.full_name, table.kind, str(len(table.columns)))
    console().print(view)


@click.command("describe")
@click.argument("table")
@home_option
def describe_cmd(ws: Workspace, table: str) -> None:
    """Show a table's columns with their source and meterql types."""
    from rich.table import Table

    entry = ws.tables.get(table)
    src = ws.sources.get(entry.source)
    view = Table("column", "type", "source type", "nullable", header_style="bold",
                 title=f"{entry.full_name} ({src.kind}, {src.mode})")
    stats = ws.tables.statistics(entry.full_name)
    distinct = {} if stats is None else {
        name: approx_count(c.distinct) for name, c in stats.columns.items()
        if c.distinct is not None}
    if distinct:
        view.add_column("distinct")
    for col in entry.columns:
        cells = [col.name, type_name(col.type), col.source_type, "yes" if col.nullable else "no"]
        view.add_row(*cells, *([distinct.get(col.name.lower(), "")] if distinct else []))
    console().print(view)
    if stats is not None:
        rows = "unknown" if stats.rows is None else f"~{count(stats.rows, 'row')}"
        console().print(f"rows at the source: {rows}", highlight=False)
        for index in stats.indexes:
            console().print(f"{index} ({index.name})", highlight=False, markup=False)
