"""DuckDB's errors about a query, as meterql's own: one line that names the problem, a hint,
and the position in the user's SQL where the thing named is.

DuckDB runs a user's query in three places (the residual, a DuckDB-file source, the typing
stand-ins), each over SQL meterql rewrote; its own "LINE 1: ..." excerpt points into that
rewrite, so it is dropped, and the caret is put where the user wrote the name instead.
"""

from __future__ import annotations

import difflib
import re

import duckdb

from meterql.connectors.lockdown import QUERY_FAULTS
from meterql.errors import QueryError, UnknownColumnError

#: DuckDB errors that blame the query (the caller's mistake), not the database.
USER_FAULTS = (*QUERY_FAULTS, duckdb.CatalogException, duckdb.ParserException)

#: The mark (in ``MeterqlError.details``) of an error made here, which :func:`place` may place.
FROM_DUCKDB = "duckdb"

_KIND = re.compile(r"^\s*[A-Z][A-Za-z ]* Error:\s*")
_GROUP_BY = re.compile(r'column "([^"]+)" must appear in the GROUP BY clause')
_NOT_FOUND = re.compile(r'Referenced column "([^"]+)" not found in FROM clause')
_NO_COLUMN = re.compile(r'Table "([^"]+)" does not have a column named "([^"]+)"')
_CANDIDATES = re.compile(r'Candidate bindings:\s*(.*)')
_NO_MATCH = re.compile(
    r"No function matches the given name and argument types '([^(']+)\(([^)]*)\)'")
_AMBIGUOUS_CALL = re.compile(r'for the function call "([^(]+)\(([^)]*)\)"')
_NO_FUNCTION = re.compile(r"(?:Scalar|Aggregate|Table) Function with name \"?([^\s\"!]+)\"? does "
                          r"not exist")
_DID_YOU_MEAN = re.compile(r'Did you mean "([^"]+)"')
_QUOTED = re.compile(r"'([^']+)'")


def query_fault(exc: duckdb.Error, sql: str | None = None, *,
                source: str | None = None) -> QueryError:
    """A DuckDB error that blames the query (one of :data:`USER_FAULTS`) as a QueryError;
    ``sql``: the query as the user wrote it, to place the caret (see :func:`place`).

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> sql = "SELECT x, count(*) FROM (SELECT 1 AS x)"
    >>> try:
    ...     con.execute(sql)
    ... except duckdb.Error as exc:
    ...     err = query_fault(exc, sql)
    >>> str(err)
    "column 'x' must be in GROUP BY or inside an aggregate function at line 1, column 8 (add x to GROUP BY, or aggregate it, e.g. any_value(x))"
    """  # noqa: E501
    text = str(exc)
    first = _KIND.sub("", text.splitlines()[0] if text else "").strip()
    error: QueryError
    if match := _GROUP_BY.search(text):
        name = match.group(1)
        error = QueryError(f"column '{name}' must be in GROUP BY or inside an aggregate function",
                           hint=f"add {name} to GROUP BY, or aggregate it, e.g. any_value({name})",
                           source=source)
    elif (match := _NOT_FOUND.search(text)) or (match := _NO_COLUMN.search(text)):
        name = match.group(match.lastindex or 1)
        listed = _CANDIDATES.search(text)
        candidates = re.findall(r'"([^"]+)"', listed.group(1)) if listed else []
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5) or candidates[:3]
        error = UnknownColumnError(
            f"no column named '{name}'", source=source,
            hint=("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close
            else "check the column's name and its table")
    elif (match := _NO_MATCH.search(text)) or (match := _AMBIGUOUS_CALL.search(text)):
        function, types = match.group(1), match.group(2).replace("_LITERAL", "")
        error = QueryError(f"function '{function}' does not take ({types})", source=source,
                           hint="cast the arguments to the types it takes, e.g. "
                                "CAST(x AS DOUBLE) or CAST(x AS VARCHAR)")
    elif match := _NO_FUNCTION.search(text):
        meant = _DID_YOU_MEAN.search(text)
        error = QueryError(f"no function named '{match.group(1)}'", source=source,
                           hint=f"did you mean '{meant.group(1)}'?" if meant
                           else "check the function's name")
    else:
        error = QueryError(first or "DuckDB refused the query", source=source,
                           hint="check the query's types, casts and functions")
    error.details[FROM_DUCKDB] = True
    if sql is not None:
        place(error, sql)
    return error


def place(error: QueryError, sql: str) -> None:
    """Give ``error`` the user's SQL and, if the first name it quotes appears there as a whole
    word, that position (the first occurrence)."""
    error.sql = sql
    match = _QUOTED.search(error.message)
    if match is None or error.line is not None:
        return
    word = match.group(1)
    found = re.search(rf"(?<![\w\"]){re.escape(word)}(?![\w\"])", sql, re.IGNORECASE)
    if found is None:
        return
    before = sql[: found.start()]
    error.line = before.count("\n") + 1
    error.column = found.start() - (before.rfind("\n") + 1) + 1
