"""Named parameters as a source's numbered markers (``$1``, ``?1``), typed where needed."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from meterql.dialects import SourceDialect
from meterql.engine.bind import BoundQuery


def mark_params(
    tree: exp.Expression,
    dialect: SourceDialect,
    column_type: Callable[[exp.Column], str | None] = lambda c: None,
    types: dict[str, str] | None = None,
) -> list[str]:
    """Replace named parameters by the source's numbered markers; returns names in marker order.

    ``types`` receives, per parameter, the DuckDB type of the column it is compared with
    (the first such column), so text values can be converted before they are bound.
    """
    order: list[str] = []
    prefix = dialect.parameter_marker
    for node in list(tree.find_all(exp.Placeholder, exp.Parameter)):
        if node.name not in order:
            order.append(node.name)
        if types is not None and node.name not in types:
            target = _compared_type(node, column_type)
            if target is not None:
                types[node.name] = target
        node.replace(exp.Var(this=f"{prefix}{order.index(node.name) + 1}"))
    return order


def _compared_type(
    node: exp.Expression, column_type: Callable[[exp.Column], str | None]
) -> str | None:
    """The type of the column a parameter is compared with (``col = :p``, ``col IN (:p)``)."""
    parent = node.parent
    if isinstance(parent, exp.Tuple):
        parent = parent.parent
    if isinstance(parent, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        other = parent.expression if parent.this is node else parent.this
    elif isinstance(parent, (exp.In, exp.Between)):
        other = parent.this
    else:
        return None
    return column_type(other) if isinstance(other, exp.Column) else None


def column_types(bound: BoundQuery) -> Callable[[exp.Column], str | None]:
    """Column -> catalog type over the query's tables (by alias, or by a unique name)."""
    by_alias = {node.alias.lower(): table for node, table in bound.tables if node.alias}
    by_name: dict[str, set[str]] = {}
    for _, table in bound.tables:
        for column in table.columns:
            by_name.setdefault(column.name.lower(), set()).add(column.type)

    def lookup(column: exp.Column) -> str | None:
        name = column.name.lower()
        if column.table:
            table = by_alias.get(column.table.lower())
            found = table.column(name) if table is not None else None
            return found.type if found is not None else None
        types = by_name.get(name, set())
        return next(iter(types)) if len(types) == 1 else None

    return lookup
