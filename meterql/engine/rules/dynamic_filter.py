"""Rule: push a small side's join keys into the other side's scan at run time (placeholder)."""

from __future__ import annotations

from meterql.engine.rules.context import PlanContext


def add_dynamic_filters(ctx: PlanContext) -> PlanContext:
    return ctx
