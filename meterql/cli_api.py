"""Commands for aggregates, API keys and the HTTP server (registered on ``meterql``'s group)."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path

import click

from meterql.aggregates import WINDOWS, parse_definition
from meterql.cli import MeterqlGroup, _console, _escape, home_option, main
from meterql.output import json_value, render_table
from meterql.workspace import Workspace, connect


def _when(text: str) -> date | datetime:
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
        click.option("--window", type=click.Choice(WINDOWS), help="One row set per window."),
        click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]),
                     default="table", show_default=True),
    ]):
        func = option(func)
    return func


# -- aggregates --------------------------------------------------------------------------------
@main.group("aggregate", cls=MeterqlGroup)
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
        view.add_row(a.name, str(a.version), a.unit or "", _escape(a.description or ""))
    _console().print(view)


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
                       customers: tuple[str, ...], tz: str, window: str | None, fmt: str,
                       version: int | None) -> None:
    """Billable usage per customer for a period (logged with its provenance)."""
    ev = ws.aggregates.evaluate(name, _when(start), _when(end), customers=customers or None,
                                tz=tz, window=window, version=version)  # type: ignore[arg-type]
    if fmt == "json":
        click.echo(json.dumps({"evaluation": json_value(ev.describe()),
                               "rows": json_value(ev.rows())}, indent=2))
        return
    out = _console()
    out.print(render_table(ev.table))
    out.print(f"[dim]{ev.aggregate.name} v{ev.aggregate.version}, {ev.table.num_rows} rows in "
              f"{ev.seconds * 1000:.1f} ms; evaluation {ev.id}; {ev.result_hash}[/dim]")


@aggregate.command("dry-run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_period_options
@home_option
def aggregate_dry_run(ws: Workspace, file: Path, start: str, end: str,
                      customers: tuple[str, ...], tz: str, window: str | None,
                      fmt: str) -> None:
    """Evaluate the definition in FILE without saving it, and show what would change."""
    draft = parse_definition(file.read_text(), origin=str(file))
    out = ws.aggregates.dry_run(draft, _when(start), _when(end), customers=customers or None,
                                tz=tz, window=window)  # type: ignore[arg-type]
    if fmt == "json":
        click.echo(json.dumps(json_value({"current_version": out["current_version"],
                                          "diff": out["diff"],
                                          "rows": out["draft"].rows()}), indent=2))
        return
    console = _console()
    console.print(render_table(out["draft"].table, title=f"draft of {draft.name}"))
    summary = out["diff"]["summary"]
    against = (f"version {out['current_version']}" if out["current_version"]
               else "nothing (new aggregate)")
    console.print(f"against {against}: " + ", ".join(f"{n} {k}" for k, n in summary.items()))
    for change in out["diff"]["changes"][:50]:
        console.print(_escape(f"  {change['kind']}: {json_value(change)}"))


# -- API keys ----------------------------------------------------------------------------------
@main.group("apikey", cls=MeterqlGroup)
def apikey() -> None:
    """API keys for the HTTP API."""


@apikey.command("create")
@click.option("--scope", type=click.Choice(["read", "ingest", "admin"]), required=True,
              help="read: queries and evaluations; ingest: also writes; admin: everything.")
@click.option("--name", help="A label to recognise the key by.")
@home_option
def apikey_create(ws: Workspace, scope: str, name: str | None) -> None:
    """Create a key. It is printed once, alone on the last line, and stored only hashed."""
    from meterql.server.keys import create_key

    key_id, key = create_key(ws.records, scope, name)
    click.echo(f"created key {key_id} with scope {scope}; it is shown only now:", err=True)
    click.echo(key)


@apikey.command("list")
@home_option
def apikey_list(ws: Workspace) -> None:
    """Keys by id, name and scope (never the keys themselves)."""
    for key in ws.records.api_keys():
        state = f"revoked {key['revoked_at']:%Y-%m-%d}" if key["revoked_at"] else "active"
        click.echo(f"{key['id']}  {key['scope']:<6}  {state:<18}  {key['name'] or ''}")


@apikey.command("revoke")
@click.argument("key_id")
@home_option
def apikey_revoke(ws: Workspace, key_id: str) -> None:
    """Revoke a key by its id; requests with it are refused from now on."""
    if not ws.records.revoke_api_key(key_id):
        raise click.UsageError(f"no active key with id '{key_id}' (see 'meterql apikey list')")
    click.echo(f"revoked key {key_id}")


# -- the server --------------------------------------------------------------------------------
@main.command("serve")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), envvar="METERQL_HOME",
              default=None, help="Workspace folder [default: $METERQL_HOME or ./meterql_home].")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--timeout", default=60.0, show_default=True, type=float,
              help="Time limit of every query, in seconds (requests may ask for less).")
@click.option("--max-rows", default=10_000_000, show_default=True, type=int,
              help="Row cap of every query (requests may ask for less).")
@click.option("--sync/--no-sync", default=True, show_default=True,
              help="Run the synced sources' schedules in the background.")
@click.option("--sync-every", default=900.0, show_default=True, type=float,
              help="Seconds between syncs of a source without its own sync_every_s.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(home: Path | None, host: str, port: int, timeout: float, max_rows: int, sync: bool,
          sync_every: float, log_level: str) -> None:
    """Serve the HTTP API (OpenAPI at /docs) until interrupted."""
    import logging

    import uvicorn

    from meterql.server.app import create_app

    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with connect(home) as ws:
        app = create_app(ws, timeout=timeout, max_rows=max_rows, sync=sync,
                         sync_every_s=sync_every)
        click.echo(f"meterql serving {ws.home} on http://{host}:{port} (docs at /docs)",
                   err=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


# -- benchmarks --------------------------------------------------------------------------------
@main.command("bench", context_settings={"ignore_unknown_options": True})
@click.option("--scale", type=click.Choice(["tiny", "1gb", "10gb", "30gb"]), default="tiny",
              show_default=True, help="PostgreSQL data size to generate and measure.")
@click.option("--runs", type=int, default=3, show_default=True,
              help="Timed runs per query and mode (after a warm-up); medians are reported.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Where results.json and report.md go [default: docs/benchmarks/SCALE; a "
                   "temporary folder for --scale tiny].")
@click.option("--pg-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the generated PostgreSQL cluster in this directory, so a later run "
                   "(or one that was stopped) reuses the loaded data [default: a throwaway "
                   "cluster].")
def bench(scale: str, runs: int, out: Path | None, pg_dir: Path | None) -> None:
    """Benchmark direct vs sync vs native PostgreSQL, native DuckDB and DuckDB's postgres
    extension on a generated usage-billing dataset (runs from a source checkout)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / "harness" / "run.py").exists():
        raise click.UsageError("meterql bench runs from a source checkout: benchmarks/ is not "
                               f"next to the installed package ({root})")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.harness.run import main as run_bench

    argv = ["--scale", scale, "--runs", str(runs)] + (["--out", str(out)] if out else []) \
        + (["--pg-dir", str(pg_dir)] if pg_dir else [])
    raise SystemExit(run_bench(argv))
