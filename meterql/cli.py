"""The command line: ``meterql source add``, ``meterql query``, ``meterql explain``, ...

Every command takes ``--home`` (default ``$METERQL_HOME`` or ``./meterql_home``) and calls the
same :class:`~meterql.workspace.Workspace` methods as the Python API. Errors print one line (and
the SQL with a caret for parse errors) on stderr and exit with status 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from meterql.errors import MeterqlError
from meterql.output import BINARY_FORMATS, FORMATS, render_table, write_binary, write_text
from meterql.workspace import Workspace, connect


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def home_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--home`` and open the workspace; the command receives ``ws``."""

    @click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="METERQL_HOME",
        default=None,
        help="Workspace folder [default: $METERQL_HOME or ./meterql_home].",
    )
    @functools.wraps(func)
    def wrapper(home: Path | None, **kwargs: Any) -> Any:
        with connect(home) as ws:
            return func(ws, **kwargs)

    return wrapper


class MeterqlGroup(click.Group):
    """Turns meterql errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MeterqlError as exc:
            err = _console(stderr=True)
            err.print(f"[bold red]error:[/bold red] {_escape(str(exc))}")
            caret = exc.caret()
            if caret:
                err.print(_escape(caret), style="dim")
            ctx.exit(1)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@click.group(cls=MeterqlGroup, invoke_without_command=True)
@click.version_option(package_name="meterql")
@click.pass_context
def main(ctx: click.Context) -> None:
    """meterql: one SQL interface over the databases where your usage data lives.

    Without a command in a terminal, opens the interactive shell (meterql repl)."""
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(repl_cmd)
        else:
            click.echo(ctx.get_help())


# -- sources -------------------------------------------------------------------------------
@main.group(cls=MeterqlGroup)
def source() -> None:
    """Register, inspect and remove sources."""


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"'{pair}' is not KEY=VALUE", param_hint="--option")
        options[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value
    return options


@source.command("add")
@click.argument("name")
@click.argument("uri")
@click.option("--mode", type=click.Choice(["direct", "sync"]), default="direct",
              show_default=True,
              help="direct: query the source at query time; sync: query a local replica "
                   "(run 'meterql sync' to fill it).")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Source option, e.g. statement_timeout_ms=60000 or numeric_scale=12.")
@home_option
def source_add(ws: Workspace, name: str, uri: str, mode: str, options: tuple[str, ...]) -> None:
    """Register a source and read its tables.

    URI is postgresql://user:env:PGPASSWORD@host:5432/db, sqlite:///path/file.db or
    duckdb:///path/file.duckdb.
    """
    src = ws.add_source(name, uri, mode=mode, options=_parse_options(options))  # type: ignore[arg-type]
    n = len(ws.tables(src.name))
    click.echo(f"added source '{src.name}' ({src.kind}, {src.mode}): {n} tables")
    if src.mode == "sync":
        click.echo(f"next: meterql sync {src.name}   (copies its tables into the local replica)")


@source.command("list")
@home_option
def source_list(ws: Workspace) -> None:
    """List the registered sources."""
    from rich.table import Table

    view = Table("name", "kind", "mode", "tables", header_style="bold")
    view.add_column("uri", overflow="fold")
    for src in ws.sources():
        view.add_row(src.name, src.kind, src.mode, str(len(ws.tables(src.name))),
                     _escape(src.display_uri))
    _console().print(view)


@source.command("show")
@click.argument("name")
@home_option
def source_show(ws: Workspace, name: str) -> None:
    """Show one source and its tables."""
    src = ws.source(name)
    out = _console()
    out.print(f"name:    {src.name}\nkind:    {src.kind}\nmode:    {src.mode}")
    out.print(f"uri:     {_escape(src.display_uri)}")
    for key, value in sorted(src.options.items()):
        out.print(f"option:  {key}={value}")
    marks = {w.table: w for w in ws.watermarks(src.name)}
    for table in ws.tables(src.name):
        line = f"table:   {table.full_name} ({len(table.columns)} columns, {table.kind})"
        mark = marks.get(table.full_name)
        if src.mode == "sync":
            line += (
                f"; synced {mark.synced_at:%Y-%m-%d %H:%M:%S %Z}, {mark.rows} rows, {mark.strategy}"
                + (f", cursor {mark.cursor_column} = {mark.cursor}" if mark.cursor_column else "")
                if mark is not None else "; not synced yet"
            )
        out.print(_escape(line))


@source.command("set")
@click.argument("name")
@click.option("--mode", type=click.Choice(["direct", "sync"]),
              help="direct: query the source; sync: query its local replica.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Set a source option (KEY= with no value removes it), e.g. cdc_slot=meterql.")
@home_option
def source_set(ws: Workspace, name: str, mode: str | None, options: tuple[str, ...]) -> None:
    """Switch a source between direct and sync mode (the SQL stays the same), or change its
    options."""
    if mode is None and not options:
        raise click.UsageError("give --mode and/or --option KEY=VALUE")
    if options:
        parsed = {k: (None if v == "" else v) for k, v in _parse_options(options).items()}
        src = ws.set_source_options(name, parsed)
        click.echo(f"source '{src.name}' options: "
                   + (", ".join(f"{k}={v}" for k, v in sorted(src.options.items())) or "none"))
    if mode is not None:
        src = ws.set_mode(name, mode)  # type: ignore[arg-type]
        click.echo(f"source '{src.name}' is now in {src.mode} mode")


@source.command("strategy")
@click.argument("table")
@click.argument("strategy", type=click.Choice(["full", "append", "merge", "cdc"]))
@click.option("--cursor",
              help="append: a monotonic column (id, created_at); merge: an updated_at column.")
@click.option("--lag", type=int, default=0, show_default=True,
              help="re-read this much before the last cursor (seconds for timestamps).")
@click.option("--soft-delete", "soft_delete", metavar="COLUMN",
              help="merge: the column that marks deleted rows (deletes are then updates, and "
                   "the key read that finds hard deletes is skipped).")
@home_option
def source_strategy(ws: Workspace, table: str, strategy: str, cursor: str | None,
                    lag: int, soft_delete: str | None) -> None:
    """Choose how a table of a synced source is copied (cdc: PostgreSQL's change log)."""
    ws.set_sync_strategy(table, strategy, cursor, lag, soft_delete)  # type: ignore[arg-type]
    click.echo(f"{ws.table(table).full_name}: {strategy}"
               + (f" on {cursor} (lag {lag})" if strategy in ("append", "merge") else "")
               + (f", soft delete by {soft_delete}" if soft_delete else ""))


# -- sync ------------------------------------------------------------------------------------
@main.command("sync")
@click.argument("sources", nargs=-1)
@click.option("--watch", is_flag=True,
              help="Keep running: sync each source every --every (or its sync_every_s option).")
@click.option("--every", default="15m", show_default=True,
              help="With --watch: how often, e.g. 30s, 15m, 1h.")
@home_option
def sync_cmd(ws: Workspace, sources: tuple[str, ...], watch: bool, every: str) -> None:
    """Copy what changed at synced sources into their replicas (all synced sources by default)."""
    import time as _time

    default = _duration(every)
    names = list(sources) or [s.name for s in ws.sources() if s.mode == "sync"]
    if not names:
        raise click.UsageError("no source is in sync mode (meterql source set NAME --mode sync)")
    due = dict.fromkeys(names, 0.0)
    failed = False
    while True:
        now = _time.monotonic()
        for name in names:
            if due[name] <= now:
                failed |= _sync_one(ws, name)
                interval = ws.source(name).options.get("sync_every_s") or default
                due[name] = _time.monotonic() + float(interval)
        if not watch:
            break
        _time.sleep(max(0.5, min(due.values()) - _time.monotonic()))
    if failed:
        raise SystemExit(1)


def _sync_one(ws: Workspace, name: str) -> bool:
    """One source with a progress line; retried with backoff when the error is transient."""
    import time as _time

    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    err = _console(stderr=True)
    for attempt in range(3):
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err, transient=True) as progress:
            task = progress.add_task(f"sync {name}", total=None)
            started = _time.perf_counter()

            def show(table: str, rows: int, task=task, progress=progress, started=started):
                rate = rows / max(_time.perf_counter() - started, 1e-6)
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
            err.print(f"[bold red]error:[/bold red] {_escape(str(report.error))}")
            return True
        wait = 2**attempt
        err.print(f"[yellow]retrying[/yellow] {name} in {wait} s: {_escape(str(report.error))}")
        _time.sleep(wait)
    return True


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise click.BadParameter(f"'{text}' is not a duration like 30s, 15m or 1h",
                                 param_hint="--every") from None


