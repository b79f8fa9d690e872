"""``meterql sync``: copy what changed at synced sources into their replicas, once or on a
schedule (``--watch``)."""

from __future__ import annotations

import time

import click

from meterql.cli.common import console, escape, home_option, print_error
from meterql.workspace import Workspace


@click.command("sync")
@click.argument("sources", nargs=-1)
@click.option("--watch", is_flag=True,
              help="Keep running: sync each source every --every (or its sync_every_s option).")
@click.option("--every", default="15m", show_default=True,
              help="With --watch: how often, e.g. 30s, 15m, 1h.")
@home_option
def sync_cmd(ws: Workspace, sources: tuple[str, ...], watch: bool, every: str) -> None:
    """Copy what changed at synced sources into their replicas (all synced sources by default)."""
    default = duration(every)
    names = list(sources) or [s.name for s in ws.sources() if s.mode == "sync"]
    if not names:
        raise click.UsageError("no source is in sync mode (meterql source set NAME --mode sync)")
    due = dict.fromkeys(names, 0.0)
    failed = False
    while True:
        now = time.monotonic()
        for name in names:
            if due[name] <= now:
                failed |= _sync_one(ws, name)
                interval = ws.source(name).options.get("sync_every_s") or default
                due[name] = time.monotonic() + float(interval)
        if not watch:
            break
        time.sleep(max(0.5, min(due.values()) - time.monotonic()))
    if failed:
        raise SystemExit(1)


def _sync_one(ws: Workspace, name: str) -> bool:
    """One source with a progress line; retried with backoff when the error is transient."""
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    err = console(stderr=True)
    for attempt in range(3):
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err, transient=True) as progress:
            task = progress.add_task(f"sync {name}", total=None)
            started = time.perf_counter()

            def show(table: str, rows: int, task=task, progress=progress, started=started):
                rate = rows / max(time.perf_counter() - started, 1e-6)
                progress.update(task, description=f"sync {table}: {rows:,} rows ({rate:,.0f}/s)")

            report = ws.sync(name, progress=show)[0]
        for t in report.tables:
            click.echo(f"{t.table}: {t.strategy}, {t.rows:,} "
                       + ("rows and changes" if t.changes is not None else "rows")
                       + f" read in {t.seconds:.2f} s"
                       + (f"; {t.note}" if t.note else ""))
        if report.error is None:
            return False
        if not report.error.retryable or attempt == 2:
            print_error(report.error)
            return True
        wait = 2**attempt
        err.print(f"[yellow]retrying[/yellow] {name} in {wait} s: {escape(str(report.error))}")
        time.sleep(wait)
    return True


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
