"""The planner's rules, in order. Each is a pure function ``PlanContext -> PlanContext``.

1. ``push_whole_query``: a query on one source that the source can run with DuckDB's meaning
   becomes one fragment.
2. ``push_single_source_subqueries``: otherwise each derived table or CTE that reads one source
   becomes one fragment of that source, when the source can run it.
3. ``split_into_scans``: every other table reference becomes a scan fragment, and the query
   runs in DuckDB over the fragments' results.
4. ``add_dynamic_filters``: a scan joined with a small scan of another source receives the
   small side's join keys at run time.
"""

from meterql.engine.rules.context import PlanContext
from meterql.engine.rules.dynamic_filter import add_dynamic_filters
from meterql.engine.rules.scans import split_into_scans
from meterql.engine.rules.subqueries import push_single_source_subqueries
from meterql.engine.rules.whole_query import push_whole_query

RULES = (push_whole_query, push_single_source_subqueries, split_into_scans, add_dynamic_filters)

__all__ = [
    "RULES",
    "PlanContext",
    "add_dynamic_filters",
    "push_single_source_subqueries",
    "push_whole_query",
    "split_into_scans",
]
