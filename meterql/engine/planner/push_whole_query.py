"""Rule: send a query that touches one source whole, when its capability profile says every
construct in it keeps DuckDB's meaning there."""

from __future__ import annotations

from sqlglot.optimizer.pushdown_projections import pushdown_projections

from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.fragments import single_source_fragment
from meterql.engine.planner.plan import PartialPlan, Plan, QueryFragment


def push_whole_query(ctx: PlanContext) -> Plan | PartialPlan:
    """One source and a profile that accepts the whole tree -> a plan of one fragment; every
    table on a local replica -> a plan of no fragment; otherwise the query with nothing pushed
    yet, noting why it was not sent whole.

    >>> from meterql.engine.planner.examples import example_context
    >>> plan = push_whole_query(example_context(
    ...     "SELECT meter, count(*) AS n FROM pg.public.events GROUP BY meter"))
    >>> plan.residual is None, plan.fragments[0].sql
    (True, 'SELECT meter, COUNT(*) AS n FROM public.events AS events GROUP BY meter')
    >>> partial = push_whole_query(example_context("SELECT name FROM lite.main.customers"))
    >>> print(*partial.notes)
    not sent whole to 'lite': sqlite sources do not run whole queries (weak typing); scans only
    """
    sources = {table.source for _, table in ctx.bound.tables}
    if all(ctx.reads_replica(table.full_name, table.source) for _, table in ctx.bound.tables):
        # Every table has a local replica: DuckDB runs the query as written.
        local = [table.full_name for _, table in ctx.bound.tables]
        return Plan(ctx.sql, [], ctx.bound.tree.copy(), ctx.bound.params,
                    ["every table is read from its local replica"],
                    local_tables=sorted(set(local)))
    if len(sources) != 1 or any(
            ctx.reads_replica(table.full_name, table.source) for _, table in ctx.bound.tables):
        return PartialPlan(ctx.bound.tree)
    source = ctx.catalog.source(next(iter(sources)))
    frag = single_source_fragment(
        "f1", ctx.bound.tree, ctx.bound.qualified, ctx.bound.tables, ctx.catalog, source.name,
        pushdown_projections(ctx.bound.qualified.copy()),
    )
    if isinstance(frag, QueryFragment):
        return Plan(ctx.sql, [frag], None, ctx.bound.params)
    return PartialPlan(ctx.bound.tree, notes=(f"not sent whole to '{source.name}': {frag}",))
