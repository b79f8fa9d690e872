r"""The interactive shell: ``meterql repl`` (and ``meterql`` alone in a terminal).

SQL ends at ``;`` and may span lines; lines starting with ``\`` are meta-commands
(:mod:`meterql.repl.commands`). Ctrl-C stops the running query (at the source too) or the
printing of a result and keeps the shell (and its parameters); Ctrl-D leaves it. A large result
shows its first and last rows and its whole count (:attr:`Repl.max_shown`). History is kept
per workspace in ``<home>/repl_history``. Piped input (``meterql repl < script.sql``) runs the
same statements and commands with plain output.
"""

from __future__ import annotations

import fnmatch
import sys
import time
import traceback
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.markup import escape

from meterql.encoders import RESET, boxes, encode, expanded, row_count, save
from meterql.engine.result import plan_text
from meterql.engine.time_zone import check_time_zone
from meterql.errors import MeterqlError, ParameterError, QueryCancelledError
from meterql.repl.commands import COMMANDS, Command, parse_command

PROMPT, MORE = "meterql> ", "     ..> "


class Repl:
    def __init__(self, ws, console: Console, *, interactive: bool, debug: bool = False) -> None:
        self.ws = ws
        self.out = console
        self.interactive = interactive
        self.debug = debug
        self.format = "table" if interactive else "csv"
        self.timing = interactive
        self.params: dict[str, Any] = {}
        #: the session's time zone (None: UTC); SET TimeZone changes it (see set_time_zone)
        self.time_zone: str | None = None
        self.last: pa.Table | None = None
        self._errors = 0

    # -- loops -------------------------------------------------------------------------------
    def run_interactive(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.lexers import PygmentsLexer
        from pygments.lexers.sql import SqlLexer

        from meterql.repl.completer import SqlCompleter

        bindings = KeyBindings()

        @bindings.add("enter")
        def _(event) -> None:
            buffer = event.current_buffer
            if complete(buffer.text):
                buffer.validate_and_handle()
            else:
                buffer.insert_text("\n")

        functions = self.ws.tables.functions()
        session: PromptSession[str] = PromptSession(
            # (a remote server's shell keeps its history for the session only)
            history=(FileHistory(str(self.ws.home / "repl_history")) if self.ws.home
                     else InMemoryHistory()),
            lexer=PygmentsLexer(SqlLexer),
            completer=SqlCompleter(self.ws, functions),
            complete_while_typing=False,
            multiline=True,
            key_bindings=bindings,
            prompt_continuation=lambda width, line, wrap: MORE,
        )
        self.out.print(f"meterql {self._version()}: SQL ends with ;  \\help for commands, "
                       "Ctrl-D to leave")
        while True:
            try:
                text = session.prompt(PROMPT)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt clears the line
            except EOFError:
                break
            try:
                if not self.handle(text):
                    break
            except KeyboardInterrupt:  # Ctrl-C while printing (or planning): back to the prompt
                self.out.file.write(RESET + "\n")
                self.out.print("[yellow]interrupted[/yellow]")

    def run_script(self, text: str) -> int:
        """Run piped statements and commands; returns the number that failed."""
        failed = 0
        for piece in split_script(text):
            before = self._errors
            if not self.handle(piece):
                break
            failed += self._errors - before
        return failed

    # -- one entry -----------------------------------------------------------------------------
    def handle(self, text: str) -> bool:
        """Run one statement or command; False means leave."""
        text = text.strip()
        if not text or text == ";":
            return True
        if text.lower().rstrip(";") in ("quit", "exit"):
            return False
        try:
            if text.startswith("\\"):
                return self.command(parse_command(text))
            self.query(text.rstrip().rstrip(";"))
        except MeterqlError as exc:
            self.error(exc)
        except Exception as exc:  # a shell reports and goes on
            self._errors += 1
            if self.debug:
                self.out.print(escape(traceback.format_exc()))
            else:
                self.out.print(f"[bold red]error:[/bold red] {escape(str(exc))} "
                               "(run with --debug for the traceback)")
        return True

    def error(self, exc: MeterqlError) -> None:
        self._errors += 1
        self.out.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        caret = exc.caret()
        if caret:
            self.out.print(escape(caret), style="dim")
        if self.debug:
            self.out.print(escape(traceback.format_exc()))

    def set_time_zone(self, name: str) -> str:
        """Make ``name`` the session's time zone (checked: an unknown name raises a
        ParameterError naming the closest ones); returns its canonical spelling."""
        self.time_zone = check_time_zone(name)
        return self.time_zone

    def query(self, sql: str) -> None:
        plan = self.ws.explain(sql)
        params = {n: self.params[n] for n in plan.params if n in self.params}
        running = self.ws.submit(sql, params, tz=self.time_zone)
        t0 = time.perf_counter()
        try:
            while True:
                try:
                    result = running.result(timeout=0.1)
                    break
                except TimeoutError:
                    continue
        except KeyboardInterrupt:
            running.cancel()
            try:
                running.result(timeout=30)
            except QueryCancelledError:
                pass
            self.out.print("[yellow]query cancelled[/yellow] (stopped at the source too)")
            return
        if result.time_zone is not None:
            self.time_zone = result.time_zone
        self.last = result.to_arrow()
        self.show(self.last, time.perf_counter() - t0, result.truncated)

    # -- output --------------------------------------------------------------------------------
    #: Rows a table (or expanded rows) shows at most in the shell: the first and last halves
    #: with a ⋮ row between, as the DuckDB shell does; the footer has the whole count, and
    #: \save writes every row. A script's output (not a terminal) is never cut.
    max_shown = 40

    def show(self, table: pa.Table, seconds: float | None = None,
             truncated: bool = False) -> None:
        text = plan_text(table)
        if text is not None:  # EXPLAIN: plain text, never a table
            self.out.print(escape(text), soft_wrap=True)
            return
        fmt = self.format
        shown = table.num_rows
        if fmt in ("table", "vertical"):
            limit = self.max_shown if self.interactive else None
            styled = (self.interactive and self.out.is_terminal
                      and self.out.color_system is not None)
            view = boxes(table, limit=limit, styled=styled,
                         ascii=not (self.out.encoding or "").lower().startswith("utf"))
            if fmt == "vertical" or (self.interactive and table.num_columns
                                     and view.width > self.out.width):
                view = expanded(table, limit=limit, styled=styled)  # (psql's \x auto)
            self._write(view.chunks())
            shown = view.shown
        elif self.interactive:
            self._write(chunk.decode() for chunk in encode(table, fmt))  # type: ignore[arg-type]
        else:  # a script's CSV or JSON: the bytes meterql query writes
            sys.stdout.flush()
            for chunk in encode(table, fmt):  # type: ignore[arg-type]
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        footer = row_count(table.num_rows, shown)
        if self.timing and seconds is not None:
            footer += f" in {seconds * 1000:.1f} ms"
        if truncated:
            footer += " (cut at the row cap)"
        if self.interactive or self.timing:
            self.out.print(f"[dim]{footer}[/dim]")

    def _write(self, chunks: Iterable[str]) -> None:
        """Text as it is (no markup) to the shell's output; Ctrl-C stops it between chunks
        or within one (:meth:`run_interactive` goes back to the prompt)."""
        file = self.out.file
        file.flush()
        for chunk in chunks:
            file.write(chunk)
        file.flush()

    # -- meta-commands -------------------------------------------------------------------------
    def command(self, cmd: Command) -> bool:
        handler = getattr(self, f"cmd_{cmd.name}")
        return handler(*cmd.args) is not False

    def _want(self, args: tuple, count: int | tuple[int, int], usage: str) -> None:
        low, high = (count, count) if isinstance(count, int) else count
        if not low <= len(args) <= high:
            raise ParameterError(f"usage: {usage}")

    def cmd_q(self, *args) -> bool:
        return False

    def cmd_help(self, *args) -> None:
        for name, (params, what) in COMMANDS.items():
            self.out.print(f"\\{name} {escape(params)}".ljust(34) + escape(what))

    def cmd_sources(self, *args) -> None:
        rows = [(s.name, s.kind, s.mode, len(self.ws.tables(s.name))) for s in self.ws.sources()]
        self.show(pa.table({"name": [r[0] for r in rows], "kind": [r[1] for r in rows],
                            "mode": [r[2] for r in rows], "tables": [r[3] for r in rows]}))

    def cmd_tables(self, *args) -> None:
        self._want(args, (0, 1), "\\tables [PATTERN]")
        names = [t.full_name for t in self.ws.tables()]
        if args:
            pattern = args[0]
            names = [n for n in names if (fnmatch.fnmatch(n, pattern) if any(
                c in pattern for c in "*?[") else pattern.lower() in n.lower())]
        self.show(pa.table({"table": names}))

    def cmd_d(self, *args) -> None:
        self._want(args, 1, "\\d TABLE")
        table = self.ws.tables.get(args[0])
        source = self.ws.sources.get(table.source)
        self.out.print(f"[bold]{escape(table.full_name)}[/bold] ({table.kind}; source "
                       f"{source.name}, {source.kind}, {source.mode} mode)")
        key = set(table.primary_key)
        self.show(pa.table({
            "column": [c.name for c in table.columns],
            "type": [c.type for c in table.columns],
            "source type": [c.source_type for c in table.columns],
            "nullable": [c.nullable for c in table.columns],
            "key": [c.name in key for c in table.columns],
        }))
        mark = self.ws.tables.freshness(table.full_name)
        if mark:
            self.out.print(escape("watermark: " + ", ".join(
                f"{k}={v}" for k, v in mark.items() if k != "table" and v is not None)))

    def cmd_explain(self, *args) -> None:
        self._want(args, 1, "\\explain SQL")
        self.out.print(escape(str(self.ws.explain(args[0]))))

    def cmd_timing(self, *args) -> None:
        self._want(args, (0, 1), "\\timing on|off")
        if args and args[0] not in ("on", "off"):
            raise ParameterError("usage: \\timing on|off")
        self.timing = (args[0] == "on") if args else not self.timing
        self.out.print(f"timing is {'on' if self.timing else 'off'}")

    def cmd_format(self, *args) -> None:
        self._want(args, 1, "\\format table|csv|json|vertical")
        if args[0] not in ("table", "csv", "json", "vertical"):
            raise ParameterError(f"unknown format '{args[0]}'",
                                 hint="use table, csv, json or vertical")
        self.format = args[0]
        self.out.print(f"format is {self.format}")

    def cmd_param(self, *args) -> None:
        self._want(args, (1, 2), "\\param NAME [VALUE]")
        if len(args) == 1:
            self.params.pop(args[0], None)
            self.out.print(f"cleared :{escape(args[0])}")
        else:
            self.params[args[0]] = args[1]
            self.out.print(f":{escape(args[0])} = {escape(args[1])}")

    def cmd_params(self, *args) -> None:
        for name, value in sorted(self.params.items()):
            self.out.print(f":{escape(name)} = {escape(str(value))}")

    def cmd_sync(self, *args) -> None:
        self._want(args, 1, "\\sync SOURCE")
        [report] = self.ws.sync(args[0])
        for t in report.tables:
            self.out.print(escape(t.line()))
        if report.error is not None:
            raise report.error

    def cmd_aggregates(self, *args) -> None:
        aggs = self.ws.aggregates.list()
        self.show(pa.table({"name": [a.name for a in aggs], "version": [a.version for a in aggs],
                            "unit": [a.unit for a in aggs],
                            "description": [a.description for a in aggs]}))

    def cmd_eval(self, *args) -> None:
        self._want(args, (3, 4), "\\eval NAME FROM TO [CUSTOMER]")
        try:
            start, end = date.fromisoformat(args[1]), date.fromisoformat(args[2])
        except ValueError:
            raise ParameterError("FROM and TO are dates like 2026-10-01") from None
        ev = self.ws.aggregates.evaluate(args[0], start, end,
                                         customers=[args[3]] if len(args) == 4 else None)
        self.last = ev.table
        self.show(ev.table, ev.seconds)
        self.out.print(f"[dim]{escape(ev.aggregate.name)} v{ev.aggregate.version}; "
                       f"{ev.result_hash}[/dim]")

    def cmd_save(self, *args) -> None:
        self._want(args, 1, "\\save FILE")
        if self.last is None:
            raise ParameterError("no result to save yet", hint="run a query first")
        path = Path(args[0])
        fmt = {".parquet": "parquet", ".json": "json", ".jsonl": "jsonl",
               ".arrow": "arrow"}.get(path.suffix.lower(), "csv")
        save(self.last, fmt, path)  # type: ignore[arg-type]
        self.out.print(f"saved {row_count(self.last.num_rows)} to {escape(str(path))} ({fmt})")

    def _version(self) -> str:
        import meterql

        return meterql.__version__


def complete(text: str) -> bool:
    """Whether the buffer is a whole entry: a command line, or SQL ending with ``;``
    outside quotes (or a bare quit)."""
    stripped = text.strip()
    if not stripped or stripped.startswith("\\") or stripped.lower() in ("quit", "exit"):
        return True
    return stripped.endswith(";") and stripped.count("'") % 2 == 0


def split_script(text: str) -> list[str]:
    """Statements (ending with ``;``) and command lines, in order."""
    pieces: list[str] = []
    pending: list[str] = []
    for line in text.splitlines():
        if not pending and line.strip().startswith("\\"):
            pieces.append(line)
            continue
        if not pending and not line.strip():
            continue
        pending.append(line)
        if complete("\n".join(pending)):
            pieces.append("\n".join(pending))
            pending = []
    if pending and "\n".join(pending).strip():
        pieces.append("\n".join(pending))
    return pieces
