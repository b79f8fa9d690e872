"""``meterql aggregate ...``: define, show, evaluate and dry-run aggregates."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import click

from meterql.aggregates import parse_definition
from meterql.aggregates.evaluate import Window
from meterql.aggregates.plan import dry_run_plan
from meterql.cli.common import MeterqlGroup, console, escape, home_option
from meterql.encoders import encode, json_value, render_table, row_count
from meterql.wording import count, format_duration
from meterql.workspace import Workspace

if TYPE_CHECKING:
    import pyarrow as pa

EVALUATION_FORMATS = ("table", "csv", "json")  # what an evaluation prints as, here
#: The changes a dry run lists as a table before it says it cut them (csv and json list all).
PLAN_ROWS = 50


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
        click.option("--max-staleness", "max_staleness", metavar="DURATION",
                     help="Freshness bound for sources in auto mode (0 = live, 5m, 1h, none = "
                          "any age). Default: the aggregate's header '-- freshness:', else "
                          "the setting max_staleness."),
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
               f"-- dialect: {a.dialect}\n-- customer: {a.customer_column}\n"
               + (f"-- freshness: {a.freshness}\n" if a.freshness is not None else "")
               + a.sql)


@aggregate.command("evaluate")
@click.argument("name")
@_period_options
@click.option("--version", type=int, help="Default: the latest.")
@home_option
def aggregate_evaluate(ws: Workspace, name: str, start: str, end: str,
                       customers: tuple[str, ...], tz: str, window: Window | None, fmt: str,
                       max_staleness: str | None, version: int | None) -> None:
    """Billable usage per customer for a period (logged with its provenance: the freshness
    bound, and the route, watermark and staleness of each table read)."""
    ev = ws.aggregates.evaluate(name, period_bound(start), period_bound(end),
                                customers=customers or None, tz=tz,
                                window=window, version=version, max_staleness=max_staleness)
    rows = ev.in_zone()  # the periods in --tz
    if fmt == "json":
        click.echo(json.dumps({"evaluation": json_value(ev.describe()),
                               "rows": json_value(rows.to_pylist())}, indent=2))
        return
    if fmt == "csv":
        _write(rows)
        return
    out = console()
    out.print(render_table(rows))
    out.print(f"[dim]{ev.aggregate.name} v{ev.aggregate.version}, {row_count(rows.num_rows)} in "
              f"{ev.seconds * 1000:.1f} ms ({tz}); evaluation {ev.id}; {ev.result_hash}[/dim]")
    for line in read_lines(ev.provenance):
        out.print(f"[dim]{escape(line)}[/dim]")


def read_lines(provenance: dict) -> list[str]:
    """What an evaluation read, one line a table: its route, watermark and staleness, after
    the freshness bound it ran under (and where the bound came from).

    Example:
        >>> read_lines({"freshness": {"max_staleness": "5m", "from": "header"},
        ...             "watermarks": [{"table": "pg.public.usage", "route": "replica",
        ...                             "synced_at": "2026-10-01T11:58:00+00:00",
        ...                             "staleness": 120.0}]})
        ... # doctest: +NORMALIZE_WHITESPACE
        ['freshness bound 5m (header)',
         'read pg.public.usage: replica, synced 2026-10-01T11:58:00+00:00, 2m old']
    """
    lines = []
    bound = provenance.get("freshness")
    if bound:
        lines.append(f"freshness bound {bound['max_staleness']} ({bound['from']})")
    for mark in provenance.get("watermarks", []):
        if "route" not in mark:
            continue
        parts = [str(mark["route"])]
        if mark.get("synced_at"):
            parts.append(f"synced {mark['synced_at']}")
        if mark.get("staleness") is not None:
            parts.append("live" if mark["staleness"] == 0
                         else f"{format_duration(mark['staleness'])} old")
        lines.append(f"read {mark['table']}: {', '.join(parts)}")
    return lines


def _write(table: pa.Table) -> None:
    """``table`` as CSV on standard output (the text of every value as ``meterql query``)."""
    for chunk in encode(table, "csv"):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


@aggregate.command("dry-run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_period_options
@home_option
def aggregate_dry_run(ws: Workspace, file: Path, start: str, end: str,
                      customers: tuple[str, ...], tz: str, window: Window | None,
                      fmt: str, max_staleness: str | None) -> None:
    """Evaluate the definition in FILE without saving it, and show what would change."""
    draft = parse_definition(file.read_text(), origin=str(file))
    out = ws.aggregates.dry_run(draft, period_bound(start), period_bound(end),
                                customers=customers or None, tz=tz,
                                window=window, max_staleness=max_staleness)
    plan = dry_run_plan(out, draft)
    if fmt == "json":
        click.echo(json.dumps(json_value({"current_version": out["current_version"],
                                          "summary": plan.summary(),
                                          "diff": out["diff"],
                                          "rows": out["draft"].in_zone().to_pylist()}),
                              indent=2))
        return
    if fmt == "csv":
        _write(plan.changes)
        return
    view = console()
    against = (f"version {plan.against}" if plan.against else "nothing (a new aggregate)")
    view.print(f"Dry run of {escape(plan.name)} from {escape(file.name)} against {against}, "
               f"{escape(f'[{start}, {end})')} in {escape(tz)}")
    for line in read_lines(out["draft"].provenance):
        view.print(f"[dim]{escape(line)}[/dim]")
    counts = plan.counts
    if not counts["added"] + counts["changed"] + counts["removed"]:
        view.print("[bold]No changes.[/bold] The draft gives the same "
                   f"{row_count(counts['unchanged'])} as {against}.")
        return
    view.print(f"[bold]Plan:[/bold] {count(plan.customers_changed, 'customer')} changed; "
               f"{counts['added']} to add, {counts['changed']} to change, "
               f"{counts['removed']} to remove, {counts['unchanged']} unchanged.")
    view.print(f"[bold]Total quantity:[/bold] {plan.current_total} -> {plan.draft_total} "
               f"(delta {'+' if plan.delta >= 0 else ''}{plan.delta})")
    shown = plan.changes.slice(0, PLAN_ROWS)
    view.print(render_table(shown, title="current / draft / delta"))
    if shown.num_rows < plan.changes.num_rows:
        view.print(f"(cut: {shown.num_rows} of {plan.changes.num_rows} changes shown; "
                   "--format csv or json lists them all)")
