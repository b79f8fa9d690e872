"""Bind a parsed query to the catalog: resolve table names, check columns and parameters.

After binding every table reference names one catalog table in full (``source.schema.table``),
keeps its alias, and carries that table in ``node.meta[TABLE]``; unnamed output columns are
named by their SQL text so every execution path gives the same column names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.eliminate_ctes import eliminate_ctes
from sqlglot.optimizer.qualify import qualify

from meterql.catalog import Catalog, Table
from meterql.errors import ParameterError, QueryError, UnknownColumnError
from meterql.sql_text import quote_ident_if_needed

# The notes the binder leaves on sqlglot nodes (``node.meta``), read by the planner:
#: a table reference's catalog :class:`Table`.
TABLE = "table"
#: a table reference's number (its index in ``BoundQuery.tables``), the same in the tree and
#: in its qualified copy.
REF = "ref"
#: a subquery's or CTE's number, which finds the same one in the qualified copy.
SUBQUERY = "sq"

#: Python types a parameter value may have (bound as the matching SQL type).
_PARAM_TYPES = (str, int, float, Decimal, bool, date, datetime, time, bytes)

#: Table functions that read nothing outside the query.
_SAFE_TABLE_FUNCTIONS = (exp.GenerateSeries, exp.Unnest)


@dataclass
class BoundQuery:
    """A query whose names all resolve.

    Attributes:
        tree: the query with full table names (catalog = source, db = schema).
        tables: every table reference in the tree, with its catalog table.
        qualified: a copy of ``tree`` with every column qualified and stars expanded.
        params: the named parameters the query uses, in order of first use.
        dialect: the dialect the query was written in.
    """

    tree: exp.Expression
    tables: list[tuple[exp.Table, Table]]
    qualified: exp.Expression
    params: list[str]
    dialect: str


def bind(tree: exp.Expression, catalog: Catalog, dialect: str, sql: str) -> BoundQuery:
    tree = tree.copy()
    params = _parameters(tree, sql)  # (a CTE nobody reads may still name some)
    # A CTE nobody reads is never run: not read from its source, and its errors never raised.
    try:
        tree = eliminate_ctes(tree.copy())
    except OptimizeError:
        pass  # (scoping it cannot follow: the tree as written; qualify says what is wrong)
    refs = _resolve_tables(tree, catalog, sql)
    _name_outputs(tree, dialect)
    for i, (node, _) in enumerate(refs):
        node.meta[REF] = i
    for i, subquery in enumerate(tree.find_all(exp.Subquery, exp.CTE)):
        subquery.meta[SUBQUERY] = i
    qualified = _qualify(tree, catalog, refs, sql)
    return BoundQuery(tree, refs, qualified, params, dialect)


def _names_a_cte(node: exp.Table) -> bool:
    """Whether a one-part table name refers to a CTE in scope, by SQL's scoping rules: a CTE
    is seen by the body of the query whose WITH defines it and by the CTEs after it in that
    WITH (and by itself if the WITH is RECURSIVE), nowhere else.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT * FROM t WHERE EXISTS (WITH t AS (SELECT 1) "
    ...                          "SELECT * FROM t)")
    >>> [_names_a_cte(t) for t in tree.find_all(exp.Table)]
    [False, True]
    """
    if len(node.parts) != 1:
        return False
    name = node.name.lower()
    child: exp.Expr | None = node
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.With):  # child is one of its CTEs
            ctes = parent.expressions
            at = next(i for i, cte in enumerate(ctes) if cte is child)
            if _defines(ctes[: at + bool(parent.args.get("recursive"))], name):
                return True
            owner = parent.parent  # its body's scope is not this CTE's: go above it
            child, parent = owner, owner.parent if owner is not None else None
            continue
        if isinstance(parent, exp.Query):
            with_ = parent.args.get("with_")
            if isinstance(with_, exp.With) and _defines(with_.expressions, name):
                return True
        child, parent = parent, parent.parent
    return False


def _defines(ctes: list[exp.Expression], name: str) -> bool:
    return any(cte.alias_or_name.lower() == name for cte in ctes)


def _resolve_tables(
    tree: exp.Expression, catalog: Catalog, sql: str
) -> list[tuple[exp.Table, Table]]:
    refs: list[tuple[exp.Table, Table]] = []
    for node in list(tree.find_all(exp.Table)):
        if not isinstance(node.this, exp.Identifier):
            if isinstance(node.this, _SAFE_TABLE_FUNCTIONS):
                continue
            raise QueryError(
                f"table function {node.this.sql('duckdb')[:60]} is not allowed",
                sql=sql,
                hint="query registered tables; list them with 'meterql tables'",
            )
        parts = [p.name for p in node.parts]
        if _names_a_cte(node):
            continue
        table = catalog.table(parts)
        alias = node.alias
        node.set("catalog", exp.to_identifier(table.source))
        node.set("db", _exact(table.schema))
        node.set("this", _exact(table.name))
        if not alias:
            # Keep references like events.amount working once the table is renamed.
            node.set("alias", exp.TableAlias(this=exp.to_identifier(parts[-1])))
        node.meta[TABLE] = table
        refs.append((node, table))
    return refs


def _exact(name: str) -> exp.Identifier:
    """The source's own spelling; quoted when case matters, so no dialect folds it."""
    return exp.to_identifier(name, quoted=name != name.lower() or None)


