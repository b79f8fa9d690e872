"""Sync mode: replicas of sources in DuckDB, kept fresh by incremental runs.

The names below are imported from their modules on first use (``meterql.sync.config``, which
the command line reads for its choices, imports no DuckDB engine, pyarrow or sqlglot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterql.lazy import lazy_names

if TYPE_CHECKING:
    from meterql.sync.config import STRATEGIES, TableSyncConfig, choose_strategy, table_configs
    from meterql.sync.replica import (
        ReplicaWatermark,
        attach,
        detach,
        replica_path,
        watermarks,
    )
    from meterql.sync.runner import SyncReport, TableSyncReport, sync_source

#: name -> the module that defines it
_LAZY = {
    "STRATEGIES": "meterql.sync.config",
    "TableSyncConfig": "meterql.sync.config",
    "choose_strategy": "meterql.sync.config",
    "table_configs": "meterql.sync.config",
    "ReplicaWatermark": "meterql.sync.replica",
    "attach": "meterql.sync.replica",
    "detach": "meterql.sync.replica",
    "replica_path": "meterql.sync.replica",
    "watermarks": "meterql.sync.replica",
    "SyncReport": "meterql.sync.runner",
    "TableSyncReport": "meterql.sync.runner",
    "sync_source": "meterql.sync.runner",
}


__getattr__ = lazy_names(globals(), _LAZY)

__all__ = [
    "STRATEGIES",
    "ReplicaWatermark",
    "SyncReport",
    "TableSyncConfig",
    "TableSyncReport",
    "attach",
    "choose_strategy",
    "detach",
    "replica_path",
    "sync_source",
    "table_configs",
    "watermarks",
]