@source.command("test")
@click.argument("name")
@home_option
def source_test(ws: Workspace, name: str) -> None:
    """Connect to a source and print its version."""
    version = ws.test_source(name)
    click.echo(f"source '{name}' is reachable: {version}")


@source.command("remove")
@click.argument("name")
@home_option
def source_remove(ws: Workspace, name: str) -> None:
    """Forget a source (the database itself is not touched)."""
    src = ws.remove_source(name)
    click.echo(f"removed source '{src.name}'")


@source.command("refresh")
@click.argument("name")
@home_option
def source_refresh(ws: Workspace, name: str) -> None:
    """Read a source's tables and columns again."""
    tables = ws.refresh_source(name)
    click.echo(f"refreshed source '{name}': {len(tables)} tables")


# -- settings ------------------------------------------------------------------------------
@main.group("settings", cls=MeterqlGroup)
def settings_group() -> None:
    """Show or change workspace settings."""


@settings_group.command("list")
@home_option
def settings_list(ws: Workspace) -> None:
    """List every setting with its value and what it does."""
    from rich.table import Table

    from meterql.catalog.settings import SETTINGS

    view = Table("setting", "value", "default", "meaning", header_style="bold")
    for name, value in ws.settings().items():
        definition = SETTINGS[name]
        view.add_row(name, _show(value), _show(definition.default), definition.help)
    _console().print(view)


