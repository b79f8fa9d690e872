"""Commands for the workspace's own data: events, CSV loads, manual rows."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import click

from meterql.cli import MeterqlGroup, _console, _escape, home_option, main
from meterql.local.events import parse_body
from meterql.output import json_value
from meterql.workspace import Workspace

ROUND_HELP = ("Round numbers with more decimal places than their column keeps (half away "
              "from zero) instead of refusing them.")


def _pairs(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"'{pair}' is not NAME=VALUE", param_hint=option)
        out[name.strip()] = value
    return out


def _typed(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, typ = pair.partition(":")
        if not sep:
            raise click.BadParameter(f"'{pair}' is not NAME:TYPE", param_hint="--column")
        out[name.strip()] = typ.strip()
    return out


# -- events ------------------------------------------------------------------------------------
@main.group("events", cls=MeterqlGroup)
def events() -> None:
    """Usage event streams in local.events: push, correct, backfill."""


@events.command("create")
@click.argument("stream")
@click.option("--id-field", default="id", show_default=True)
@click.option("--timestamp-field", default="timestamp", show_default=True)
@click.option("--customer-field", default="customer_id", show_default=True)
@click.option("--column", "columns", multiple=True, metavar="NAME:TYPE",
              help="Declare a column (then the schema is enforced); omit to infer.")
@home_option
def events_create(ws: Workspace, stream: str, id_field: str, timestamp_field: str,
                  customer_field: str, columns: tuple[str, ...]) -> None:
    """Create STREAM before its first event (names of its required fields, declared columns)."""
    config = ws.events.create_stream(stream, id_field=id_field, timestamp_field=timestamp_field,
                                     customer_field=customer_field,
                                     schema=_typed(columns) or None)
    click.echo(f"created local.events.{config.name}"
               + (" (declared schema)" if config.declared else ""))


@events.command("push")
@click.argument("stream")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--backfill", help="Push into this open backfill.")
@home_option
def events_push(ws: Workspace, stream: str, file: Path, backfill: str | None) -> None:
    """Push events from FILE (NDJSON, or a JSON object or array) into STREAM."""
    kind = "application/x-ndjson" if file.suffix in (".ndjson", ".jsonl") else "application/json"
    outcomes = ws.events.ingest_body(stream, file.read_bytes(), kind, backfill=backfill)
    counts = Counter(o.status for o in outcomes)
    click.echo(", ".join(f"{counts[k]} {k}" for k in ("accepted", "duplicate", "rejected")))
    for o in outcomes:
        if o.status == "rejected":
            click.echo(f"event {o.index} ({o.id}): {o.reason}", err=True)
    if counts["rejected"]:
        sys.exit(1)


@events.command("amend")
@click.argument("stream")
@click.argument("event_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@home_option
def events_amend(ws: Workspace, stream: str, event_id: str, file: Path) -> None:
    """Replace stored event EVENT_ID by the JSON object in FILE (the original is kept)."""
    [event] = parse_body(file.read_bytes(), "application/json")
    outcome = ws.events.amend(stream, event_id, event)
    click.echo(f"{event_id}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason
                                                   else ""))


@events.command("void")
@click.argument("stream")
@click.argument("event_id")
@home_option
def events_void(ws: Workspace, stream: str, event_id: str) -> None:
    """Remove stored event EVENT_ID from usage (kept in the history)."""
    click.echo(f"{event_id}: {ws.events.void(stream, event_id).status}")


@events.command("backfill")
@click.argument("action", type=click.Choice(["open", "close", "revert", "show"]))
@click.argument("target", metavar="STREAM|ID")
@click.option("--from", "start", help="open: start of the range (ISO 8601).")
@click.option("--to", "end", help="open: end of the range, exclusive.")
@home_option
def events_backfill(ws: Workspace, action: str, target: str, start: str | None,
                    end: str | None) -> None:
    """Open a backfill for STREAM (--from, --to), or close, revert or show backfill ID."""
    if action == "open":
        if not start or not end:
            raise click.UsageError("open needs --from and --to")
        backfill = ws.events.open_backfill(target, _instant(start), _instant(end))
        click.echo(backfill)
        return
    info = {"close": ws.events.close_backfill, "revert": ws.events.revert_backfill,
            "show": ws.events.backfill}[action](target)
    click.echo(json.dumps(json_value(info)))


def _instant(text: str) -> datetime:
    from datetime import UTC

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- CSV ---------------------------------------------------------------------------------------
@main.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--table", required=True, help="Into local.uploads.TABLE.")
@click.option("--mode", type=click.Choice(["append", "replace", "upsert"]), default="append",
              show_default=True)
@click.option("--key", multiple=True, help="upsert: the key column(s).")
@click.option("--keep-good", is_flag=True, help="Load the good rows and list the bad ones "
              "(default: all rows or none).")
@click.option("--column", "columns", multiple=True, metavar="NAME:TYPE",
              help="Declare the file's columns instead of sniffing them.")
@click.option("--round", "round_decimals", is_flag=True, help=ROUND_HELP)
@home_option
def load_cmd(ws: Workspace, file: Path, table: str, mode: str, key: tuple[str, ...],
             keep_good: bool, columns: tuple[str, ...], round_decimals: bool) -> None:
    """Load a CSV file into local.uploads.TABLE (the same file twice is not added twice)."""
    report = ws.load_csv(file, table, mode=mode, key=list(key) or None, keep_good=keep_good,
                         columns=_typed(columns) or None, round_decimals=round_decimals)
    if report.status == "unchanged":
        click.echo(report.note)
        return
    click.echo(f"{report.table}: {report.rows} rows loaded ({report.mode})")
    for row in report.rejected:
        click.echo(f"line {row['line']}: {row['reason']}", err=True)


# -- manual rows -------------------------------------------------------------------------------
@main.group("rows", cls=MeterqlGroup)
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
    click.echo(f"created {ws.manual.create(table, _typed(columns), list(key), actor='cli')}")


@rows.command("insert")
@click.argument("table")
@click.option("--set", "values", multiple=True, required=True, metavar="COLUMN=VALUE")
@click.option("--round", "round_decimals", is_flag=True, help=ROUND_HELP)
@home_option
def rows_insert(ws: Workspace, table: str, values: tuple[str, ...], round_decimals: bool
                ) -> None:
    """Insert a row."""
    row = ws.manual.insert(table, _pairs(values, "--set"), actor="cli",
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
    row = ws.manual.update(table, _pairs(key, "--key"), _pairs(values, "--set"), actor="cli",
                           round_decimals=round_decimals)
    click.echo(json.dumps(json_value(row)))


@rows.command("delete")
@click.argument("table")
@click.option("--key", "key", multiple=True, required=True, metavar="COLUMN=VALUE")
@home_option
def rows_delete(ws: Workspace, table: str, key: tuple[str, ...]) -> None:
    """Delete the row with this key."""
    ws.manual.delete(table, _pairs(key, "--key"), actor="cli")
    click.echo("deleted")


@rows.command("audit")
@click.argument("table", required=False)
@home_option
def rows_audit(ws: Workspace, table: str | None) -> None:
    """Every change to manual tables: who, when, before, after."""
    out = _console()
    for entry in ws.manual.audit(table):
        out.print(_escape(f"{entry['changed_at']:%Y-%m-%d %H:%M:%S} {entry['actor'] or '-'} "
                          f"{entry['action']} {entry['table']} {json.dumps(entry['key'])}: "
                          f"{json.dumps(json_value(entry['before']))} -> "
                          f"{json.dumps(json_value(entry['after']))}"))
