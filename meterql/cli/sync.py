"""``meterql sync``: copy what changed at synced sources into their replicas, once or on a
schedule (``--watch``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from meterql.cli.common import console, escape, home_option, print_error
from meterql.sync.runner import SyncReport
from meterql.sync.schedule import SyncAttempt, SyncSchedule
from meterql.workspace import Workspace

if TYPE_CHECKING:
    from meterql.client import Client


@click.command("sync")
@click.argument("sources", nargs=-1)
@click.option("--watch", is_flag=True,
              help="Keep running: sync each source every --every (or its sync_every_s option).")
@click.option("--every", default="15m", show_default=True,
              help="With --watch: how often, e.g. 30s, 15m, 1h.")
@home_option
def sync_cmd(ws: Workspace, sources: tuple[str, ...], watch: bool, every: str) -> None:
    """Copy what changed at synced sources into their replicas (all synced sources by default)."""
    if watch and not isinstance(ws, Workspace):
        raise click.UsageError("the server runs the sync schedule itself (meterql status shows "
                               "it): run meterql sync without --watch to sync now")
    names = list(sources) or [s.name for s in ws.sources() if s.mode == "sync"]
    if not names:
        raise click.UsageError("no source is in sync mode (meterql source set NAME --mode sync)")
    if not isinstance(ws, Workspace):  # the server runs the same schedule and retries
        reports = _sync_through_server(ws, names)
        if any(report.error is not None for report in reports):
            raise SystemExit(1)
        return
    # the one schedule and retry policy of the CLI and the server (meterql/sync/schedule.py)
    schedule = SyncSchedule(ws, duration(every), sources=names,
                            run=lambda name: _sync_with_progress(ws, name), notify=_print)
    if watch:
        schedule.run()  # until Ctrl-C
    elif any(report.error is not None for report in schedule.run_due()):
        raise SystemExit(1)


def _sync_with_progress(ws: Workspace, name: str) -> SyncReport:
    """One run of one source, with a progress line."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"sync {name}", total=None)
        started = time.perf_counter()

        def show(table: str, rows: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-6)
            progress.update(task, description=f"sync {table}: {rows:,} rows ({rate:,.0f}/s)")

        return ws.sync(name, progress=show)[0]


def _sync_through_server(client: Client, names: list[str]) -> list[SyncReport]:
    """The sources synced by the server, with the same progress line and output."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"sync {', '.join(names)}", total=None)
        started = time.perf_counter()

        def show(source: str, table: str, rows: int) -> None:
            rate = rows / max(time.perf_counter() - started, 1e-6)
            progress.update(task, description=f"sync {table}: {rows:,} rows ({rate:,.0f}/s)")

        return client.sync.run_due(names, progress=show, notify=_print)


def _print(attempt: SyncAttempt) -> None:
    report = attempt.report
    for t in report.tables:
        click.echo(f"{t.table}: {t.strategy}, {t.rows:,} "
                   + ("rows and changes" if t.changes is not None else "rows")
                   + f" read in {t.seconds:.2f} s"
                   + (f"; {t.note}" if t.note else ""))
    if report.error is None:
        return
    if attempt.retry_in is not None:
        console(stderr=True).print(f"[yellow]retrying[/yellow] {report.source} in "
                                   f"{attempt.retry_in:.0f} s: {escape(str(report.error))}")
    else:
        print_error(report.error)


def duration(text: str) -> float:
    """Seconds in ``30s``, ``15m``, ``1h``, ``1d`` or a bare number of seconds.

    Example:
        >>> duration("15m"), duration("90")
        (900.0, 90.0)
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise click.BadParameter(f"'{text}' is not a duration like 30s, 15m or 1h",
                                 param_hint="--every") from None
