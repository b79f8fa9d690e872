"""``meterql aggregate ...``: define, show, evaluate and dry-run aggregates."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import get_args

import click

from meterql.aggregates import parse_definition
from meterql.aggregates.evaluate import Window
from meterql.cli.common import MeterqlGroup, console, escape, home_option
from meterql.encoders import json_value, render_table, row_count
from meterql.workspace import Workspace

EVALUATION_FORMATS = ("table", "json")  # what an evaluation prints as, here


def period_bound(text: str) -> date | datetime:
    """``--from``/``--to``: a date (midnight in the period's time zone) or a time.

    Example:
        >>> period_bound("2026-10-01"), period_bound("2026-10-01T06:00")
        (datetime.date(2026, 10, 1), datetime.datetime(2026, 10, 1, 6, 0))
    """
    try:
        return datetime.fromisoformat(text) if "T" in text or " " in text else \
            date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a date (2026-10-01) or a time "
                                 "(2026-10-01T06:00)") from None


def _period_options(func):
    for option in reversed([
        click.option("--from", "start", required=True, help="Start (inclusive): a date is "
                     "midnight in --tz."),
        click.option("--to", "end", required=True, help="End (exclusive)."),
        click.option("--customer", "customers", multiple=True,
                     help="Report this customer (repeatable); one without usage gets 0."),
        click.option("--tz", default="UTC", show_default=True, help="IANA time zone."),
        click.option("--window", type=click.Choice(get_args(Window)),
                     help="One row set per window."),
        click.option("--format", "-f", "fmt", type=click.Choice(EVALUATION_FORMATS),
                     default="table", show_default=True),
    ]):
        func = option(func)
    return func


@click.group("aggregate", cls=MeterqlGroup)
def aggregate() -> None:
    """Define and evaluate aggregates: named, versioned SQL for billable usage."""


@aggregate.command("apply")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@home_option
def aggregate_apply(ws: Workspace, folder: Path) -> None:
    """Validate every FOLDER/*.sql definition, then save each changed one as a new version."""
    for saved, new in ws.aggregates.apply(folder):
        state = "new version" if new else "unchanged"
        click.echo(f"{saved.name}: version {saved.version} ({state})")


@aggregate.command("list")
@home_option
def aggregate_list(ws: Workspace) -> None:
    """The latest version of every aggregate."""
    from rich.table import Table

    view = Table("name", "version", "unit", "description", header_style="bold")
    for a in ws.aggregates.list():
        view.add_row(a.name, str(a.version), a.unit or "", escape(a.description or ""))
    console().print(view)


@aggregate.command("show")
@click.argument("name")
@click.option("--version", type=int, help="Default: the latest.")
@home_option
def aggregate_show(ws: Workspace, name: str, version: int | None) -> None:
    """One aggregate's definition."""
    a = ws.aggregates.get(name, version)
    versions = len(ws.aggregates.versions(name))
    click.echo(f"-- name: {a.name}\n-- version: {a.version} of {versions}\n"
               f"-- description: {a.description or ''}\n-- unit: {a.unit or ''}\n"
               f"-- dialect: {a.dialect}\n-- customer: {a.customer_column}\n{a.sql}")


@aggregate.command("evaluate")
@click.argument("name")
@_period_options
@click.option("--version", type=int, help="Default: the latest.")
@home_option
def aggregate_evaluate(ws: Workspace, name: str, start: str, end: str,
                       customers: tuple[str, ...], tz: str, window: Window | None, fmt: str,
                       version: int | None) -> None:
    """Billable usage per customer for a period (logged with its provenance)."""
    ev = ws.aggregates.evaluate(name, period_bound(start), period_bound(end),
                                customers=customers or None, tz=tz,
                                window=window, version=version)
    if fmt == "json":
        click.echo(json.dumps({"evaluation": json_value(ev.describe()),
                               "rows": json_value(ev.rows())}, indent=2))
        return
    out = console()
    out.print(render_table(ev.table))
    out.print(f"[dim]{ev.aggregate.name} v{ev.aggregate.version}, "
              f"{row_count(ev.table.num_rows)} in {ev.seconds * 1000:.1f} ms; "
              f"evaluation {ev.id}; {ev.result_hash}[/dim]")


@aggregate.command("dry-run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_period_options
@home_option
def aggregate_dry_run(ws: Workspace, file: Path, start: str, end: str,
                      customers: tuple[str, ...], tz: str, window: Window | None,
                      fmt: str) -> None:
    """Evaluate the definition in FILE without saving it, and show what would change."""
    draft = parse_definition(file.read_text(), origin=str(file))
    out = ws.aggregates.dry_run(draft, period_bound(start), period_bound(end),
                                customers=customers or None, tz=tz,
                                window=window)
    if fmt == "json":
        click.echo(json.dumps(json_value({"current_version": out["current_version"],
                                          "diff": out["diff"],
                                          "rows": out["draft"].rows()}), indent=2))
        return
    view = console()
    view.print(render_table(out["draft"].table, title=f"draft of {draft.name}"))
    summary = out["diff"]["summary"]
    against = (f"version {out['current_version']}" if out["current_version"]
               else "nothing (new aggregate)")
    view.print(f"against {against}: " + ", ".join(f"{n} {k}" for k, n in summary.items()))
    for change in out["diff"]["changes"][:50]:
        view.print(escape(f"  {change['kind']}: {json_value(change)}"))
