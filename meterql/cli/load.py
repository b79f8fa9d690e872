"""``meterql load``: a CSV file into ``local.uploads``."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import click

from meterql.cli.common import ROUND_HELP, home_option, typed_columns
from meterql.encoders import row_count
from meterql.local.uploads import Mode
from meterql.workspace import Workspace


@click.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--table", required=True, help="Into local.uploads.TABLE.")
@click.option("--mode", type=click.Choice(get_args(Mode)), default="append",
              show_default=True)
@click.option("--key", multiple=True, help="upsert: the key column(s).")
@click.option("--keep-good", is_flag=True, help="Load the good rows and list the bad ones "
              "(default: all rows or none).")
@click.option("--column", "columns", multiple=True, metavar="NAME:TYPE",
              help="Declare the file's columns instead of sniffing them.")
@click.option("--round", "round_decimals", is_flag=True, help=ROUND_HELP)
@home_option
def load_cmd(ws: Workspace, file: Path, table: str, mode: Mode, key: tuple[str, ...],
             keep_good: bool, columns: tuple[str, ...], round_decimals: bool) -> None:
    """Load a CSV file into local.uploads.TABLE (the same file twice is not added twice)."""
    report = ws.uploads.load(file, table, mode=mode, key=list(key) or None, keep_good=keep_good,
                         columns=typed_columns(columns) or None, round_decimals=round_decimals)
    if report.status == "unchanged":
        click.echo(report.note)
        return
    click.echo(f"{report.table}: {row_count(report.rows)} loaded ({report.mode})")
    for row in report.rejected:
        click.echo(f"line {row['line']}: {row['reason']}", err=True)
