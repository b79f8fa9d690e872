"""Sync mode: replicas of sources in DuckDB, kept fresh by incremental runs."""

from meterql.sync.config import STRATEGIES, TableSyncConfig, choose_strategy, table_configs
from meterql.sync.replica import ReplicaWatermark, attach, detach, replica_path, watermarks
from meterql.sync.runner import SyncReport, TableSyncReport, sync_source

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
