"""``meterql sync``: copy what changed at synced sources into their replicas, once or on a
schedule (``--watch``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from meterql.cli.common import console, escape, home_option, print_error
from meterql.sync.runner import SyncReport
from meterql.sync.schedule import SyncAttempt, SyncSchedule
from meterql.wording import count, format_duration, parse_duration
from meterql.workspace import Workspace

if TYPE_CHECKING:
    from meterql.client import Client


class Duration(click.ParamType):
    """A duration option (``30s``, ``15m``, ``1h30m`` or seconds), as seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


@click.command("sync")
@click.argument("sources", nargs=-1)
@click.option("--watch", is_flag=True,
              help="Keep running: sync each source every --every (or its sync_every_s option), "
                   "printing each run's time and the next one's.")
@click.option("--every", default="15m", show_default=True, type=DURATION,
              help="With --watch: how often, e.g. 30s, 15m, 1h30m.")
@home_option
def sync_cmd(ws: Workspace, sources: tuple[str, ...], watch: bool, every: float) -> None:
    """Copy what changed at synced sources into their replicas (all synced sources by default)."""
    if watch and not isinstance(ws, Workspace):
        raise click.UsageError("the server runs the sync schedule itself (meterql status shows "
                               "it): run meterql sync without --watch to sync now")
    names = list(sources) or [s.name for s in ws.sources() if s.replicated]
    if not names:
        raise click.UsageError("no source is in sync mode (meterql source set NAME --mode sync)")
    if not isinstance(ws, Workspace):  # the server runs the same schedule and retries
        reports = _sync_through_server(ws, names, printer(watch=False))
        if any(report.error is not None for report in reports):
            raise SystemExit(1)
        return
    # the one schedule and retry policy of the CLI and the server (meterql/sync/schedule.py)
    schedule = SyncSchedule(ws, every, sources=names,
                            run=lambda name: _sync_with_progress(ws, name),
                            notify=printer(watch))
    if watch:
        schedule.run()  # until Ctrl-C
    elif any(report.error is not None for report in schedule.run_due()):
        raise SystemExit(1)


@contextlib.contextmanager
def _progress_line(title: str) -> Iterator[Callable[[str, int], None]]:
    """A transient ``sync TABLE: N rows (R/s)`` line on standard error; yields its update."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"sync {title}", total=None)
        started = time.perf_counter()

        def show(table: str, rows: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-6)
            progress.update(task, description=f"sync {table}: {count(rows, 'row')} ({rate:,.0f}/s)")

        yield show


def _sync_with_progress(ws: Workspace, name: str) -> SyncReport:
    """One run of one source, with a progress line."""
    with _progress_line(name) as show:
        return ws.sync(name, progress=show)[0]


def _sync_through_server(client: Client, names: list[str],
                         notify: Callable[[SyncAttempt], None]) -> list[SyncReport]:
    """The sources synced by the server, with the same progress line and output."""
    with _progress_line(", ".join(names)) as show:
        return client.sync.run_due(names, progress=lambda _source, table, rows: show(table, rows),
                                   notify=notify)


def printer(watch: bool) -> Callable[[SyncAttempt], None]:
    """The ``notify`` of ``meterql sync``: a line per table, the failed tables' errors, and a
    line per run (with ``--watch``: its time and the next run's)."""

    def notify(attempt: SyncAttempt) -> None:
        report = attempt.report
        for t in report.tables:
            click.echo(t.line())
        if watch:
            line = (f"{datetime.now():%Y-%m-%d %H:%M:%S} {report.source}: "
                    f"{run_summary(report)}")
            if attempt.next_turn_in is not None:
                at = datetime.now() + timedelta(seconds=attempt.next_turn_in)
                line += (f"; next run at {at:%H:%M:%S} "
                         f"(in {format_duration(attempt.next_turn_in)})")
            click.echo(line)
        if report.error is None:
            return
        if attempt.retry_in is not None:
            console(stderr=True).print(f"[yellow]retrying[/yellow] {report.source} in "
                                       f"{format_duration(attempt.retry_in)}: "
                                       f"{escape(str(report.error))}")
            return
        failed = [t.error for t in report.failed if t.error is not None]
        for error in failed or [report.error]:
            print_error(error)

    return notify


def run_summary(report: SyncReport) -> str:
    """One run of one source in a few words."""
    synced = len(report.tables) - len(report.failed)
    tables = (count(synced, "table") if not report.failed
              else f"{synced} of {count(len(report.tables), 'table')}")
    text = f"{tables} synced, {count(report.rows, 'row')} in {format_duration(report.seconds)}"
    if report.error is not None and not report.failed:
        text = f"failed after {format_duration(report.seconds)}"
    return text
