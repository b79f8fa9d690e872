"""Rule: send a query that touches one source whole, when its capability profile says every
construct in it keeps DuckDB's meaning there."""

from __future__ import annotations

from dataclasses import replace

from sqlglot.optimizer.pushdown_projections import pushdown_projections

from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.fragments import single_source_fragment
from meterql.engine.planner.plan import Plan, QueryFragment


def push_whole_query(ctx: PlanContext) -> PlanContext:
    """One source and a profile that accepts the whole tree -> a plan of one fragment."""
    if ctx.plan is not None:
        return ctx
    sources = {table.source for _, table in ctx.bound.tables}
    if all(ctx.catalog.source(name).mode == "sync" for name in sources):
        # Every table has a local replica: DuckDB runs the query as written.
        local = [table.full_name for _, table in ctx.bound.tables]
        plan = Plan(ctx.sql, [], ctx.bound.tree.copy(), ctx.bound.params,
                    [*ctx.notes, "every table is read from its local replica"],
                    local_tables=sorted(set(local)))
        return replace(ctx, plan=plan)
    if len(sources) != 1:
        return ctx
    source = ctx.catalog.source(next(iter(sources)))
    frag = single_source_fragment(
        "f1", ctx.bound.tree, ctx.bound.qualified, ctx.bound.tables, ctx.catalog, source.name,
        pushdown_projections(ctx.bound.qualified.copy()),
    )
    if isinstance(frag, QueryFragment):
        return replace(ctx, plan=Plan(ctx.sql, [frag], None, ctx.bound.params))
    return replace(ctx, notes=[*ctx.notes, f"not sent whole to '{source.name}': {frag}"])
