"""Turn a bound query into a plan: one fragment for a single-source query the source can run
whole; otherwise one scan fragment per table reference (needed columns and safe filters pushed)
and a DuckDB residual over their results.

Correctness does not depend on what was pushed: the residual is the whole query, so it re-applies
every filter; a fragment only has to return a superset of the rows the query needs.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError
from sqlglot.optimizer.annotate_types import annotate_types

from meterql.catalog import Catalog, Table
from meterql.dialects import SourceDialect, dialect_for, type_family
from meterql.dialects.arrow_types import arrow_type
from meterql.engine.bind import BoundQuery
from meterql.engine.plan import Fragment, Plan, ResultTyping
from meterql.engine.pushdown import filter_blocker, whole_query_blocker

#: Type families of text columns (``type_family`` names VARCHAR as TEXT).
_TEXT = {"TEXT", "VARCHAR"}


def plan_query(bound: BoundQuery, catalog: Catalog, sql: str) -> Plan:
    sources = {table.source for _, table in bound.tables}
    if len(sources) == 1:
        source = catalog.source(next(iter(sources)))
        dialect = dialect_for(source.kind)
        blocker = _whole_query(bound, catalog, dialect)
        if blocker is None:
            frag = _whole_fragment(bound, source.name, dialect)
            if frag is not None:
                return Plan(sql, [frag], None, bound.params)
            blocker = f"{dialect.kind} cannot express the query exactly"
        note = f"not sent whole to '{source.name}': {blocker}"
        return _split(bound, catalog, sql, [note])
    return _split(bound, catalog, sql, [])


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
    params = _mark_params(tree, dialect, _column_types(bound))
    try:
        text = tree.sql(dialect=dialect.sqlglot_dialect, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError:
        return None
    typing = None if dialect.capabilities.same_engine else _result_typing(bound)
    return Fragment("f1", source, dialect.kind, text, params, typing=typing)


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


def _mark_params(
    tree: exp.Expression,
    dialect: SourceDialect,
    column_type: Callable[[exp.Column], str | None] = lambda c: None,
) -> list[str]:
    """Replace named parameters by the source's numbered markers; returns names in marker order.

    Where the source types parameters from the bound value, a marker compared with a column is
    cast to that column's type, so ``--param id=42`` (a string) compares as DuckDB would.
    """
    order: list[str] = []
    prefix = dialect.parameter_marker
    for node in list(tree.find_all(exp.Placeholder, exp.Parameter)):
        if node.name not in order:
            order.append(node.name)
        marker: exp.Expression = exp.Var(this=f"{prefix}{order.index(node.name) + 1}")
        typed = dialect.capabilities.typed_parameters
        target = _compared_type(node, column_type) if typed else None
        if target is not None:
            marker = exp.Cast(this=marker, to=exp.DataType.build(target, dialect="duckdb"))
        node.replace(marker)
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


def _column_types(bound: BoundQuery) -> Callable[[exp.Column], str | None]:
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


def _split(bound: BoundQuery, catalog: Catalog, sql: str, notes: list[str]) -> Plan:
    residual = bound.tree.copy()
    residual_tables = {t.meta["ref"]: t for t in residual.find_all(exp.Table) if "ref" in t.meta}
    qualified_tables = {
        t.meta["ref"]: t for t in bound.qualified.find_all(exp.Table) if "ref" in t.meta
    }
    fragments = []
    for ref, (_, table) in enumerate(bound.tables):
        source = catalog.source(table.source)
        dialect = dialect_for(source.kind)
        frag = _scan_fragment(f"f{ref + 1}", qualified_tables[ref], table, bound, dialect)
        fragments.append(frag)
        node = residual_tables[ref]
        alias = node.alias
        replacement = exp.Table(
            this=exp.to_identifier(frag.id),
            db=exp.to_identifier("__q__"),
            alias=exp.TableAlias(
                this=exp.to_identifier(alias), columns=[c.copy() for c in _alias_columns(node)]
            ),
        )
        replacement.meta["fragment"] = frag.id
        # A parenthesised join hangs off its first table: keep it (and PIVOT, samples, ...).
        for key, value in node.args.items():
            if key not in ("this", "db", "catalog", "alias") and value:
                replacement.set(key, value)
        node.replace(replacement)
    return Plan(sql, fragments, residual, bound.params, notes)


def _scan_fragment(
    frag_id: str, node: exp.Table, table: Table, bound: BoundQuery, dialect: SourceDialect
) -> Fragment:
    alias = node.alias_or_name
    types = {c.name.lower(): c.type for c in table.columns}
    names = {c.name.lower(): c.name for c in table.columns}
    used = {
        c.name.lower()
        for c in bound.qualified.find_all(exp.Column)
        if c.table == alias and c.name.lower() in types
    }
    columns = [c for c in table.columns if c.name.lower() in used] or [table.columns[0]]
    if _alias_columns(node):
        columns = list(table.columns)  # AS t(a, b, ...) renames columns by position
    pushed, kept, conditions = [], [], []
    for conjunct, where in _candidate_filters(node):
        blocker = filter_blocker(conjunct, alias, types, dialect)
        if blocker is None:
            conditions.append(conjunct)
            pushed.append(f"filter {conjunct.sql('duckdb')} (from {where})")
        elif any(c.table == alias for c in conjunct.find_all(exp.Column)):
            kept.append(f"filter {conjunct.sql('duckdb')}: {blocker}")
    pushed.insert(0, "columns " + ", ".join(c.name for c in columns))

    select = exp.select(*[_fetch_expr(c.name, c.type, dialect) for c in columns]).from_(
        exp.Table(this=exp.to_identifier(table.name, quoted=True),
                  db=exp.to_identifier(table.schema, quoted=True))
    )
    for condition in conditions:
        condition = condition.copy()
        for column in list(condition.find_all(exp.Column)):
            column.set("table", None)
            column.set("this", exp.to_identifier(names[column.name.lower()], quoted=True))
            if dialect.text_collation and type_family(types[column.name.lower()]) in _TEXT:
                column.replace(
                    exp.Collate(this=column.copy(), expression=exp.Var(this=dialect.text_collation))
                )
        select = select.where(condition, copy=False)
    params = _mark_params(select, dialect, lambda c: types.get(c.name.lower()))
    skip = 0
    if dialect.types_from_values:
        select, skip = _typed_first_row(select, columns, dialect)
    text = select.sql(dialect=dialect.sqlglot_dialect, unsupported_level=ErrorLevel.RAISE)
    schema = pa.schema([pa.field(c.name, arrow_type(c.type) or pa.string()) for c in columns])
    return Fragment(frag_id, table.source, dialect.kind, text, params, schema, table.full_name,
                    pushed, kept, skip)


def _alias_columns(node: exp.Table) -> list[exp.Expression]:
    alias = node.args.get("alias")
    return list(alias.columns) if alias is not None else []


def _candidate_filters(node: exp.Table) -> list[tuple[exp.Expression, str]]:
    """WHERE and ON conjuncts that may restrict this table's scan without changing the answer."""
    select = node.find_ancestor(exp.Select)
    if select is None:
        return []
    joins = select.args.get("joins") or []
    if any(j.side in ("RIGHT", "FULL") for j in joins):
        return []
    if any(j.method and j.method.upper() != "NATURAL" for j in joins):
        # ASOF picks the nearest row before WHERE runs; POSITIONAL pairs rows by position:
        # filtering a side first changes which rows pair up.
        return []
    parent = node.parent
    if node.args.get("joins") or parent is None or parent.parent is not select:
        # Inside a parenthesised join: the enclosing WHERE and ON apply to the join as a
        # whole, which may be the null-supplying side of an outer join.
        return []
    own_join = parent if isinstance(parent, exp.Join) else None
    out: list[tuple[exp.Expression, str]] = []
    if own_join is not None and own_join.args.get("on") is not None:
        out += [(c, "ON") for c in _conjuncts(own_join.args["on"])]
    if own_join is not None and own_join.side == "LEFT":
        return out  # the null-supplying side: WHERE may test for its NULLs
    where = select.args.get("where")
    if where is not None:
        out += [(c, "WHERE") for c in _conjuncts(where.this)]
    return out


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    return [condition]


def _fetch_expr(name: str, duckdb_type: str, dialect: SourceDialect) -> exp.Expression:
    column = exp.column(exp.to_identifier(name, quoted=True))
    family = type_family(duckdb_type)
    if family in dialect.fetch_as_text:
        return exp.alias_(exp.cast(column, "TEXT"), name, quoted=True)
    if family in dialect.fetch_as_integer:
        return exp.alias_(exp.cast(column, "BIGINT"), name, quoted=True)
    return column


_SAMPLE = {"BIGINT": "0", "DOUBLE": "0.0", "BLOB": "X''", "BOOLEAN": "0"}


def _typed_first_row(
    select: exp.Select, columns: list, dialect: SourceDialect
) -> tuple[exp.Expression, int]:
    """SQLite's driver infers Arrow types from the values of its first batch, so a column that
    starts with NULLs would be read as integers; a first row of the right types fixes that."""
    samples = []
    for column in columns:
        family = type_family(column.type)
        value = "''" if family in dialect.fetch_as_text else _SAMPLE.get(family, "''")
        samples.append(exp.alias_(exp.maybe_parse(value, dialect="sqlite"), column.name,
                                  quoted=True))
    first = exp.select(*samples)
    return exp.union(first, select, distinct=False), 1
