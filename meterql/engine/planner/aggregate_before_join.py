"""Rule: aggregate the big side of a join at its source, before the join (eager aggregation).

``SELECT e.meter, sum(e.quantity) FROM pg.public.events e JOIN local.uploads.prices pr ON
pr.meter = e.meter GROUP BY 1`` would read every event to join five prices. When one side of an
aggregate over a join is a scan of a source that runs queries (the big side) and every other
side is small or read locally, the big side's scan becomes a partial aggregate at its source:
grouped by the big side's columns the rest of the query reads (its join keys, its GROUP BY
columns), computing the partial aggregates of the big side's expressions, and the residual
finishes them over the groups. A group stands for all its rows: whatever they join with, they
join with alike, so

- ``sum(x)`` is the sum of the partial sums, ``min``/``max`` the min/max of the partial ones;
- ``count(*)`` and ``count(x)`` are the sums of the partial counts, cast back to BIGINT;
- ``sum(x * y)`` with ``x`` on the big side and ``y`` on another is ``sum(sum(x) * y)``
  (plus ``0 * (min(x) * y) + 0 * (max(x) * y)``: see below);
- ``min``/``max`` of another side's column is left as it is.

It stays exact and keeps DuckDB's types: sums are of integers (HUGEINT, as DuckDB sums them)
or decimals (``DECIMAL(38, s)``, which a sum of partial sums keeps); a product of decimals
keeps its scale (the finished sum is ``DECIMAL(38, s1 + s2)`` either way); the partial query is
typed by DuckDB and its rows conformed to those types like any query sent whole. What would
change a value is refused, with the reason as a plan note: DISTINCT and FILTER aggregates, avg
(DuckDB divides in extended precision: a sum over a count of partial sums is not proven to give
its DOUBLE bit for bit), sums of floats (their value depends on the order of the additions),
min/max of text (the source compares text by its collation) or of floats, the big side on the
null-supplying side of an outer join, and groups of a type the source compares otherwise. NULL
keys keep their meaning: the source groups NULLs together as DuckDB does, and a NULL join key
matches nothing either way.

A row's product ``x * y`` that overflows its DECIMAL raises an error in DuckDB: the residual
multiplies the group's least and greatest ``x`` by ``y`` as well, in the same types, so it raises
where DuckDB does.

It pays only when the groups are far fewer than the rows: the groups are estimated from the
source's statistics (distinct values per column), the rows from the table's size and its pushed
filters; without statistics nothing is aggregated early. The partial aggregate still takes
dynamic filters (``add_dynamic_filters``, after this rule): a small side's join keys restrict
the rows it groups at the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlglot import exp

from meterql.catalog import Table
from meterql.dialects import dialect_for, type_family
from meterql.engine.bind import REF
from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.costs import FILTER_SELECTIVITY, selectivity, table_rows
from meterql.engine.planner.fragments import single_source_fragment
from meterql.engine.planner.plan import (
    PartialAggregate,
    Plan,
    QueryFragment,
    ScanFragment,
    fragment_table,
    read_as,
)
from meterql.engine.planner.scan_sql import conjuncts

#: The partial aggregate must have at most this share of the rows it groups.
MIN_REDUCTION = 10
#: The most rows another side of the join may be estimated to have (a local table: any).
MAX_OTHER_ROWS = 1_000_000

_INTEGER = frozenset({"TINYINT", "SMALLINT", "INT", "BIGINT", "HUGEINT"})
#: Types whose sums are exact (and whose sum of partial sums has the sum's type).
_SUMMABLE = _INTEGER | {"DECIMAL"}
#: Types min/max compare alike at every source that runs queries (no collation, no float).
_ORDERED = _SUMMABLE | {"DATE", "TIMESTAMP", "TIMESTAMPTZ"}
#: Types a source groups alike (equal as DuckDB compares them).
_GROUPABLE = _ORDERED | {"VARCHAR", "TEXT", "BOOLEAN", "UUID"}


@dataclass
class _Rewrite:
    """What one query's eager aggregation is made of, gathered as the query is read."""

    alias: str
    table: Table
    keys: dict[str, str] = field(default_factory=dict)  # lower-case name -> the name read
    partials: dict[str, tuple[str, exp.Expression]] = field(default_factory=dict)

    def partial(self, agg: exp.Expression) -> exp.Column:
        """The column of the partial aggregate ``agg`` (one per distinct aggregate)."""
        key = agg.sql("duckdb")
        if key not in self.partials:
            taken = {c.name.lower() for c in self.table.columns}
            n = len(self.partials) + 1
            while f"__p{n}" in taken:
                n += 1
            self.partials[key] = (f"__p{n}", agg)
        return exp.column(self.partials[key][0], table=self.alias)


