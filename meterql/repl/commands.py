r"""The REPL's meta-commands, parsed with a small lark grammar.

>>> parse_command(r"\timing on")
Command(name='timing', args=('on',))
>>> parse_command(r"\eval api_calls 2026-10-01 2026-11-01 acme")
Command(name='eval', args=('api_calls', '2026-10-01', '2026-11-01', 'acme'))
"""

from __future__ import annotations

from dataclasses import dataclass

from lark import Lark, LarkError, Token, UnexpectedInput

from meterql.errors import ParameterError

#: name -> (arguments, what it does): the \help text and the completer's list.
COMMANDS: dict[str, tuple[str, str]] = {
    "sources": ("", "list the sources with kind, mode and table count"),
    "tables": ("[PATTERN]", "list tables (PATTERN: a substring or a glob like pg.*)"),
    "d": ("TABLE", "describe a table: columns, types, mode, watermark"),
    "explain": ("SQL", "show how a query is split between sources and DuckDB"),
    "timing": ("on|off", "show each query's time"),
    "format": ("table|csv|json|vertical", "how results are printed"),
    "param": ("NAME VALUE", "set :NAME for the next queries (\\param NAME alone clears it)"),
    "params": ("", "list the parameters set"),
    "sync": ("SOURCE", "sync a source now"),
    "aggregates": ("", "list aggregates"),
    "eval": ("NAME FROM TO [CUSTOMER]", "evaluate an aggregate over [FROM, TO)"),
    "save": ("FILE", "write the last result to FILE (.csv, .parquet, .json)"),
    "help": ("", "this list"),
    "q": ("", "quit (also Ctrl-D)"),
}

_GRAMMAR = r"""
start: "\\" NAME (_WS ARG)* _WS?
NAME: /[a-z]+/
ARG: /'[^']*'/ | /"[^"]*"/ | /[^\s'"]+/
_WS: /[ \t]+/
"""
_PARSER = Lark(_GRAMMAR, parser="lalr")


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]


def parse_command(text: str) -> Command:
    r"""A meta-command line (``\name args...``). ``\explain`` takes the rest of the line as
    SQL. Raises :class:`ParameterError` naming the problem and the known commands."""
    stripped = text.strip().rstrip(";").strip()
    head = stripped.split(None, 1)
    if head and head[0] == "\\explain":
        return Command("explain", (head[1],) if len(head) > 1 else ())
    try:
        tree = _PARSER.parse(stripped)
    except UnexpectedInput as exc:
        raise ParameterError(f"cannot read the command at column {exc.column}",
                             hint="meta-commands look like \\d pg.public.events; "
                             "\\help lists them") from None
    except LarkError as exc:  # pragma: no cover - other lark errors carry no position
        raise ParameterError(f"cannot read the command: {exc}") from None
    tokens = [t for t in tree.children if isinstance(t, Token)]
    name = str(tokens[0])
    if name not in COMMANDS:
        import difflib

        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        raise ParameterError(f"unknown command \\{name}",
                             hint=f"did you mean \\{close[0]}?" if close
                             else "\\help lists the commands")
    args = tuple(_unquote(str(t)) for t in tokens[1:])
    return Command(name, args)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
