"""The planner's entry: the rules applied to a bound query (see ``meterql.engine.planner``)."""

from __future__ import annotations

from sqlglot import exp

from meterql.catalog import Catalog
from meterql.engine.bind import REF, BoundQuery
from meterql.engine.planner.add_dynamic_filters import add_dynamic_filters
from meterql.engine.planner.aggregate_before_join import aggregate_before_join
from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.plan import HybridRead, PartialPlan, Plan, hybrid_table, read_as
from meterql.engine.planner.push_single_source_subqueries import push_single_source_subqueries
from meterql.engine.planner.push_whole_query import push_whole_query
from meterql.engine.planner.routes import Route
from meterql.engine.planner.split_into_scans import split_into_scans

#: The rules, in the order ``plan_query`` applies them.
RULES = (push_whole_query, push_single_source_subqueries, split_into_scans, aggregate_before_join,
         add_dynamic_filters)


def plan_query(bound: BoundQuery, catalog: Catalog, sql: str,
               routes: dict[str, Route] | None = None) -> Plan:
    """The plan of a bound query: sent whole if it can be, else split into subquery and scan
    fragments; then the big side of an aggregate over a join aggregated at its source, and
    dynamic filters on the scans. ``routes``: where each table of an ``auto``
    source is read (``planner/routes.py``); the plan lists them."""
    ctx = PlanContext(bound, catalog, sql, dict(catalog.settings), dict(routes or {}))
    shaped = push_whole_query(ctx)
    if isinstance(shaped, PartialPlan):
        shaped = aggregate_before_join(
            ctx, split_into_scans(ctx, push_single_source_subqueries(ctx, shaped)))
    plan = add_dynamic_filters(ctx, shaped)
    plan.routes = list(ctx.routes.values())
    _read_hybrid(ctx, plan)
    return plan


def _read_hybrid(ctx: PlanContext, plan: Plan) -> None:
    """The residual reads each table routed ``hybrid`` as its overlay (made per query)."""
    hybrid = {r.table: r for r in ctx.routes.values() if r.kind == "hybrid"}
    if not hybrid or plan.residual is None:
        return
    names: dict[str, HybridRead] = {}
    for table in sorted(hybrid):
        names[table] = HybridRead(table, hybrid_table(len(names) + 1), hybrid[table].delta or "")
    for node in list(plan.residual.find_all(exp.Table)):
        ref = node.meta.get(REF)
        if ref is None:
            continue
        table = ctx.bound.tables[ref][1].full_name
        if table in names:
            read_as(node, names[table].name)
    plan.hybrid = list(names.values())
