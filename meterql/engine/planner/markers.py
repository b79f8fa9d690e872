"""Named parameters as a source's numbered markers (``$1``, ``?1``), typed where needed."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from meterql.catalog import Table
from meterql.dialects import SourceDialect


def mark_params(
    tree: exp.Expr,
    dialect: SourceDialect,
    column_type: Callable[[exp.Column], str | None] = lambda c: None,
    types: list[str | None] | None = None,
    compared: list[str | None] | None = None,
) -> list[str]:
    """Replace named parameters by the source's numbered markers.

    Returns the parameter name of each marker, in marker order. ``types`` receives, per marker,
    the DuckDB type of what it is compared with (``None`` if nothing), so a text value can be
    converted, and a NULL typed, before it is bound; a name compared with things of different
    types gets one marker per type, as DuckDB converts the text separately for each comparison.
    ``compared`` gives, per parameter in depth-first order, the type of the expression it is
    compared with where no column says (``max(seen) <= :p``), from the type-annotated query.
    """
    markers: list[tuple[str, str | None]] = []
    prefix = dialect.parameter_marker
    # Depth-first: markers are numbered in the order they appear in the SQL.
    nodes = list(tree.find_all(exp.Placeholder, exp.Parameter, bfs=False))
    if compared is not None and len(compared) != len(nodes):
        compared = None  # (the annotated copy does not line up: columns only)
    for i, node in enumerate(nodes):
        target = _compared_type(node, column_type)
        if target is None and compared is not None:
            target = compared[i]
        key = (node.name, target)
        if key not in markers:
            markers.append(key)
        node.replace(exp.Var(this=f"{prefix}{markers.index(key) + 1}"))
    if types is not None:
        types.extend(target for _, target in markers)
    return [name for name, _ in markers]


def _compared_type(
    node: exp.Expression, column_type: Callable[[exp.Column], str | None]
) -> str | None:
    """The type of the column a parameter is compared with (``col = :p``, ``col IN (:p)``)."""
    other = _other_side(node)
    if isinstance(other, exp.Column):
        return column_type(other)
    if isinstance(other, (exp.Predicate, exp.Connector, exp.Not)):
        return "BOOLEAN"  # ((a < b) IN (:p))
    if isinstance(other, exp.Cast):
        return other.to.sql("duckdb")
    return None


def compared_types(annotated: exp.Expression) -> list[str | None]:
    """Per parameter of a type-annotated query, in depth-first order, the DuckDB type of the
    expression it is compared with (``None`` where unknown or not compared)."""
    out: list[str | None] = []
    for node in annotated.find_all(exp.Placeholder, exp.Parameter, bfs=False):
        other = _other_side(node)
        dtype = other.type if other is not None else None
        if dtype is None or dtype.this in (exp.DType.UNKNOWN, exp.DType.NULL):
            out.append(None)
        else:
            out.append(dtype.sql("duckdb"))
    return out


def _other_side(node: exp.Expression) -> exp.Expr | None:
    parent = node.parent
    if isinstance(parent, exp.Tuple):
        parent = parent.parent
    if isinstance(parent, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        other = parent.expression if parent.this is node else parent.this
    elif isinstance(parent, (exp.In, exp.Between)):
        other = parent.this
    else:
        return None
    return other.unnest() if isinstance(other, exp.Paren) else other


def column_types(
    refs: list[tuple[exp.Table, Table]],
) -> Callable[[exp.Column], str | None]:
    """Column -> catalog type over the given table references (by alias, or a unique name)."""
    by_alias = {node.alias.lower(): table for node, table in refs if node.alias}
    by_name: dict[str, set[str]] = {}
    for _, table in refs:
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