def _show(value: Any) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


@settings_group.command("set")
@click.argument("name")
@click.argument("value")
@home_option
def settings_set(ws: Workspace, name: str, value: str) -> None:
    """Change a setting."""
    click.echo(f"{name} = {_show(ws.set_setting(name, value))}")


@settings_group.command("reset")
@click.argument("name")
@home_option
def settings_reset(ws: Workspace, name: str) -> None:
    """Restore a setting's default."""
    click.echo(f"{name} = {_show(ws.set_setting(name, None))}")


# -- tables --------------------------------------------------------------------------------
@main.command("tables")
@click.argument("source_name", metavar="[SOURCE]", required=False)
@home_option
def tables_cmd(ws: Workspace, source_name: str | None) -> None:
    """List tables, of every source or of one."""
    from rich.table import Table

    view = Table("table", "kind", "columns", header_style="bold")
    for table in ws.tables(source_name):
        view.add_row(table.full_name, table.kind, str(len(table.columns)))
    _console().print(view)


@main.command("describe")
@click.argument("table")
@home_option
def describe_cmd(ws: Workspace, table: str) -> None:
    """Show a table's columns with their source and meterql types."""
    from rich.table import Table

    entry = ws.table(table)
    src = ws.source(entry.source)
    view = Table("column", "type", "source type", "nullable", header_style="bold",
                 title=f"{entry.full_name} ({src.kind}, {src.mode})")
    for col in entry.columns:
        view.add_row(col.name, col.type, col.source_type, "yes" if col.nullable else "no")
    _console().print(view)


# -- queries -------------------------------------------------------------------------------
def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{pair}' is not NAME=VALUE", param_hint="--param")
        params[key.lstrip(":$")] = value
    return params


@main.command("query")
@click.argument("sql")
@click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
              help="A named parameter (:NAME in the SQL); bound, never spliced.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result to a file instead of standard output.")
@click.option("--dialect", default="duckdb", show_default=True,
              help="The SQL dialect the query is written in.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds before the query is stopped.")
@click.option("--max-rows", type=int, default=1_000_000, show_default=True,
              help="Row cap; the result is cut there with a warning.")