def _parameters(tree: exp.Expression, sql: str) -> list[str]:
    names: list[str] = []
    for node in tree.find_all(exp.Placeholder, exp.Parameter):
        name = node.name
        if not name or name == "?" or name.isdigit():
            raise ParameterError(
                "positional parameters are not supported",
                sql=sql,
                hint="use named parameters such as :customer_id and pass them by name",
            )
        if name not in names:
            names.append(name)
    return names


def check_params(needed: list[str], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parameter values a query needs, raising when one is missing or unknown."""
    given = dict(given or {})
    missing = [n for n in needed if n not in given]
    if missing:
        raise ParameterError(
            f"missing value for parameter{'s' if len(missing) > 1 else ''} "
            + ", ".join(f":{n}" for n in missing),
            hint="pass it with --param name=value (CLI) or params={...} (Python)",
        )
    unknown = [n for n in given if n not in needed]
    if unknown:
        raise ParameterError(
            "unknown parameter " + ", ".join(f":{n}" for n in unknown),
            hint="the query uses: " + (", ".join(f":{n}" for n in needed) or "no parameters"),
        )
    for name in needed:
        value = given[name]
        if value is not None and not isinstance(value, _PARAM_TYPES):
            raise ParameterError(
                f"parameter :{name} has a value of type {type(value).__name__}, "
                "which cannot be bound",
                hint="pass a string, number, Decimal, bool, date, datetime, time or bytes",
            )
        if isinstance(value, int) and not -(2**127) <= value < 2**127:
            raise ParameterError(
                f"parameter :{name} is an integer of {len(str(abs(value)))} digits, past the "
                "largest integer type (HUGEINT, 128 bits)",
                hint="pass it as a Decimal or a string if the column is a NUMERIC")
    return {n: given[n] for n in needed}


#: Values written as a bare keyword (``CURRENT_DATE``): DuckDB reads ``CURRENT_DATE AS
#: "CURRENT_DATE"`` as a column named by its own alias and refuses it; unaliased, DuckDB names
#: the column by the keyword itself.
_KEYWORD_VALUES = (exp.CurrentDate, exp.CurrentTime, exp.CurrentTimestamp, exp.Localtime,
                   exp.Localtimestamp)


def _name_outputs(tree: exp.Expression, dialect: str) -> None:
    """Name unnamed output expressions by their SQL text, the same in every execution path."""
    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return
    for i, projection in enumerate(select.expressions):
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star, *_KEYWORD_VALUES)):
            continue
        text = projection.sql(dialect=dialect)
        select.expressions[i] = exp.alias_(projection, text, quoted=True)
    select.set("expressions", select.expressions)


_UNRESOLVED = re.compile(
    r"Column '\"?([^'\"]+)\"?' could not be resolved|Unknown column: \"?([^\"\s]+)\"?"
)


def _qualify(
    tree: exp.Expression, catalog: Catalog, refs: list[tuple[exp.Table, Table]], sql: str
) -> exp.Expression:
    try:
        return qualify(
            tree.copy(),
            schema=catalog.schema,
            dialect="duckdb",
            quote_identifiers=False,
            identify=False,
        )
    except OptimizeError as exc:
        text = str(exc)
        match = _UNRESOLVED.search(text)
        if not match:
            raise QueryError(f"cannot resolve the query: {text}", sql=sql) from None
        column = match.group(1) or match.group(2)
        line = col = None
        position = re.search(r"Line: (\d+), Col: (\d+)", text)
        if position:
            line, col = int(position.group(1)), int(position.group(2))
            # sqlglot gives the column where the name ends; the caret goes where it starts
            text_line = sql.splitlines()[line - 1] if 0 < line <= len(sql.splitlines()) else ""
            start = col - len(column)
            if text_line[start:col].strip('"').lower() == column.lower():
                col = start + 1
        else:
            line, col = _position_of(sql, column)
        holders = sorted({node.alias_or_name for node, t in refs if t.column(column)})
        if holders:
            # the name exists: it is ambiguous here, or its table is not in this scope
            raise UnknownColumnError(
                f"column '{column}' cannot be resolved here: it is ambiguous, or its table is "
                "not in scope at this point of the query", sql=sql, line=line, column=col,
                hint="qualify it with its table's alias, e.g. "
                + " or ".join(f"{quote_ident_if_needed(h)}.{column}" for h in holders)
            ) from None
        known = sorted({c.name for _, t in refs for c in t.columns})
        close = difflib.get_close_matches(column.lower(), [k.lower() for k in known], n=3)
        hint = (
            "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
            if close
            else "columns in scope: " + ", ".join(known[:20])
        )
        raise UnknownColumnError(
            f"no column named '{column}'", sql=sql, line=line, column=col, hint=hint
        ) from None


def _position_of(sql: str, word: str) -> tuple[int | None, int | None]:
    """Line and column of the first whole-word occurrence of ``word`` in ``sql``."""
    match = re.search(rf"(?<![\w\"]){re.escape(word)}(?![\w\"])", sql, re.IGNORECASE)
    if match is None:
        return None, None
    before = sql[: match.start()]
    return before.count("\n") + 1, match.start() - (before.rfind("\n") + 1) + 1
