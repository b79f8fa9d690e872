"""Sync mode: replicas of sources in DuckDB, kept fresh by incremental runs."""

from meterql.sync.replica import ReplicaWatermark, attach, detach, replica_path, watermarks
from meterql.sync.runner import (
    STRATEGIES,
    SyncReport,
    TableSyncConfig,
    TableSyncReport,
    sync_source,
)

__all__ = [
    "STRATEGIES",
    "ReplicaWatermark",
    "SyncReport",
    "TableSyncConfig",
    "TableSyncReport",
    "attach",
    "detach",
    "replica_path",
    "sync_source",
    "watermarks",
]
