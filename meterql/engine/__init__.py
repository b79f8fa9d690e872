"""The planner and executor: parse, bind, plan (fragments + residual), execute.

The names below are imported from their modules on first use: ``meterql.engine.limits`` and
``meterql.engine.pending`` stay importable without pyarrow, sqlglot and DuckDB (a workspace
imports those only once it opens its engine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterql.lazy import lazy_names

if TYPE_CHECKING:
    from meterql.engine.engine import Engine
    from meterql.engine.execute import QueryControl
    from meterql.engine.limits import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S
    from meterql.engine.planner import Fragment, Plan, QueryFragment, ScanFragment
    from meterql.engine.result import FragmentStats, Result

#: name -> the module that defines it
_LAZY = {
    "DEFAULT_MAX_ROWS": "meterql.engine.limits",
    "DEFAULT_TIMEOUT_S": "meterql.engine.limits",
    "Engine": "meterql.engine.engine",
    "Fragment": "meterql.engine.planner",
    "FragmentStats": "meterql.engine.result",
    "Plan": "meterql.engine.planner",
    "QueryControl": "meterql.engine.execute",
    "QueryFragment": "meterql.engine.planner",
    "Result": "meterql.engine.result",
    "ScanFragment": "meterql.engine.planner",
}


__getattr__ = lazy_names(globals(), _LAZY)

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
