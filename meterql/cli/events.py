"""``meterql events ...``: usage event streams in ``local.events``: create, push, amend, void,
backfill."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import click

from meterql.cli.common import MeterqlGroup, home_option, typed_columns
from meterql.encoders import json_value
from meterql.local.events import parse_body
from meterql.workspace import Workspace

BACKFILL_ACTIONS = ("open", "close", "revert", "show")


@click.group("events", cls=MeterqlGroup)
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
                                     schema=typed_columns(columns) or None)
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
@click.argument("action", type=click.Choice(BACKFILL_ACTIONS))
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
        backfill = ws.events.open_backfill(target, instant(start), instant(end))
        click.echo(backfill)
        return
    info = {"close": ws.events.close_backfill, "revert": ws.events.revert_backfill,
            "show": ws.events.backfill}[action](target)
    click.echo(json.dumps(json_value(info)))


def instant(text: str) -> datetime:
    """An ISO 8601 time; one without a time zone is in UTC.

    Example:
        >>> instant("2026-10-01T06:00")
        datetime.datetime(2026, 10, 1, 6, 0, tzinfo=datetime.timezone.utc)
    """
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
