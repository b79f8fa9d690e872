"""The planner: a bound query -> a :class:`Plan` (fragments pushed to sources, and the residual
DuckDB runs over their results). The rules, in order, each a pure function in the module of its
name:

1. ``push_whole_query``: a query on one source that the source can run with DuckDB's meaning
   becomes one fragment.
2. ``push_single_source_subqueries``: otherwise each derived table or CTE that reads one source
   becomes one fragment of that source, when the source can run it.
3. ``split_into_scans``: every other table reference becomes a scan fragment, and the query
   runs in DuckDB over the fragments' results.
4. ``add_dynamic_filters``: a scan joined with a small scan of another source receives the
   small side's join keys at run time.

Shared helpers: ``scan_sql`` (the SQL of a single-table scan, also used by sync), ``fragments``
(a query on one source as one fragment, and its result typing), ``pushdown`` (what a source may
run), ``markers`` (parameters as numbered markers).
"""

from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.plan import (
    DynamicFilter,
    Fragment,
    KeptFilter,
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
    "Fragment",
    "KeptFilter",
    "Plan",
    "PlanContext",
    "PushedFilter",
    "QueryFragment",
    "ResultTyping",
    "ScanFragment",
    "plan_query",
]
