"""The planner: run the rules in order over a bound query (see ``meterql.engine.planner``)."""

from __future__ import annotations

from meterql.catalog import Catalog
from meterql.engine.bind import BoundQuery
from meterql.engine.planner.add_dynamic_filters import add_dynamic_filters
from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.plan import Plan
from meterql.engine.planner.push_single_source_subqueries import push_single_source_subqueries
from meterql.engine.planner.push_whole_query import push_whole_query
from meterql.engine.planner.split_into_scans import split_into_scans

RULES = (push_whole_query, push_single_source_subqueries, split_into_scans, add_dynamic_filters)


def plan_query(bound: BoundQuery, catalog: Catalog, sql: str) -> Plan:
    ctx = PlanContext(bound, catalog, sql, dict(catalog.settings))
    for rule in RULES:
        ctx = rule(ctx)
    assert ctx.plan is not None, "split_into_scans always makes a plan"
    return ctx.plan
