"""The planner: a bound query -> a :class:`Plan`, the fragments sent to sources and the
residual DuckDB runs over their results (``str(plan)`` is EXPLAIN).

``plan_query`` (planner.py) applies the rules, pure functions each in the module of its name,
with golden files in ``tests/golden/planner/<rule>.sql``. Every rule reads a
:class:`PlanContext` (the bound query, the catalog, the SQL, the settings) and never changes
it; what one rule hands the next is an explicit record:

1. ``push_whole_query(ctx) -> Plan | PartialPlan``: a query on one source that the source can
   run with DuckDB's meaning becomes a :class:`Plan` of one :class:`QueryFragment` and no
   residual; a query whose every table has a local replica, a Plan of no fragment. Otherwise
   it returns the starting :class:`PartialPlan`: the query as bound, nothing pushed, with a
   note saying why it was not sent whole.
2. ``push_single_source_subqueries(ctx, PartialPlan) -> PartialPlan``: each derived table or
   CTE that reads one source, is not correlated and passes that source's profile becomes one
   more QueryFragment; the residual reads the fragment in its place, and the table
   references it read are added to ``read``. Nothing pushed: the same PartialPlan.
3. ``split_into_scans(ctx, PartialPlan) -> Plan``: every table reference still in the
   residual and not ``read`` becomes a :class:`ScanFragment` (its columns, and its WHERE/ON
   conjuncts as :class:`PushedFilter` or :class:`KeptFilter` records) or, for a source in sync
   mode, a read of its replica; the Plan's residual is the whole query over the fragments.
4. ``add_dynamic_filters(ctx, Plan) -> Plan``: a ScanFragment joined with a small scan of
   another source gets a :class:`DynamicFilter` (that scan's keys, bound at run time). A plan
   without a residual comes back as it was.

Shared helpers, never a rule's internals: ``scan_sql`` (the SQL of a single-table scan; sync
copies tables with it too), ``fragments`` (a query on one source as one QueryFragment, and how
DuckDB types its result), ``pushdown`` (what a source may run, from its dialect's
capabilities), ``markers`` (named parameters as numbered markers), ``examples`` (the catalog the
docstring examples plan against).
"""

from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.dynamic import DynamicFilter, DynamicKey
from meterql.engine.planner.plan import (
    Fragment,
    KeptFilter,
    PartialPlan,
    Plan,
    PushedFilter,
    QueryFragment,
    ResultTyping,
    ScanFragment,
)
from meterql.engine.planner.planner import RULES, plan_query

__all__ = [
    "RULES",
    "DynamicFilter",
    "DynamicKey",
    "Fragment",
    "KeptFilter",
    "PartialPlan",
    "Plan",
    "PlanContext",
    "PushedFilter",
    "QueryFragment",
    "ResultTyping",
    "ScanFragment",
    "plan_query",
]
