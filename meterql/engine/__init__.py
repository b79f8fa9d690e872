"""The planner and executor: parse, bind, plan (fragments + residual), execute."""

from meterql.engine.engine import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S, Engine
from meterql.engine.execute import QueryControl
from meterql.engine.planner import Fragment, Plan, QueryFragment, ScanFragment
from meterql.engine.result import FragmentStats, Result

__all__ = [
    "DEFAULT_MAX_ROWS",
    "DEFAULT_TIMEOUT_S",
    "Engine",
    "Fragment",
    "FragmentStats",
    "Plan",
    "QueryControl",
    "QueryFragment",
    "Result",
    "ScanFragment",
]
