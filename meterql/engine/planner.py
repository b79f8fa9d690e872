"""The planner: run the rules in order over a bound query (see ``meterql.engine.rules``)."""

from __future__ import annotations

from meterql.catalog import Catalog
from meterql.engine.bind import BoundQuery
from meterql.engine.plan import Plan
from meterql.engine.rules import RULES, PlanContext


def plan_query(bound: BoundQuery, catalog: Catalog, sql: str) -> Plan:
    ctx = PlanContext(bound, catalog, sql, dict(catalog.settings))
    for rule in RULES:
        ctx = rule(ctx)
    assert ctx.plan is not None, "split_into_scans always makes a plan"
    return ctx.plan
