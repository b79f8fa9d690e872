"""Rule: send a query that touches one source whole, when its capability profile says every
construct in it keeps DuckDB's meaning there."""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError
from sqlglot.optimizer.annotate_types import annotate_types

from meterql.catalog import Catalog, Table
from meterql.dialects import SourceDialect, dialect_for
from meterql.engine.bind import BoundQuery
from meterql.engine.markers import column_types, mark_params
from meterql.engine.plan import Fragment, Plan, ResultTyping
from meterql.engine.pushdown import whole_query_blocker
from meterql.engine.rules.context import PlanContext


def push_whole_query(ctx: PlanContext) -> PlanContext:
    """One source and a profile that accepts the whole tree -> a plan of one fragment."""
    if ctx.plan is not None:
        return ctx
    sources = {table.source for _, table in ctx.bound.tables}
    if len(sources) != 1:
        return ctx
    source = ctx.catalog.source(next(iter(sources)))
    dialect = dialect_for(source.kind)
    blocker = _whole_query(ctx.bound, ctx.catalog, dialect)
    if blocker is None:
        frag = _whole_fragment(ctx.bound, source.name, dialect)
        if frag is not None:
            return replace(ctx, plan=Plan(ctx.sql, [frag], None, ctx.bound.params))
        blocker = f"{dialect.kind} cannot express the query exactly"
    return replace(ctx, notes=[*ctx.notes, f"not sent whole to '{source.name}': {blocker}"])


def _whole_query(bound: BoundQuery, catalog: Catalog, dialect: SourceDialect) -> str | None:
    if dialect.capabilities.same_engine:
        return None
    annotated = annotate_types(bound.qualified.copy(), schema=catalog.schema, dialect="duckdb")
    return whole_query_blocker(annotated, dialect)


def _whole_fragment(bound: BoundQuery, source: str, dialect: SourceDialect) -> Fragment | None:
    tree = bound.tree.copy()
    for table in tree.find_all(exp.Table):
        if "table" in table.meta:
            table.set("catalog", None)
    _exact_column_spelling(tree, [t for _, t in bound.tables])
    param_types: dict[str, str] = {}
    params = mark_params(tree, dialect, column_types(bound), param_types)
    try:
        text = tree.sql(dialect=dialect.sqlglot_dialect, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError:
        return None
    typing = None if dialect.capabilities.same_engine else _result_typing(bound)
    return Fragment(
        "f1", source, dialect.kind, text, params, typing=typing, param_types=param_types
    )


def _exact_column_spelling(tree: exp.Expression, tables: list[Table]) -> None:
    """Quote columns whose source spelling has capitals, so the source does not fold them."""
    spelling = {
        c.name.lower(): c.name for t in tables for c in t.columns if c.name != c.name.lower()
    }
    if not spelling:
        return
    for column in tree.find_all(exp.Column):
        exact = spelling.get(column.name.lower())
        if exact is not None and not column.this.quoted:
            column.set("this", exp.to_identifier(exact, quoted=True))


def _result_typing(bound: BoundQuery) -> ResultTyping:
    """The query over empty stand-ins of its tables, for DuckDB to type its result."""
    tree = bound.tree.copy()
    tables = []
    for node in list(tree.find_all(exp.Table)):
        table = node.meta.get("table")
        if table is None:
            continue
        name = f"__types_{node.meta['ref']}"
        tables.append((name, [(c.name, c.type) for c in table.columns]))
        node.replace(
            exp.Table(
                this=exp.to_identifier(name, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(node.alias)),
            )
        )
    return ResultTyping(tree.sql(dialect="duckdb"), tables)
