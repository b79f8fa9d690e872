"""``meterql query`` and ``meterql explain``: run a SELECT over the sources, or show its plan."""

from __future__ import annotations

import codecs
import itertools
import re
import sys
from pathlib import Path
from typing import TextIO

import click

from meterql.cli.common import console, home_option
from meterql.encoders import (
    BINARY_FORMATS,
    FORMATS,
    Format,
    boxes,
    encode,
    row_count,
    save,
    show_text,
)
from meterql.engine.result import plan_text
from meterql.wording import count
from meterql.workspace import Workspace

#: An EXPLAIN already written in front of the query given to ``meterql explain``.
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\b", re.IGNORECASE)


def query_params(values: tuple[str, ...]) -> dict[str, str]:
    """``--param NAME=VALUE`` pairs; a leading ``:`` or ``$`` of the name is dropped.

    Example:
        >>> query_params((":start=2026-10-01", "id=42"))
        {'start': '2026-10-01', 'id': '42'}
    """
    params = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{pair}' is not NAME=VALUE", param_hint="--param")
        params[key.lstrip(":$")] = value
    return params


@click.command("query")
@click.argument("sql")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="A named parameter (:NAME in the SQL); bound, never spliced.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default=None,
              help="[default: table on a terminal, csv when piped, redirected or --output]")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result to a file instead of standard output.")
@click.option("--pager/--no-pager", default=True, show_default=True,
              help="Show a table taller or wider than the terminal through $PAGER "
                   "(PAGER= set empty turns it off too).")
@click.option("--dialect", default="duckdb", show_default=True,
              help="The SQL dialect the query is written in.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds before the query is stopped.")
@click.option("--max-rows", type=int, default=1_000_000, show_default=True,
              help="Row cap; the result is cut there with a warning.")
@click.option("--tz", "tz", metavar="ZONE",
              help="The session's time zone (e.g. Europe/Berlin): TIMESTAMPTZ values are shown "
                   "in it and now()/current_date evaluate in it. Default UTC.")
@click.option("--max-staleness", "max_staleness", metavar="DURATION",
              help="Freshness bound for sources in auto mode (0 = live, 5m, 1h, none = any "
                   "age): a table is read from its replica when synced within it, else from "
                   "the source. Default: the setting max_staleness.")
@home_option
def query_cmd(ws: Workspace, sql: str, params: tuple[str, ...], fmt: Format | None,
              output: Path | None, pager: bool, dialect: str, timeout: float,
              max_rows: int, tz: str | None, max_staleness: str | None) -> None:
    """Run a SELECT over the registered sources. Use - to read the SQL from standard input.

    On a terminal the result is a table (paged when it does not fit); piped or redirected it
    is CSV, every value whole."""
    if sql == "-":
        sql = sys.stdin.read()
    result = ws.query(sql, query_params(params), dialect, timeout=timeout, max_rows=max_rows,
                      tz=tz, max_staleness=max_staleness)
    table = result.to_arrow()
    text = plan_text(table)
    if fmt is None:
        fmt = "table" if output is None and (text is not None or sys.stdout.isatty()) else "csv"
    if text is not None and fmt == "table" and output is None:
        click.echo(text)  # EXPLAIN: plain text, never a table
    elif fmt == "table" and output is None:
        out = console()  # (styles on a terminal that has them: not TERM=dumb)
        styled = out.is_terminal and out.color_system is not None
        view = boxes(table, styled=styled, ascii=not _unicode(sys.stdout))
        footer = f"{row_count(table.num_rows)} in {result.seconds * 1000:.1f} ms"
        footer = f"\x1b[2m{footer}\x1b[0m\n" if styled else footer + "\n"
        show_text(itertools.chain(view.chunks(), (footer,)), width=view.width,
                  height=view.height + 1, pager=pager)
    else:
        file_fmt = "csv" if fmt == "table" else fmt
        if output is not None:
            save(table, file_fmt, output)
        elif file_fmt in BINARY_FORMATS and sys.stdout.isatty():
            raise click.UsageError(f"--format {fmt} is binary: give --output FILE or redirect")
        else:
            for chunk in encode(table, file_fmt):
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    if result.truncated:
        console(stderr=True).print(
            f"[yellow]warning:[/yellow] result cut at {count(max_rows, 'row')} (raise --max-rows)"
        )
    for warning in result.warnings:
        console(stderr=True).print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def _unicode(out: TextIO) -> bool:
    """Whether ``out`` writes Unicode (the box lines), else the table is drawn in ASCII."""
    try:
        return codecs.lookup(out.encoding or "ascii").name.startswith("utf")
    except LookupError:
        return False


@click.command("explain")
@click.argument("sql")
@click.option("--dialect", default="duckdb", show_default=True)
@click.option("--analyze", is_flag=True,
              help="Run the query and add each fragment's rows, bytes and time (EXPLAIN "
                   "ANALYZE).")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="A named parameter, as for 'meterql query' (needed with --analyze).")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds before an --analyze run is stopped.")
@click.option("--max-staleness", "max_staleness", metavar="DURATION",
              help="Freshness bound for sources in auto mode, as for 'meterql query'.")
@home_option
def explain_cmd(ws: Workspace, sql: str, dialect: str, analyze: bool, params: tuple[str, ...],
                timeout: float, max_staleness: str | None) -> None:
    """Show how a query is split: each fragment with its source and SQL, and the residual.
    With --analyze the query runs, and what each part cost is added."""
    if sql == "-":
        sql = sys.stdin.read()
    values = query_params(params)
    if not analyze:
        click.echo(str(ws.explain(sql, dialect, max_staleness)))
        return
    # The statement is checked as written (positions in errors are the user's); EXPLAIN
    # ANALYZE in front of it runs it.
    sql = _EXPLAIN.sub("", sql, count=1)
    ws.explain(sql, dialect, max_staleness)
    result = ws.query(f"EXPLAIN ANALYZE {sql}", values, dialect, timeout=timeout,
                      max_staleness=max_staleness)
    click.echo(plan_text(result.to_arrow()) or "")