def aggregate_before_join(ctx: PlanContext, plan: Plan) -> Plan:
    """The plan with the big side of an aggregate over a join aggregated at its source, when
    that is exact and pays; a query that looked eligible but is not gets a note saying why.

    >>> from meterql.engine.planner.examples import example_context
    >>> from meterql.engine.planner.plan import PartialPlan
    >>> from meterql.engine.planner.split_into_scans import split_into_scans
    >>> ctx = example_context("SELECT c.plan, sum(e.quantity) AS q FROM pg.public.events e "
    ...                       "JOIN lite.main.customers c ON c.id = e.customer_id GROUP BY 1")
    >>> plan = aggregate_before_join(ctx, split_into_scans(ctx, PartialPlan(ctx.bound.tree)))
    >>> print(plan.fragments[0].what)
    partial aggregate of pg.public.events
    >>> print(plan.fragments[0].pushed[0])
    partial aggregate: group by customer_id; sum(quantity) (eager aggregation: ~1k groups \
from ~10M rows)
    >>> print(plan.residual_sql)  # doctest: +NORMALIZE_WHITESPACE
    SELECT c.plan AS plan, SUM(e.__p1) AS q FROM __fragment_f1 AS e
    JOIN __fragment_f2 AS c ON c.id = e.customer_id GROUP BY c.plan
    """
    if plan.residual is None or not ctx.settings.get("eager_aggregation", True):
        return plan
    query = ctx.bound.qualified
    if not (isinstance(query, exp.Select) and query.args.get("joins")
            and (query.args.get("group") or any(s.find(exp.AggFunc) for s in query.selects))):
        return plan
    scans = {f.ref: f for f in plan.fragments if isinstance(f, ScanFragment) and f.ref is not None}
    if not any(dialect_for(f.kind).capabilities.whole_query for f in scans.values()):
        return plan  # (nothing could run a partial aggregate)
    outcome = _eager(ctx, plan, query, scans)
    if isinstance(outcome, str):
        return replace(plan, notes=[*plan.notes, f"no eager aggregation: {outcome}"])
    return outcome