@home_option
def query_cmd(ws: Workspace, sql: str, params: tuple[str, ...], fmt: str, output: Path | None,
              dialect: str, timeout: float, max_rows: int) -> None:
    """Run a SELECT over the registered sources. Use - to read the SQL from standard input."""
    if sql == "-":
        sql = sys.stdin.read()
    result = ws.query(sql, _parse_params(params), dialect, timeout=timeout, max_rows=max_rows)
    table = result.to_arrow()
    if fmt in BINARY_FORMATS:
        if output is None and sys.stdout.isatty():
            raise click.UsageError(f"--format {fmt} is binary: give --output FILE or redirect")
        if output is not None:
            tmp = output.with_name(output.name + ".partial")
            with open(tmp, "wb") as fh:
                write_binary(table, fmt, fh)  # type: ignore[arg-type]
            tmp.replace(output)
        else:
            write_binary(table, fmt, sys.stdout.buffer)  # type: ignore[arg-type]
    elif fmt == "table" and output is None:
        out = _console()
        out.print(render_table(table))
        out.print(f"[dim]{table.num_rows} rows in {result.seconds * 1000:.1f} ms[/dim]")
    else:
        text_fmt = "csv" if fmt == "table" else fmt
        if output is not None:
            tmp = output.with_name(output.name + ".partial")
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                write_text(table, text_fmt, fh)  # type: ignore[arg-type]
            tmp.replace(output)
        else:
            write_text(table, text_fmt, sys.stdout)  # type: ignore[arg-type]
    if result.truncated:
        _console(stderr=True).print(
            f"[yellow]warning:[/yellow] result cut at {max_rows} rows (raise --max-rows)"
        )


@main.command("explain")
@click.argument("sql")
@click.option("--dialect", default="duckdb", show_default=True)
@home_option
def explain_cmd(ws: Workspace, sql: str, dialect: str) -> None:
    """Show how a query is split: each fragment with its source and SQL, and the residual."""
    if sql == "-":
        sql = sys.stdin.read()
    click.echo(str(ws.explain(sql, dialect)))


# -- demo ------------------------------------------------------------------------------------
@main.command("demo")
@click.option("--plan", "plan_name", default="growth", show_default=True,
              help="Which plan's customers to bill in the demo query.")
@home_option
def demo_cmd(ws: Workspace, plan_name: str) -> None:
    """Build a small SQLite + DuckDB workspace and run a federated billing query on it."""
    from meterql.demo import DEMO_QUERY, prepare_demo

    out = _console()
    prepare_demo(ws)
    out.print(f"[bold]workspace[/bold] {ws.home}")
    for src in ws.sources():
        out.print(f"  source [cyan]{src.name}[/cyan] ({src.kind}, {src.mode}): "
                  f"{_escape(src.display_uri)}")
    out.print("\n[bold]query[/bold] (October 2026 usage per customer, plan = :plan)")
    out.print(_escape(DEMO_QUERY), style="dim")
    result = ws.query(DEMO_QUERY, {"plan": plan_name})
    out.print("\n[bold]plan[/bold]")
    out.print(_escape(str(result.plan)), style="dim")
    out.print(render_table(result.to_arrow()))
    out.print(f"[dim]{result.num_rows} rows in {result.seconds * 1000:.1f} ms[/dim]")
    out.print("\nNext: meterql tables --home " + str(ws.home)
              + "   |   meterql query \"SELECT ...\" --home " + str(ws.home))


if __name__ == "__main__":  # pragma: no cover
    main()


@main.command("repl")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@home_option
def repl_cmd(ws: Workspace, debug: bool) -> None:
    """The interactive shell: SQL ending with ;, meta-commands (\\help), completion, history.
    With piped input (meterql repl < script.sql) it runs the script with plain output."""
    from meterql.repl.session import Repl

    if sys.stdin.isatty():
        Repl(ws, _console(), interactive=True, debug=debug).run_interactive()
        return
    failed = Repl(ws, _console(), interactive=False, debug=debug).run_script(sys.stdin.read())
    if failed:
        raise SystemExit(1)


# Aggregates, keys and the server (cli_api) and local data (cli_local) live in their own
# modules; importing them registers their commands.
from meterql import cli_api, cli_local  # noqa: E402,F401
