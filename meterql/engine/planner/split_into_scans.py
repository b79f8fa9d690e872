"""Rule: one scan fragment per table reference (needed columns, filters that keep their
meaning), streamed into DuckDB where the whole query runs as the residual.

Correctness does not depend on what was pushed: the residual is the whole query, so it re-applies
every filter; a fragment only has to return a superset of the rows the query needs.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from meterql.catalog import Table
from meterql.dialects import SourceDialect, dialect_for
from meterql.engine.bind import REF, BoundQuery
from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.plan import (
    FilterOrigin,
    Fragment,
    KeptFilter,
    PartialPlan,
    Plan,
    PushedFilter,
    ScanFragment,
    fragment_table,
    read_as,
)
from meterql.engine.planner.pushdown import filter_blocker
from meterql.engine.planner.scan_sql import conjuncts, scan_select


def split_into_scans(ctx: PlanContext, partial: PartialPlan) -> Plan:
    """Every table reference ``partial`` leaves becomes a scan (or a read of its replica); the
    residual is the query over the fragments' results.

    >>> from meterql.engine.planner.examples import example_context
    >>> ctx = example_context("SELECT name FROM lite.main.customers WHERE plan = 'pro'")
    >>> print(split_into_scans(ctx, PartialPlan(ctx.bound.tree)))
    Plan: 1 fragment(s), run locally in DuckDB
    - fragment f1 on source 'lite' (sqlite): scan lite.main.customers
        sql: SELECT "name", "plan" FROM "main"."customers" WHERE "plan" COLLATE BINARY = 'pro'
        pushed: columns name, plan
        pushed: filter customers.plan = 'pro' (from WHERE)
    - residual in DuckDB:
        sql: SELECT name FROM __fragment_f1 AS customers WHERE plan = 'pro'
    """
    bound, catalog = ctx.bound, ctx.catalog
    residual = partial.residual.copy()
    residual_tables = {t.meta[REF]: t for t in residual.find_all(exp.Table) if REF in t.meta}
    qualified_tables = {
        t.meta[REF]: t for t in bound.qualified.find_all(exp.Table) if REF in t.meta
    }
    fragments: list[Fragment] = list(partial.fragments)
    scans: dict[tuple[str, str, tuple[str, ...]], int] = {}  # (source, SQL, params) -> index
    local: set[str] = set()
    for ref, (_, table) in enumerate(bound.tables):
        if ref in partial.read or ref not in residual_tables:
            continue
        source = catalog.source(table.source)
        if ctx.reads_replica(table.full_name, source.name):
            local.add(table.full_name)  # the residual reads the replica under the same name
            continue
        dialect = dialect_for(source.kind)
        frag = _scan_fragment(
            f"f{len(fragments) + 1}", qualified_tables[ref], table, bound, dialect
        )
        same = scans.get((frag.source, frag.sql, tuple(frag.params)))
        if same is not None:
            # The same scan twice (a subquery repeated in GROUP BY, a self-join on equal
            # filters): one fragment, so the residual's copies stay the same expression. A
            # shared scan takes no dynamic filter (one use's join keys would cut the other's).
            shared = fragments[same]
            if not isinstance(shared, ScanFragment):
                raise RuntimeError(f"fragment {shared.id} is recorded as a scan but is not one")
            frag = fragments[same] = replace(shared, ref=None)
        else:
            frag = replace(frag, ref=ref)
            scans[(frag.source, frag.sql, tuple(frag.params))] = len(fragments)
            fragments.append(frag)
        read_as(residual_tables[ref], fragment_table(frag.id))
    return Plan(ctx.sql, fragments, residual, bound.params, list(partial.notes),
                local_tables=sorted(local))


def _scan_fragment(
    frag_id: str, node: exp.Table, table: Table, bound: BoundQuery, dialect: SourceDialect
) -> ScanFragment:
    alias = node.alias_or_name
    types = {c.name.lower(): c.type for c in table.columns}
    used = {
        c.name.lower()
        for c in bound.qualified.find_all(exp.Column)
        if c.table == alias and c.name.lower() in types
    }
    columns = [c for c in table.columns if c.name.lower() in used] or [table.columns[0]]
    if _alias_columns(node):
        columns = list(table.columns)  # AS t(a, b, ...) renames columns by position
    pushed: list[PushedFilter] = []
    kept: list[KeptFilter] = []
    local = {c.name.lower(): reason for c in table.columns
             if (reason := dialect.computes_differently(c.source_type)) is not None}
    for conjunct, where in candidate_filters(node):
        blocker = filter_blocker(conjunct, alias, types, dialect)
        carried = [c.name for c in conjunct.find_all(exp.Column) if c.name.lower() in local]
        if blocker is None and carried:
            blocker = f"{carried[0]} is {local[carried[0].lower()]}"
        if blocker is None:
            pushed.append(PushedFilter(conjunct, where))
        elif any(c.table == alias for c in conjunct.find_all(exp.Column)):
            kept.append(KeptFilter(conjunct, blocker))
    scan = scan_select(table, columns, dialect, [f.condition for f in pushed])
    return ScanFragment(frag_id, table.source, dialect.kind, table.full_name, scan,
                        tuple(pushed), tuple(kept))


def _alias_columns(node: exp.Table) -> list[exp.Expression]:
    alias = node.args.get("alias")
    return list(alias.columns) if alias is not None else []


def candidate_filters(node: exp.Table) -> list[tuple[exp.Expression, FilterOrigin]]:
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
    out: list[tuple[exp.Expression, FilterOrigin]] = []
    if own_join is not None and own_join.args.get("on") is not None:
        out += [(c, "ON") for c in conjuncts(own_join.args["on"])]
    if own_join is not None and own_join.side == "LEFT":
        return out  # the null-supplying side: WHERE may test for its NULLs
    where = select.args.get("where")
    if where is not None:
        out += [(c, "WHERE") for c in conjuncts(where.this)]
    return out
