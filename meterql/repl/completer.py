"""Completion from the catalog: keywords, functions, sources, schemas, tables, the columns of
the tables in the statement being typed (by their aliases), and meta-commands."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.document import Document

from meterql.errors import MeterqlError
from meterql.repl.commands import COMMANDS

KEYWORDS = (
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "HAVING", "LIMIT", "OFFSET", "JOIN",
    "LEFT JOIN", "INNER JOIN", "FULL JOIN", "CROSS JOIN", "ON", "USING", "AS", "AND", "OR",
    "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "BETWEEN", "CASE", "WHEN", "THEN", "ELSE",
    "END", "DISTINCT", "UNION", "UNION ALL", "INTERSECT", "EXCEPT", "WITH", "EXPLAIN",
    "EXPLAIN ANALYZE", "CAST", "INTERVAL", "DATE", "TIMESTAMP", "TRUE", "FALSE", "ASC",
    "DESC", "OVER", "PARTITION BY", "QUALIFY", "FILTER",
)
_TABLE_REF = re.compile(
    r"\b(?:FROM|JOIN)\s+((?:\"[^\"]+\"|[\w$]+)(?:\.(?:\"[^\"]+\"|[\w$]+)){0,2})"
    r"(?:\s+(?:AS\s+)?(?!(?:ON|USING|WHERE|JOIN|LEFT|RIGHT|INNER|FULL|CROSS|GROUP|ORDER|"
    r"LIMIT|UNION|NATURAL)\b)([\w$]+))?",
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w$.\"]*$")


class SqlCompleter(Completer):
    def __init__(self, workspace, functions: Iterable[str] = ()) -> None:
        self._ws = workspace
        self._functions = sorted({f.lower() for f in functions})

    def get_completions(self, document: Document, complete_event):
        before = document.text_before_cursor
        line = document.current_line_before_cursor.lstrip()
        if line.startswith("\\"):
            yield from self._meta(line)
            return
        found = _WORD.search(before)  # (it matches everywhere, if only the empty word)
        word = found.group(0) if found else ""
        if "." in word:
            head, _, partial = word.rpartition(".")
            yield from self._dotted(head.strip('"'), partial, document.text)
            return
        candidates = list(KEYWORDS) + self._functions + self._table_names()
        candidates += [c for t in self._tables_in(document.text).values() for c in t]
        yield from _matching(word, candidates)

    # -- pieces ------------------------------------------------------------------------------
    def _meta(self, line: str):
        parts = line.split()
        if len(parts) == 1 and not line.endswith(" "):
            yield from _matching(parts[0], ["\\" + name for name in COMMANDS])
            return
        command = parts[0][1:]
        partial = "" if line.endswith(" ") else parts[-1]
        if command in ("d", "dt", "tables"):
            yield from _matching(partial, self._table_names())
        elif command in ("i", "o"):
            yield from self._paths(partial)
        elif command == "sync":
            yield from _matching(partial, [s.name for s in self._ws.sources()])
        elif command == "eval":
            yield from _matching(partial, [a.name for a in self._ws.aggregates.list()])
        elif command == "format":
            yield from _matching(partial, ["table", "csv", "json", "vertical"])
        elif command == "timing":
            yield from _matching(partial, ["on", "off"])
        elif command == "x":
            yield from _matching(partial, ["on", "off", "auto"])

    def _paths(self, partial: str):
        """Files and folders for ``\\i`` and ``\\o``."""
        from prompt_toolkit.completion import CompleteEvent, PathCompleter

        document = Document(partial, len(partial))
        yield from PathCompleter(expanduser=True).get_completions(document, CompleteEvent())

    def _dotted(self, head: str, partial: str, text: str):
        aliases = self._tables_in(text)
        if head.lower() in aliases:  # alias.column
            yield from _matching(partial, aliases[head.lower()])
            return
        parts = head.split(".")
        tables = self._ws.tables()
        if len(parts) == 1:
            names = {t.schema for t in tables if t.source == parts[0]}
            names |= {t.name for t in tables if t.schema == parts[0]}
        else:
            names = {t.name for t in tables if (t.source, t.schema) == tuple(parts[:2])}
        yield from _matching(partial, sorted(names))

    def _table_names(self) -> list[str]:
        tables = self._ws.tables()
        return [t.full_name for t in tables] + sorted({t.name for t in tables})

    def _tables_in(self, text: str) -> dict[str, list[str]]:
        """alias (or bare table name) -> column names, for the tables the statement reads."""
        out: dict[str, list[str]] = {}
        for match in _TABLE_REF.finditer(text):
            name, alias = match.group(1), match.group(2)
            try:
                table = self._ws.tables.get(name.replace('"', ""))
            except MeterqlError:
                continue
            columns = [c.name for c in table.columns]
            out[(alias or table.name).lower()] = columns
        return out


def _matching(partial: str, candidates: Iterable[str]):
    low = partial.lower()
    seen = set()
    for candidate in candidates:
        if candidate.lower().startswith(low) and candidate not in seen and candidate != partial:
            seen.add(candidate)
            yield Completion(candidate, start_position=-len(partial))