def _eager(ctx: PlanContext, plan: Plan, query: exp.Select,
           scans: dict[int, ScanFragment]) -> Plan | str:
    """The plan with the big side aggregated early, or why not."""
    shape = _shape_blocker(ctx, query)
    if shape is not None:
        return shape
    joins = query.args.get("joins") or []
    items: list[exp.Table] = [query.args["from_"].this, *(j.this for j in joins)]
    if any(f.ref is None for f in plan.fragments if isinstance(f, ScanFragment)):
        return "a scan is shared by several table references"
    tables = {item.meta[REF]: ctx.bound.tables[item.meta[REF]][1] for item in items}
    candidates = [r for r in tables
                  if r in scans and dialect_for(scans[r].kind).capabilities.whole_query]
    if not candidates:
        return "no side is a scan of a source that runs aggregates"
    big = max(candidates, key=lambda r: _rows(ctx, tables[r]) or 0)
    for position, item in enumerate(items):
        ref = item.meta[REF]
        if ref == big:
            if position > 0 and joins[position - 1].side:
                return (f"{tables[big].full_name} is on the null-supplying side of an outer "
                        "join: its unmatched groups would count differently")
            continue
        if ref not in scans:
            continue  # read locally (a local table, a replica)
        rows = _rows(ctx, tables[ref])
        if rows is None:
            return f"the size of {tables[ref].full_name} is unknown"
        if scans[ref].pushed_filters:
            rows *= FILTER_SELECTIVITY
        if rows > MAX_OTHER_ROWS:
            return (f"{tables[ref].full_name} is not small (~{rows:,.0f} rows): only a join "
                    "with small or local tables is aggregated early")
    scan, table = scans[big], tables[big]
    alias = next(i.alias_or_name for i in items if i.meta[REF] == big)
    by_alias = {i.alias_or_name: tables[i.meta[REF]] for i in items}

    work = query.copy()
    twins = dict(zip((id(n) for n in query.walk()), work.walk(), strict=True))
    pushed = [twins[id(f.condition)] for f in scan.pushed_filters]
    _drop_conjuncts(work, pushed)
    rewrite = _Rewrite(alias, table)
    for agg in list(work.find_all(exp.AggFunc)):
        finished = _finish(agg, rewrite, by_alias)
        if isinstance(finished, str):
            return finished
        if id(finished) != id(agg):
            agg.replace(finished)
    partial_names = {name for name, _ in rewrite.partials.values()}
    for column in work.find_all(exp.Column):
        if column.table == alias and column.name not in partial_names:
            stored = table.column(column.name)
            if stored is None:
                return f"{alias}.{column.name} is not a column of {table.full_name}"
            if type_family(stored.type) not in _GROUPABLE:
                return (f"{alias}.{column.name} ({stored.type}) would be grouped at the source, "
                        "which may compare it otherwise")
            rewrite.keys.setdefault(column.name.lower(), column.name)
    if not rewrite.keys:
        return f"{alias} has no join key to group by"
    if not rewrite.partials:
        return "no aggregate of the big side to compute at its source"
    estimate = _estimate(ctx, table, [f.condition for f in scan.pushed_filters], rewrite.keys)
    if isinstance(estimate, str):
        return estimate
    groups, rows = estimate
    if groups * MIN_REDUCTION > rows:
        return (f"~{groups:,.0f} groups of {', '.join(rewrite.keys.values())} from "
                f"~{rows:,.0f} rows of {table.full_name}: too many groups to pay")
    frag = _fragment(ctx, scan, query, rewrite, groups, rows)
    if isinstance(frag, str):
        return frag
    for item in list(work.find_all(exp.Table)):
        ref = item.meta.get(REF)
        if ref in scans:
            read_as(item, fragment_table(scans[ref].id))
    tree = ctx.bound.tree
    if isinstance(tree, exp.Select):  # (checked by _shape_blocker)
        _keep_output_names(work, tree)
    fragments = [frag if f is scan else f for f in plan.fragments]
    return replace(plan, fragments=fragments, residual=work)


def _shape_blocker(ctx: PlanContext, query: exp.Select) -> str | None:
    """Why the query's shape is not one eager aggregation handles, or ``None``."""
    if query.args.get("with_") or any(n is not query for n in query.find_all(exp.Query)):
        return "the query has subqueries"
    if query.find(exp.Window):
        return "the query has window functions"
    if query.args.get("qualify"):
        return "the query has QUALIFY"
    group = query.args.get("group")
    if group is not None and any(group.args.get(k) for k in ("grouping_sets", "cube", "rollup")):
        return "the query groups by grouping sets"
    tree = ctx.bound.tree
    if not isinstance(tree, exp.Select) or len(tree.selects) != len(query.selects) or any(
            isinstance(s, exp.Star) or isinstance(s.unalias(), exp.Star) for s in tree.selects):
        return "the query selects *"
    items = [query.args["from_"].this, *(j.this for j in query.args.get("joins") or [])]
    for item in items:
        if not isinstance(item, exp.Table) or REF not in item.meta or item.args.get("joins"):
            return "the join is not of tables only"
        alias = item.args.get("alias")
        if alias is not None and alias.columns:
            return "a table renames its columns"
    for join in query.args.get("joins") or []:
        kind, side = (join.kind or "").upper(), (join.side or "").upper()
        if join.args.get("using") or join.method or kind not in ("", "INNER", "CROSS"):
            return f"a {join.method or kind or 'USING'} JOIN"
        if side in ("RIGHT", "FULL"):
            return f"a {side} JOIN"
    return None


def _rows(ctx: PlanContext, table: Table) -> float | None:
    return table_rows(ctx.catalog.statistics(table.full_name), table)


def _drop_conjuncts(query: exp.Select, dropped: list[exp.Expr]) -> None:
    """Remove the given conjuncts from the query's WHERE and ONs (they run at the source)."""
    ids = {id(n) for n in dropped}
    clauses: list[tuple[exp.Expression, str]] = [(query, "where")]
    clauses += [(j, "on") for j in query.args.get("joins") or []]
    for owner, key in clauses:
        clause = owner.args.get(key)
        if clause is None:
            continue
        condition = clause.this if key == "where" else clause
        parts = conjuncts(condition)
        kept = [p for p in parts if id(p) not in ids]
        if len(kept) == len(parts):
            continue
        if not kept:
            owner.set(key, None if key == "where" else exp.true())
        elif key == "where":
            owner.set(key, exp.Where(this=exp.and_(*kept)))
        else:
            owner.set(key, exp.and_(*kept))


