r"""The interactive shell: ``meterql repl`` (and ``meterql`` alone in a terminal).

SQL ends at ``;`` and may span lines; lines starting with ``\`` are meta-commands
(:mod:`meterql.repl.commands`). Ctrl-C stops the running query (at the source too) or the
printing of a result and keeps the shell (and its parameters); Ctrl-D leaves it. A large result
shows its first and last rows and its whole count (:attr:`Repl.max_shown`). History is kept
per workspace in ``<home>/repl_history``. Piped input (``meterql repl < script.sql``) runs the
same statements and commands with plain output.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import sys
import time
import traceback
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import IO, Any, get_args

import pyarrow as pa
from rich.console import Console
from rich.markup import escape

from meterql.catalog.settings import parse_staleness
from meterql.encoders import (
    RESET,
    FileFormat,
    boxes,
    encode,
    expanded,
    row_count,
    save,
    type_name,
)
from meterql.engine.result import plan_text
from meterql.engine.time_zone import check_time_zone
from meterql.errors import MeterqlError, ParameterError, QueryCancelledError
from meterql.repl.commands import COMMANDS, Command, parse_command, parse_copy, relation_pattern
from meterql.wording import format_duration

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
        #: the session's freshness bound (\freshness): a duration as meterql prints it, or
        #: "none"; None: the workspace setting max_staleness
        self.freshness: str | None = None
        self.last: pa.Table | None = None
        self.last_sql: str | None = None
        #: \x: "on", "off", or "auto" (expanded when the table is wider than the terminal)
        self.expanded = "auto"
        #: The query buffer: the lines typed before a meta-command on the same entry
        #: (``\e`` edits it, ``\r`` clears it, any other command gives it back to the prompt).
        self.buffer = ""
        self._next_input = ""  # the text the next prompt starts with
        self._results_file: IO[str] | None = None  # \o FILE
        self._history: Any = None
        self._depth = 0  # \i within \i
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
            if complete(buffer.text) or trailing_command(buffer.text)[1] is not None:
                buffer.validate_and_handle()
            else:
                buffer.insert_text("\n")

        @bindings.add("c-x", "c-e")
        def _(event) -> None:  # edit the buffer in $EDITOR; run it if it ends with ;
            from prompt_toolkit.application import run_in_terminal

            buffer = event.current_buffer

            async def edit() -> None:
                try:
                    text = await run_in_terminal(lambda: self._edit(buffer.text),
                                                 in_executor=True)
                except MeterqlError as exc:  # no editor: said, and the text stays
                    await run_in_terminal(functools.partial(self.error, exc))
                    return
                if text is not None:
                    buffer.text = text
                    buffer.cursor_position = len(text)
                    if text.strip() and complete(text):
                        buffer.validate_and_handle()

            event.app.create_background_task(edit())

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
        self._history = session.history
        self.out.print(f"meterql {self._version()}: SQL ends with ;  \\help for commands, "
                       "Ctrl-D to leave")
        try:
            while True:
                default, self._next_input = self._next_input, ""
                try:
                    text = session.prompt(PROMPT, default=default)
                except KeyboardInterrupt:
                    continue  # Ctrl-C at the prompt clears the line
                except EOFError:
                    break
                try:
                    if not self.handle(text):
                        break
                except KeyboardInterrupt:  # Ctrl-C while printing (or planning): the prompt
                    self.out.file.write(RESET + "\n")
                    self.out.print("[yellow]interrupted[/yellow]")
        finally:
            self._results_to(None)

    def run_script(self, text: str) -> int:
        """Run piped statements and commands; returns the number that failed."""
        failed = 0
        try:
            for piece in split_script(text):
                before = self._errors
                if not self.handle(piece):
                    break
                failed += self._errors - before
        finally:
            self._results_to(None)
        return failed

    # -- one entry -----------------------------------------------------------------------------
    def handle(self, text: str) -> bool:
        """Run one statement or command; False means leave."""
        text = text.strip()
        if not text or text == ";":
            return True
        if text.lower().rstrip(";") in ("quit", "exit"):
            return False
        body, line = trailing_command(text)
        if line is not None:  # 'SELECT ...\n\\e': a command on the lines typed so far
            self.buffer, text = body, line
        try:
            if text.startswith("\\"):
                try:
                    return self.command(parse_command(text))
                finally:  # the buffer is the next prompt's text, as psql keeps it
                    self._next_input = self._next_input or self.buffer
                    self.buffer = ""
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

    def query(self, sql: str) -> bool:
        """Run and show one statement; False when Ctrl-C stopped it."""
        ran = self._run(sql)
        if ran is None:
            return False
        result, seconds = ran
        if result.time_zone is not None:  # SET TimeZone
            self.time_zone = result.time_zone
        self.last = result.to_arrow()
        with self._results():
            self.show(self.last, seconds, result.truncated)
        return True

    def _run(self, sql: str) -> tuple[Any, float] | None:
        """The result of ``sql`` and its time; None when Ctrl-C cancelled it."""
        self.last_sql = sql
        plan = self.ws.explain(sql, max_staleness=self.freshness)
        params = {n: self.params[n] for n in plan.params if n in self.params}
        running = self.ws.submit(sql, params, tz=self.time_zone, max_staleness=self.freshness)
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
            return None
        return result, time.perf_counter() - t0

    @contextlib.contextmanager
    def _results(self):
        """Query results go to the \\o file while one is set (messages stay on screen)."""
        if self._results_file is None:
            yield
            return
        screen = self.out
        self.out = Console(file=self._results_file, width=screen.width, no_color=True,
                           highlight=False)
        try:
            with contextlib.redirect_stdout(self._results_file):
                yield
        finally:
            self.out = screen
            self._results_file.flush()

    def _results_to(self, path: Path | None) -> None:
        if self._results_file is not None:
            self._results_file.close()
            self._results_file = None
        if path is not None:
            try:
                self._results_file = open(path, "w", encoding="utf-8")
            except OSError as exc:
                raise ParameterError(f"cannot write to {path}: {exc.strerror}",
                                     hint="give a file in a folder you can write to") from None

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
            # (a script's output and an \o file get every row, as psql writes them)
            limit = self.max_shown if self.interactive and self._results_file is None else None
            styled = (self.interactive and self.out.is_terminal
                      and self.out.color_system is not None)
            view = boxes(table, limit=limit, styled=styled,
                         ascii=not (self.out.encoding or "").lower().startswith("utf"))
            wide = self.interactive and table.num_columns and view.width > self.out.width
            if fmt == "vertical" or self.expanded == "on" or (self.expanded == "auto" and wide):
                view = expanded(table, limit=limit, styled=styled)  # psql's \x
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
            usage = f"\\{name} {params}"
            # (a usage too long for its column puts the text on the next line)
            line = (usage.ljust(34) + what if len(usage) < 34
                    else usage + "\n" + " " * 34 + what)
            self.out.print(escape(line), highlight=False)

    def cmd_sources(self, *args) -> None:
        rows = [(s.name, s.kind, s.mode, len(self.ws.tables(s.name))) for s in self.ws.sources()]
        self.show(pa.table({"name": [r[0] for r in rows], "kind": [r[1] for r in rows],
                            "mode": [r[2] for r in rows], "tables": [r[3] for r in rows]}))

    cmd_l = cmd_sources

    def cmd_dn(self, *args) -> None:
        self._want(args, 0, "\\dn")
        counts: dict[tuple[str, str], int] = {}
        for t in self.ws.tables():
            counts[(t.source, t.schema)] = counts.get((t.source, t.schema), 0) + 1
        keys = sorted(counts)
        self.show(pa.table({"source": [k[0] for k in keys], "schema": [k[1] for k in keys],
                            "tables": [counts[k] for k in keys]}))

    def cmd_dt(self, *args) -> None:
        self._want(args, (0, 1), "\\dt [PATTERN]")
        self._relations(args[0] if args else None, kinds=("table",))

    def _relations(self, pattern: str | None, kinds: tuple[str, ...] | None = None) -> None:
        """The relations (of ``kinds``) whose name matches psql's ``pattern``."""
        match = relation_pattern(pattern) if pattern else None
        found = sorted((t for t in self.ws.tables()
                        if (kinds is None or t.kind in kinds) and (match is None or match(t.key))),
                       key=lambda t: t.key)
        self.show(pa.table({"source": [t.source for t in found],
                            "schema": [t.schema for t in found],
                            "name": [t.name for t in found],
                            "type": [t.kind for t in found]}))

    def cmd_tables(self, *args) -> None:
        self._want(args, (0, 1), "\\tables [PATTERN]")
        names = [t.full_name for t in self.ws.tables()]
        if args:
            pattern = args[0]
            names = [n for n in names if (fnmatch.fnmatch(n, pattern) if any(
                c in pattern for c in "*?[") else pattern.lower() in n.lower())]
        self.show(pa.table({"table": names}))

    def cmd_d(self, *args) -> None:
        self._want(args, (0, 1), "\\d [TABLE]")
        if not args or any(c in args[0] for c in "*?"):
            self._relations(args[0] if args else None)
            return
        table = self.ws.tables.get(args[0])
        source = self.ws.sources.get(table.source)
        self.out.print(f"[bold]{escape(table.full_name)}[/bold] ({table.kind}; source "
                       f"{source.name}, {source.kind}, {source.mode} mode)")
        key = set(table.primary_key)
        self.show(pa.table({
            "column": [c.name for c in table.columns],
            "type": [type_name(c.type) for c in table.columns],
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
        self.out.print(escape(str(self.ws.explain(args[0], max_staleness=self.freshness))))

    def cmd_timing(self, *args) -> None:
        self._want(args, (0, 1), "\\timing on|off")
        if args and args[0] not in ("on", "off"):
            raise ParameterError("usage: \\timing on|off")
        self.timing = (args[0] == "on") if args else not self.timing
        self.out.print(f"timing is {'on' if self.timing else 'off'}")

    def cmd_timezone(self, *args) -> None:
        self._want(args, (0, 1), "\\timezone [ZONE]")
        if args:
            self.set_time_zone(args[0])
        self.out.print(f"time zone is {escape(self.time_zone or 'UTC')}")

    def cmd_freshness(self, *args) -> None:
        """``\\freshness [DURATION|none|default]``: every query of the session (and
        ``\\eval``) runs under this bound; ``default`` goes back to the workspace setting."""
        self._want(args, (0, 1), "\\freshness [DURATION|none|default]")
        if args:
            if args[0].lower() == "default":
                self.freshness = None
            else:
                try:
                    seconds = parse_staleness(args[0])
                except ValueError:
                    raise ParameterError(
                        f"\\freshness takes a duration or none, not '{args[0]}'",
                        hint="e.g. \\freshness 5m; \\freshness 0 reads auto sources live; "
                        "\\freshness default takes the setting max_staleness") from None
                self.freshness = "none" if seconds is None else format_duration(seconds)
        if self.freshness is None:
            setting = self.ws.settings.get("max_staleness")
            self.out.print(f"freshness bound is the setting max_staleness ({escape(str(setting))})")
        else:
            self.out.print(f"freshness bound is {escape(self.freshness)}"
                           + (" (live)" if self.freshness == "0s" else ""))

    def cmd_x(self, *args) -> None:
        self._want(args, (0, 1), "\\x [on|off|auto]")
        if args and args[0] not in ("on", "off", "auto"):
            raise ParameterError("usage: \\x [on|off|auto]")
        self.expanded = args[0] if args else ("off" if self.expanded == "on" else "on")
        self.out.print("expanded display is " + ("used automatically" if self.expanded == "auto"
                                                 else self.expanded))

    def cmd_r(self, *args) -> None:
        self._want(args, 0, "\\r")
        self.buffer = ""
        self.out.print("query buffer reset (cleared)")

    def cmd_e(self, *args) -> bool:
        """Edit the query buffer (or, when empty, the last query); run the text if it ends
        with ``;``, else give it back to the prompt to go on typing."""
        self._want(args, 0, "\\e")
        text = self.buffer or (self.last_sql + ";" if self.last_sql else "")
        self.buffer = ""
        edited = self._edit(text)
        if edited is None:
            self.out.print("[yellow]the editor failed; nothing run[/yellow]")
            return True
        if not edited.strip() or not complete(edited):
            self._next_input = edited
            return True
        if self._history is not None:
            self._history.append_string(edited)
        self.out.print(escape(edited), highlight=False)
        return all(self.handle(piece) for piece in split_script(edited))

    def _edit(self, text: str) -> str | None:
        from meterql.repl.editor import edit_text

        return edit_text(text)

    def cmd_i(self, *args) -> bool:
        self._want(args, 1, "\\i FILE")
        path = Path(args[0]).expanduser()
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ParameterError(f"cannot read {path}: {getattr(exc, 'strerror', exc)}",
                                 hint="give the path of a SQL script") from None
        if self._depth >= 16:
            raise ParameterError(f"\\i {path}: scripts include each other more than 16 deep",
                                 hint="does a script include itself?")
        self._depth += 1
        try:
            return all(self.handle(piece) for piece in split_script(text))
        finally:
            self._depth -= 1

    def cmd_o(self, *args) -> None:
        self._want(args, (0, 1), "\\o [FILE]")
        path = Path(args[0]).expanduser() if args else None
        self._results_to(path)
        self.out.print(f"results go to {escape(str(path))}" if path else
                       "results go to the screen")

    def cmd_copy(self, *args) -> None:
        self._want(args, 1, "\\copy (SQL) TO FILE [WITH (FORMAT csv|json|parquet)]")
        copy = parse_copy(args[0])
        path = Path(copy.path).expanduser()
        fmt = copy.fmt or file_format(path)
        if fmt not in get_args(FileFormat):
            raise ParameterError(f"unknown format '{fmt}'",
                                 hint="use csv, json, jsonl, parquet or arrow")
        ran = self._run(copy.sql)
        if ran is None:
            return
        result, _ = ran
        table = result.to_arrow()
        save(table, fmt, path)  # type: ignore[arg-type]
        self.out.print(f"wrote {row_count(table.num_rows)} to {escape(str(path))} ({fmt})"
                       + (" [yellow](cut at the row cap)[/yellow]" if result.truncated else ""))

    def cmd_watch(self, *args) -> None:
        """Run the buffer (or the last query) every SECONDS until Ctrl-C, a failure, or
        ``c=COUNT`` runs (psql's ``\\watch [i=]SECONDS [c=COUNT]``)."""
        usage = "\\watch [SECONDS] [c=COUNT]"
        self._want(args, (0, 2), usage)
        every, count = 2.0, None
        for arg in args:
            key, _, value = arg.rpartition("=")
            try:
                if key in ("c", "count"):
                    count = int(value)
                elif key in ("", "i", "interval"):
                    every = float(value)
                else:
                    raise ValueError
            except ValueError:
                raise ParameterError(f"cannot read '{arg}' in \\watch",
                                     hint=f"{usage}, e.g. \\watch 5 or \\watch 0.5 c=3") from None
        if not 0 < every <= 86400 or (count is not None and count < 1):
            raise ParameterError("\\watch takes seconds between 0 and 86400 and a count of 1 "
                                 "or more", hint=f"{usage}, e.g. \\watch 5")
        if count is None and not self.interactive:
            raise ParameterError("\\watch runs until Ctrl-C, which a script cannot send",
                                 hint="give the number of runs: \\watch 5 c=3")
        sql = self.buffer.strip().rstrip(";") or self.last_sql
        self.buffer = ""
        if not sql:
            raise ParameterError("no query to watch", hint="run a query first")
        runs, due = 0, time.monotonic()
        try:
            while count is None or runs < count:
                time.sleep(max(0.0, due - time.monotonic()))
                due = time.monotonic() + every
                self.out.print(f"[dim]{time.strftime('%a %d %b %Y %H:%M:%S')} "
                               f"(every {every:g} s; Ctrl-C stops)[/dim]")
                if not self.query(sql):
                    return
                runs += 1
        except KeyboardInterrupt:
            self.out.print("watch stopped")

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
        """``\\eval NAME FROM TO [CUSTOMER] [TZ]``: a 4th argument that names a time zone
        (``Europe/Paris``, ``UTC``) is the zone, else the session's (``\\timezone``); ``-``
        as CUSTOMER is every customer."""
        self._want(args, (3, 5), "\\eval NAME FROM TO [CUSTOMER] [TZ]")
        try:
            start, end = date.fromisoformat(args[1]), date.fromisoformat(args[2])
        except ValueError:
            raise ParameterError("FROM and TO are dates like 2026-10-01") from None
        rest = list(args[3:])
        tz = (rest.pop() if len(rest) == 2 or (rest and _is_zone(rest[0]))
              else self.time_zone or "UTC")  # (the session's zone by default)
        customer = rest[0] if rest and rest[0] != "-" else None
        ev = self.ws.aggregates.evaluate(args[0], start, end, tz=tz,
                                         customers=[customer] if customer else None,
                                         max_staleness=self.freshness)
        self.last = ev.in_zone()
        with self._results():
            self.show(self.last, ev.seconds)
        self.out.print(f"[dim]{escape(ev.aggregate.name)} v{ev.aggregate.version} "
                       f"({escape(tz)}); {ev.result_hash}[/dim]")

    def cmd_save(self, *args) -> None:
        self._want(args, 1, "\\save FILE")
        if self.last is None:
            raise ParameterError("no result to save yet", hint="run a query first")
        path = Path(args[0]).expanduser()
        fmt = file_format(path)
        save(self.last, fmt, path)  # type: ignore[arg-type]
        self.out.print(f"saved {row_count(self.last.num_rows)} to {escape(str(path))} ({fmt})")

    def _version(self) -> str:
        import meterql

        return meterql.__version__


def file_format(path: Path) -> str:
    """The format a file's suffix names (``\\save``, ``\\copy``): CSV unless .parquet,
    .json, .jsonl or .arrow."""
    return {".parquet": "parquet", ".json": "json", ".jsonl": "jsonl",
            ".arrow": "arrow"}.get(path.suffix.lower(), "csv")


def _is_zone(text: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if "/" not in text and text.upper() not in ("UTC", "GMT"):
        return False
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def trailing_command(text: str) -> tuple[str, str | None]:
    """An entry of several lines whose last line is a meta-command (``SELECT 1\\n\\\\e``):
    (the lines before it, the command line); else (text, None)."""
    head, _, last = text.rstrip().rpartition("\n")
    if head.strip() and last.strip().startswith("\\"):
        return head, last.strip()
    return text, None


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
