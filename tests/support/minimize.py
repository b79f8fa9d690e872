"""Shrink a failing query to a small repro while the failure persists (delta debugging on the
sqlglot tree).

Each step tries a smaller query, biggest cuts first: drop a CTE, keep one arm of a set
operation, drop a join, drop WHERE / HAVING / GROUP BY / ORDER BY with its LIMIT / DISTINCT, drop
a select item, keep one side of AND / OR, drop an IN-list value, replace an expression by one of
its operands (CASE by a branch, COALESCE by an argument, a cast by its operand, a scalar
subquery by NULL). The first candidate that still fails is kept and the search restarts from
it; the search ends when no candidate fails or the budget is spent. ``still_fails`` decides what
"fails" means (the same wrong answer, the same error), so a candidate that DuckDB itself rejects
is simply not kept.

Example:
    >>> fails = lambda sql: "b > 1" in sql
    >>> minimize("SELECT a, b FROM t WHERE b > 1 AND a < 3 ORDER BY 1, 2 LIMIT 4", fails)
    'SELECT b FROM t WHERE b > 1'
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import sqlglot
from sqlglot import exp

DIALECT = "duckdb"
#: Nodes that may stand in for themselves by one of their operands.
_UNWRAP = (exp.Binary, exp.Case, exp.If, exp.Coalesce, exp.Cast, exp.TryCast, exp.Paren,
           exp.Window, exp.Func, exp.Neg, exp.Not)
_PREDICATES = (exp.Predicate, exp.Exists, exp.Not, exp.Connector)


def render(tree: exp.Expression) -> str:
    """DuckDB SQL, with parameters spelled ``:name`` as the generator writes them."""
    return re.sub(r"\$(p\d+)\b", r":\1", tree.sql(dialect=DIALECT))


def minimize(sql: str, still_fails: Callable[[str], bool], budget_s: float = 60.0,
             max_tries: int = 600) -> str:
    """The smallest query found that ``still_fails``; ``sql`` itself when it cannot be parsed
    or its rendering no longer fails."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.SqlglotError:
        return sql
    first = render(tree)
    if first != sql and not still_fails(first):
        return sql
    deadline = time.monotonic() + budget_s
    seen = {first}
    tries = 0
    improved = True
    while improved and time.monotonic() < deadline and tries < max_tries:
        improved = False
        for candidate in _candidates(tree):
            text = render(candidate)
            if text in seen or not _deterministic(candidate):
                continue
            seen.add(text)
            tries += 1
            if still_fails(text):
                tree, improved = candidate, True
                break
            if time.monotonic() >= deadline or tries >= max_tries:
                break
    return render(tree)


def _deterministic(tree: exp.Expression) -> bool:
    """A LIMIT needs the ORDER BY (over every output column) it had."""
    return not any(node.args.get("limit") is not None and node.args.get("order") is None
                   for node in tree.find_all(exp.Query))


def _candidates(tree: exp.Expression) -> Iterator[exp.Expression]:
    """Smaller variants of ``tree``, biggest cuts first."""
    for step in (_drop_ctes, _set_arms, _drop_joins, _drop_clauses, _drop_projections,
                 _connector_sides, _drop_in_values, _unwrap, _null_subqueries):
        for i, node in enumerate(_nodes(tree)):
            yield from step(tree, i, node)


def _nodes(tree: exp.Expression) -> list[exp.Expression]:
    return list(tree.walk(bfs=True))


def _edit(tree: exp.Expression, i: int, change: Callable[[exp.Expression], None]
          ) -> exp.Expression | None:
    """A copy of ``tree`` with ``change`` applied to its ``i``-th node, or None if it fails."""
    copy = tree.copy()
    node = _nodes(copy)[i]
    try:
        change(node)
    except (ValueError, AttributeError, IndexError):
        return None
    return copy


def _yield(*trees: exp.Expression | None) -> Iterator[exp.Expression]:
    yield from (t for t in trees if t is not None)


def _drop_ctes(tree, i, node):
    if isinstance(node, exp.CTE):
        yield from _yield(_edit(tree, i, _pop_cte))