def _finish(agg: exp.AggFunc, rewrite: _Rewrite,
            by_alias: dict[str, Table]) -> exp.Expression | str:
    """What the residual computes in place of ``agg`` (``agg`` itself when it is left as it
    is), the partial aggregates it needs noted in ``rewrite``; or why it does not decompose."""
    name = agg.sql("duckdb")
    if isinstance(agg.parent, exp.Filter):
        return f"{name} has a FILTER"
    arg = agg.this
    if isinstance(arg, exp.Distinct):
        return f"{name}: a DISTINCT aggregate does not decompose"
    if isinstance(agg, exp.Avg):
        return (f"{name}: DuckDB divides in extended precision; a sum over a count of partial "
                "sums is not proven to give its DOUBLE bit for bit")
    if not isinstance(agg, (exp.Count, exp.Sum, exp.Min, exp.Max)) or agg.expressions:
        return f"{name} does not decompose"
    if isinstance(agg, exp.Count) and (arg is None or isinstance(arg, exp.Star)):
        return _count(rewrite.partial(exp.Count(this=exp.Star())))
    columns = list(arg.find_all(exp.Column)) if arg is not None else []
    mine = [c for c in columns if c.table == rewrite.alias]
    if not mine:
        if isinstance(agg, (exp.Min, exp.Max)):
            return agg  # another side's min/max: the same over repeated rows
        return (f"{name} over another side's columns would need the partial counts")
    if len(mine) != len(columns):
        return _product(agg, rewrite, by_alias)
    if not isinstance(arg, exp.Column):
        return f"{name}: only aggregates of a column are computed at the source"
    family = _family(rewrite.table, arg)
    if isinstance(agg, exp.Count):
        return _count(rewrite.partial(exp.Count(this=arg.copy())))
    if isinstance(agg, exp.Sum):
        if family not in _SUMMABLE:
            return f"{name}: a sum of {family} depends on the order of the additions"
        return exp.Sum(this=rewrite.partial(exp.Sum(this=arg.copy())))
    if family not in _ORDERED:
        reason = ("the source compares text by its collation" if family in ("VARCHAR", "TEXT")
                  else f"{family} values may compare otherwise at the source")
        return f"{name}: {reason}"
    return agg.__class__(this=rewrite.partial(agg.__class__(this=arg.copy())))


def _count(partial: exp.Expression) -> exp.Expression:
    """A count finished as the sum of its partial counts (0 over no rows), as a BIGINT."""
    total = exp.Coalesce(this=exp.Sum(this=partial), expressions=[exp.Literal.number(0)])
    return exp.cast(total, exp.DataType.build("BIGINT"))


def _product(agg: exp.AggFunc, rewrite: _Rewrite,
             by_alias: dict[str, Table]) -> exp.Expression | str:
    """``sum(x * y)``, ``x`` a column of the big side and ``y`` another side's column, as
    ``sum(sum(x) * y)``: exact for integers and decimals, and of the same type."""
    name = agg.sql("duckdb")
    arg = agg.this.unnest() if agg.this is not None else None
    if not isinstance(agg, exp.Sum) or not isinstance(arg, exp.Mul):
        return f"{name} mixes the columns of both sides of the join"
    left, right = arg.this.unnest(), arg.expression.unnest()
    if isinstance(right, exp.Column) and right.table == rewrite.alias:
        left, right = right, left
    if not (isinstance(left, exp.Column) and left.table == rewrite.alias
            and isinstance(right, exp.Column) and right.table in by_alias
            and right.table != rewrite.alias):
        return f"{name} mixes the columns of both sides of the join"
    mine, other = _type(rewrite.table, left), _type(by_alias[right.table], right)
    if mine is None or other is None:
        return f"{name}: unknown column types"
    families = (type_family(mine), type_family(other))
    if not set(families) <= _SUMMABLE:
        return f"{name}: a sum of a product of {' and '.join(families)} is not exact"
    if _scale(mine) + _scale(other) > 38:
        return f"{name}: the product's scale passes 38"
    total: exp.Expression = exp.Mul(
        this=rewrite.partial(exp.Sum(this=left.copy())), expression=right.copy())
    # A row's x * y that overflows its type raises in DuckDB; it overflows for some row of a
    # group exactly when it does for the group's least or greatest x, so the residual computes
    # those two products too, in the same types, for the error alone (0 * keeps the value).
    for extreme in (exp.Min, exp.Max):
        guard = exp.Mul(this=rewrite.partial(extreme(this=left.copy())), expression=right.copy())
        total = exp.Add(this=total, expression=exp.Mul(
            this=exp.Literal.number(0), expression=exp.Paren(this=guard)))
    return exp.Sum(this=total)


