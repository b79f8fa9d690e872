r"""The REPL's meta-commands, parsed with a small lark grammar.

>>> parse_command(r"\timing on")
Command(name='timing', args=('on',))
>>> parse_command(r"\eval api_calls 2026-10-01 2026-11-01 acme")
Command(name='eval', args=('api_calls', '2026-10-01', '2026-11-01', 'acme'))
>>> parse_command(r"\copy (SELECT 1 AS n) TO 'n.csv'")
Command(name='copy', args=("(SELECT 1 AS n) TO 'n.csv'",))
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lark import Lark, LarkError, Token, UnexpectedInput

from meterql.errors import ParameterError
from meterql.sql_text import quote_qualified

#: name -> (arguments, what it does): the \help text and the completer's list.
COMMANDS: dict[str, tuple[str, str]] = {
    "sources": ("", "list the sources with kind, mode and table count"),
    "l": ("", "list the sources (as \\sources)"),
    "tables": ("[PATTERN]", "list tables (PATTERN: a substring or a glob like pg.*)"),
    "d": ("[TABLE]", "describe a table: columns, types, mode, watermark; alone: list relations"),
    "dt": ("[PATTERN]", "list tables; PATTERN as psql's: * and ?, dots between parts"),
    "dn": ("", "list the schemas of every source"),
    "explain": ("SQL", "show how a query is split between sources and DuckDB"),
    "timing": ("on|off", "show each query's time"),
    "timezone": ("[ZONE]", "the session's time zone (TIMESTAMPTZ shown in it; now() in it); "
                 "alone: show it"),
    "freshness": ("[DURATION|none|default]",
                  "the session's freshness bound for auto sources (0 reads live, 5m, none: any "
                  "age; default: the setting max_staleness); alone: show it"),
    "format": ("table|csv|json|vertical", "how results are printed"),
    "x": ("[on|off|auto]", "expanded display: one 'column | value' line per field"),
    "param": ("NAME VALUE", "set :NAME for the next queries (\\param NAME alone clears it)"),
    "params": ("", "list the parameters set"),
    "e": ("", "edit the query buffer (or the last query) in $EDITOR, then run it"),
    "r": ("", "reset (clear) the query buffer"),
    "i": ("FILE", "run the statements and commands of FILE"),
    "o": ("[FILE]", "send query results to FILE (alone: back to the screen)"),
    "copy": ("(SQL) TO FILE [WITH (FORMAT csv|json|jsonl|parquet)]",
             "run SQL and write its result to FILE"),
    "watch": ("[SECONDS] [c=COUNT]", "re-run the last query every SECONDS (2) until Ctrl-C"),
    "sync": ("SOURCE", "sync a source now"),
    "aggregates": ("", "list aggregates"),
    "eval": ("NAME FROM TO [CUSTOMER] [TZ]",
             "evaluate an aggregate over [FROM, TO) (dates are midnights in TZ, UTC by default)"),
    "save": ("FILE", "write the last result to FILE (.csv, .parquet, .json)"),
    "help": ("", "this list (also \\?)"),
    "q": ("", "quit (also Ctrl-D)"),
}

#: Commands that take the rest of the line as it is (SQL).
_RAW = ("explain", "copy")

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
    r"""A meta-command line (``\name args...``). ``\explain`` and ``\copy`` take the rest of
    the line as it is; ``\?`` is ``\help``. Raises :class:`ParameterError` naming the
    problem and the known commands."""
    stripped = text.strip().rstrip(";").strip()
    head = stripped.split(None, 1)
    if head and head[0] == "\\?":
        return Command("help", ())
    if head and head[0][1:] in _RAW:
        return Command(head[0][1:], (head[1],) if len(head) > 1 else ())
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


@dataclass(frozen=True)
class Copy:
    """``\\copy (SQL) TO FILE [WITH (FORMAT x)]``: the query, the file, the format asked for
    (``None``: from the file's suffix, else CSV)."""

    sql: str
    path: str
    fmt: str | None


_COPY = re.compile(r"^\((?P<sql>.+)\)\s+TO\s+(?P<file>'[^']*'|\"[^\"]*\"|[^\s;]+)"
                   r"(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_COPY_FORMAT = re.compile(r"^(?:WITH\s*)?(?:\(\s*FORMAT\s+(?P<a>\w+)\s*\)|FORMAT\s+(?P<b>\w+)|"
                          r"\(?\s*(?P<c>csv|jsonl|json|parquet|arrow)\s*\)?)?$", re.IGNORECASE)
#: psql's other form: a table's name instead of the query (``\\copy pg.public.usage TO f.csv``).
_COPY_TABLE = re.compile(r'^(?P<table>(?:"[^"]+"|[A-Za-z_]\w*)(?:\.(?:"[^"]+"|[A-Za-z_]\w*)){0,2})'
                         r"\s+TO\s+(?P<file>'[^']*'|\"[^\"]*\"|[^\s;]+)(?P<rest>.*)$",
                         re.IGNORECASE | re.DOTALL)
_COPY_USAGE = ("\\copy (SELECT ...) TO FILE [WITH (FORMAT csv|json|jsonl|parquet|arrow)], or "
               "\\copy TABLE TO FILE ...")


def parse_copy(text: str) -> Copy:
    r"""The argument of ``\copy``.

    >>> parse_copy("(SELECT 1 AS n) TO '/tmp/n.parquet' WITH (FORMAT parquet);")
    Copy(sql='SELECT 1 AS n', path='/tmp/n.parquet', fmt='parquet')
    >>> parse_copy("(SELECT ')' AS p) TO out.csv")
    Copy(sql="SELECT ')' AS p", path='out.csv', fmt=None)
    >>> parse_copy('pg."My Schema".usage TO out.json')
    Copy(sql='SELECT * FROM "pg"."My Schema"."usage"', path='out.json', fmt=None)
    """
    text = text.strip().rstrip(";").strip()
    match = _COPY.match(text)
    table = None if match else _COPY_TABLE.match(text)
    if match:
        sql = match.group("sql").strip()
    elif table:
        match = table
        parts = re.findall(r'"([^"]+)"|([^.]+)', table.group("table"))
        sql = f"SELECT * FROM {quote_qualified(*(quoted or plain for quoted, plain in parts))}"
    else:
        if re.search(r"\sFROM\s", text, re.IGNORECASE) and not text.startswith("("):
            raise ParameterError("\\copy ... FROM would write into a source; meterql never "
                                 "writes to one", hint="load a file with 'meterql load FILE "
                                 "--table NAME'")
        raise ParameterError("cannot read the \\copy command",
                             hint=f"write it as {_COPY_USAGE}")
    rest = match.group("rest").strip()
    options = _COPY_FORMAT.match(rest)
    if not options:
        raise ParameterError(f"cannot read the \\copy options '{rest}'",
                             hint=f"write it as {_COPY_USAGE}")
    fmt = options.group("a") or options.group("b") or options.group("c")
    return Copy(sql, _unquote(match.group("file")), fmt.lower() if fmt else None)


def relation_pattern(pattern: str) -> Callable[[tuple[str, ...]], bool]:
    r"""psql's pattern for ``\dt``: ``*`` any text, ``?`` one character, ``.`` between the
    parts (``table``, ``schema.table``, ``source.schema.table``), case-insensitive except
    within double quotes. The result tells whether a (source, schema, table) matches.

    >>> match = relation_pattern("pg.*.usage*")
    >>> match(("pg", "public", "usage_events")), match(("pg", "public", "events"))
    (True, False)
    >>> relation_pattern("us?ge")(("lite", "main", "USAGE"))
    True
    """
    parts: list[str] = [""]
    quoted = False
    for char in pattern:
        if char == '"':
            quoted = not quoted
            parts[-1] += "\0"  # a mark: the case-sensitive stretches start and end here
        elif char == "." and not quoted:
            parts.append("")
        else:
            parts[-1] += char
    if len(parts) > 3:
        raise ParameterError(f"the pattern '{pattern}' has more than three parts",
                             hint="tables are named source.schema.table")
    regexes = [re.compile(_part_regex(p), re.DOTALL) for p in parts]

    def matches(name: tuple[str, ...]) -> bool:
        tail = name[-len(regexes):]
        return all(r.fullmatch(text) for r, text in zip(regexes, tail, strict=True))

    return matches


def _part_regex(part: str) -> str:
    out = []
    for number, stretch in enumerate(part.split("\0")):
        if number % 2:  # within quotes: as written
            out.append(re.escape(stretch))
            continue
        text = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in stretch)
        out.append(f"(?i:{text})" if text else "")
    return "".join(out)