def _pop_cte(node: exp.Expression) -> None:
    parent = node.parent
    node.pop()
    if isinstance(parent, exp.With) and not parent.expressions:
        parent.pop()


def _set_arms(tree, i, node):
    if isinstance(node, exp.SetOperation):
        for side in ("this", "expression"):
            yield from _yield(_edit(tree, i, lambda n, s=side: _keep_arm(n, s)))


def _keep_arm(node: exp.Expression, side: str) -> None:
    arm = node.args[side].copy()
    if isinstance(arm, exp.Subquery):
        arm = arm.this
    for clause in ("order", "limit", "offset", "with"):
        if node.args.get(clause) is not None and arm.args.get(clause) is None:
            arm.set(clause, node.args[clause].copy())
    node.replace(arm)


def _drop_joins(tree, i, node):
    if isinstance(node, exp.Join):
        yield from _yield(_edit(tree, i, lambda n: n.pop()))


def _drop_clauses(tree, i, node):
    if not isinstance(node, exp.Query):
        return
    if node.args.get("order") is not None:
        yield from _yield(_edit(tree, i, _drop_order))
    for clause in ("limit", "offset", "where", "having", "group", "distinct"):
        if node.args.get(clause) is not None:
            yield from _yield(_edit(tree, i, lambda n, c=clause: n.set(c, None)))


def _drop_order(node: exp.Expression) -> None:
    for clause in ("order", "limit", "offset"):
        node.set(clause, None)


def _drop_projections(tree, i, node):
    if isinstance(node, exp.Select) and len(node.expressions) > 1:
        for j in range(len(node.expressions)):
            yield from _yield(_edit(tree, i, lambda n, j=j: n.expressions[j].pop()))


def _connector_sides(tree, i, node):
    if isinstance(node, exp.Connector):
        for side in ("this", "expression"):
            yield from _yield(_edit(tree, i, lambda n, s=side: n.replace(n.args[s].copy())))
    elif isinstance(node, _PREDICATES) and isinstance(node.parent, exp.Connector | exp.Where):
        yield from _yield(_edit(tree, i, lambda n: n.replace(exp.true())))


def _drop_in_values(tree, i, node):
    if isinstance(node, exp.In) and len(node.expressions) > 1:
        for j in range(len(node.expressions)):
            yield from _yield(_edit(tree, i, lambda n, j=j: n.expressions[j].pop()))


def _unwrap(tree, i, node):
    # A comparison is not replaced by an operand: that changes its type (ON t.x).
    if not isinstance(node, _UNWRAP) or isinstance(node, exp.Connector | exp.Predicate):
        return
    operands = [v for k, v in node.args.items()
                if isinstance(v, exp.Expression) and k not in ("to", "unit", "partition_by",
                                                                 "order", "spec")]
    operands += [v for v in node.expressions if isinstance(v, exp.Expression)]
    if isinstance(node, exp.Case):
        operands = [w.args["true"] for w in node.args.get("ifs", [])] + (
            [node.args["default"]] if node.args.get("default") else [])
    for j, operand in enumerate(operands):
        if not isinstance(operand, exp.Star):  # count(*) is not SELECT *
            yield from _yield(_edit(tree, i, lambda n, j=j: n.replace(_operand(n, j))))


def _operand(node: exp.Expression, j: int) -> exp.Expression:
    if isinstance(node, exp.Case):
        values = [w.args["true"] for w in node.args.get("ifs", [])] + (
            [node.args["default"]] if node.args.get("default") else [])
        return values[j].copy()
    operands = [v for k, v in node.args.items()
                if isinstance(v, exp.Expression) and k not in ("to", "unit", "partition_by",
                                                                 "order", "spec")]
    operands += [v for v in node.expressions if isinstance(v, exp.Expression)]
    return operands[j].copy()


def _null_subqueries(tree, i, node):
    if isinstance(node, exp.Subquery) and not isinstance(node.parent, exp.From | exp.Join):
        if not isinstance(node.parent, exp.In | exp.Exists):
            yield from _yield(_edit(tree, i, lambda n: n.replace(exp.null())))