def _type(table: Table, column: exp.Column) -> str | None:
    stored = table.column(column.name)
    return stored.type if stored is not None else None


def _family(table: Table, column: exp.Column) -> str:
    typ = _type(table, column)
    return type_family(typ) if typ is not None else "UNKNOWN"


def _scale(typ: str) -> int:
    dtype = exp.DataType.build(typ, dialect="duckdb")
    if dtype.this != exp.DType.DECIMAL:
        return 0
    params = dtype.expressions
    return int(params[1].name) if len(params) > 1 else 3  # (DuckDB's DECIMAL is (18, 3))


def _estimate(ctx: PlanContext, table: Table, filters: list[exp.Expression],
              keys: dict[str, str]) -> tuple[float, float] | str:
    """(groups, rows) of the partial aggregate, from the source's statistics; or why they
    cannot be estimated."""
    stats = ctx.catalog.statistics(table.full_name)
    rows = _rows(ctx, table)
    if rows is None:
        return f"the size of {table.full_name} is unknown"
    groups = 1.0
    for key, name in keys.items():
        column = stats.column(key) if stats is not None else None
        if column is None or column.distinct is None:
            return (f"no statistics on the distinct values of {table.full_name}.{name} "
                    f"(read them with 'meterql source refresh {table.source}')")
        groups *= column.distinct + (1 if column.null_frac else 0)
    rows *= selectivity(filters, stats, table) if filters else 1.0
    return min(groups, rows), rows


def _fragment(ctx: PlanContext, scan: ScanFragment, query: exp.Select, rewrite: _Rewrite,
              groups: float, rows: float) -> QueryFragment | str:
    """The partial aggregate as a query sent to the big side's source."""
    node = next(t for t in query.find_all(exp.Table) if t.alias_or_name == rewrite.alias)
    keys = [exp.column(name, table=rewrite.alias) for name in rewrite.keys.values()]
    select = exp.select(
        *[exp.alias_(k.copy(), k.name) for k in keys],
        *[exp.alias_(agg.copy(), name) for name, agg in rewrite.partials.values()],
    ).from_(node.copy())
    if scan.pushed_filters:
        select = select.where(exp.and_(*[f.condition.copy() for f in scan.pushed_filters]))
    select = select.group_by(*keys)
    refs = [(next(select.find_all(exp.Table)), rewrite.table)]
    frag = single_source_fragment(scan.id, select, select, refs, ctx.catalog, scan.source)
    if isinstance(frag, str):
        return f"the partial aggregate cannot run at '{scan.source}': {frag}"
    aggregate = PartialAggregate(
        rewrite.table.full_name, tuple(rewrite.keys.values()),
        tuple(_unqualified(agg) for _, agg in rewrite.partials.values()), groups, rows,
        scan.pushed_filters, scan.ref)
    return replace(frag, aggregate=aggregate)


def _unqualified(agg: exp.Expression) -> str:
    """``sum(quantity)``, as EXPLAIN names a partial aggregate."""
    arg = agg.this
    inner = "*" if isinstance(arg, exp.Star) else exp.to_identifier(arg.name).sql("duckdb")
    return f"{agg.key}({inner})"


def _keep_output_names(work: exp.Select, tree: exp.Select) -> None:
    """Name the residual's outputs as the query as written names them (the qualified copy
    folds the case of names it made)."""
    for i, (mine, theirs) in enumerate(zip(work.selects, tree.selects, strict=True)):
        if isinstance(theirs, exp.Alias):
            name = theirs.args["alias"].copy()
        elif isinstance(theirs, exp.Column):
            name = theirs.this.copy()
        else:
            continue
        value = mine.unalias() if isinstance(mine, exp.Alias) else mine
        work.expressions[i].replace(exp.alias_(value.copy(), name))
