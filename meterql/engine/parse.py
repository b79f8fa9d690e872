"""Parse a query and refuse anything that is not a read: SELECT, WITH ... SELECT, VALUES,
EXPLAIN."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, Dialects
from sqlglot.errors import ParseError, TokenError
from sqlglot.parser import Parser
from sqlglot.parsers.duckdb import DuckDBParser
from sqlglot.tokens import TokenType

from meterql.errors import ParameterError, SqlParseError, StatementNotAllowedError

_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\b", re.IGNORECASE)
_READS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values)


@dataclass(frozen=True)
class ParsedQuery:
    """A query tree plus what the statement asked for.

    Attributes:
        tree: the SELECT (or set operation) to run.
        explain: the statement was ``EXPLAIN``.
        analyze: the statement was ``EXPLAIN ANALYZE``.
        sql: the SQL text of the SELECT itself.
        offset: where ``sql`` starts in the original text (for error positions).
    """

    tree: exp.Expression
    explain: bool
    analyze: bool
    sql: str


_ParseExpression = Callable[[DuckDBParser], exp.Expr | None]


def _no_prefix_alias_without_a_name(original: _ParseExpression) -> _ParseExpression:
    """sqlglot's DuckDB parser reads ``name: expr`` as a prefix alias whenever the token after
    the current one is a colon, even when the current one cannot be a name: ``SELECT :p AS c``
    and ``SELECT (:p)`` then fail to parse ("incomplete ALIAS"). Only a name takes the prefix
    alias path here; everything else parses as it would without prefix aliases."""

    def parse_expression(self: DuckDBParser) -> exp.Expr | None:
        if (self._next is not None and self._next.token_type == TokenType.COLON
                and self._curr.token_type not in self.ID_VAR_TOKENS):
            return Parser._parse_expression(self)
        return original(self)

    return parse_expression


# A patch of the parser's method (mypy refuses assigning to a method, hence setattr).
setattr(DuckDBParser, "_parse_expression",  # noqa: B010
        _no_prefix_alias_without_a_name(DuckDBParser._parse_expression))


def parse_query(sql: str, dialect: str = "duckdb") -> ParsedQuery:
    """Parse one read-only statement, raising errors that point at the problem.

    >>> parse_query("EXPLAIN SELECT 1").explain
    True
    """
    try:
        Dialect.get_or_raise(dialect)
    except ValueError:
        known = sorted(d.value for d in Dialects if d.value)
        close = difflib.get_close_matches(str(dialect).lower(), known, n=1)
        raise ParameterError(
            f"unknown SQL dialect '{dialect}'",
            hint=f"did you mean '{close[0]}'?" if close else "e.g. duckdb, postgres, sqlite",
        ) from None
    explain = _EXPLAIN.match(sql)
    body = sql[explain.end() :] if explain else sql
    try:
        statements = [s for s in sqlglot.parse(body, read=dialect) if s is not None]
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        line, col = err.get("line"), err.get("col")
        if explain and line is not None:
            # Positions count from the start of the body; move them past "EXPLAIN".
            prefix = sql[: explain.end()]
            if line == 1 and col is not None:
                col += len(prefix) - (prefix.rfind("\n") + 1)
            line += prefix.count("\n")
        raise SqlParseError(
            f"cannot parse the SQL: {_describe(err.get('description', str(exc)))}",
            sql=sql,
            line=line,
            column=col,
            hint="check the SQL near the caret",
        ) from None
    except TokenError as exc:
        raise SqlParseError(f"cannot read the SQL: {exc}", sql=sql, hint="check quotes") from None
    if not statements:
        raise SqlParseError("the SQL is empty", sql=sql, hint="write a SELECT statement")
    if len(statements) > 1:
        raise StatementNotAllowedError(
            f"one statement at a time, got {len(statements)}",
            sql=sql,
            hint="send each statement separately",
        )
    tree = _unwrap(statements[0])
    if not isinstance(tree, _READS):
        kind = _statement_word(body)
        raise StatementNotAllowedError(
            f"only SELECT, WITH, VALUES and EXPLAIN statements are accepted, not {kind}",
            sql=sql,
            hint=_LOOK_HINT if kind in _LOOKS else
            "meterql never writes to a source; run changes on the source itself",
        )
    creates = any(select.args.get("into") for select in tree.find_all(exp.Select))
    if creates or any(True for _ in _writes(tree)):
        raise StatementNotAllowedError(
            "the query contains a statement that writes",
            sql=sql,
            hint="meterql never writes to a source",
        )
    return ParsedQuery(tree, bool(explain), bool(explain and explain.group(1)), body)


#: Statements that look at the catalog rather than change anything.
_LOOKS = {"SHOW", "DESCRIBE", "DESC", "SUMMARIZE", "PRAGMA", "CALL"}
_LOOK_HINT = ("list tables with 'meterql tables' and a table's columns with 'meterql describe "
              "TABLE' (\\dt and \\d in the REPL), or query them with SELECT")


def _statement_word(sql: str) -> str:
    """The statement's first word, as the user wrote it (sqlglot may parse an unknown
    statement such as CHECKPOINT as a column).

    >>> _statement_word("  checkpoint;")
    'CHECKPOINT'
    """
    words = re.findall(r"[A-Za-z_]+", re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S))
    return words[0].upper() if words else "this statement"


def _unwrap(tree: exp.Expr) -> exp.Expr:
    """A query in parentheses, ``(SELECT ...)`` (with an ORDER BY or LIMIT after it, too), is
    the query itself.

    >>> _unwrap(sqlglot.parse_one("(SELECT a FROM t) ORDER BY a LIMIT 2")).sql()
    'SELECT * FROM (SELECT a FROM t) AS _query ORDER BY a LIMIT 2'
    >>> _unwrap(sqlglot.parse_one("((SELECT 1))")).sql()
    'SELECT 1'
    """
    while isinstance(tree, exp.Subquery) and not tree.alias:
        inner = tree.this
        modifiers = {k: v for k, v in tree.args.items() if k != "this" and v}
        if not modifiers:
            tree = inner
            continue
        outer = exp.select("*").from_(exp.Subquery(this=inner, alias=exp.TableAlias(
            this=exp.to_identifier("_query"))))
        for key, value in modifiers.items():
            outer.set(key, value)
        tree = outer
    return tree


def _writes(tree: exp.Expr) -> Iterator[exp.Expr]:
    # Data-modifying CTEs (WITH x AS (DELETE ... RETURNING ...)) parse as a SELECT.
    return tree.find_all(exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop)


def _describe(description: str) -> str:
    # sqlglot names tokens as "<Token token_type: TokenType.WHERE, text: WHERE, ...>".
    text = re.sub(r"<Token token_type: [^,]+, text: ([^,]*),[^>]*>", r"'\1'", description)
    text = re.sub(
        r"<class 'sqlglot\.expressions\.(?:\w+\.)*(\w+)'>", lambda m: m.group(1).upper(), text
    )
    return text.replace("Required keyword: 'this' missing for", "incomplete")
