"""Event streams' shapes: :class:`StreamConfig` (the required fields and the columns)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Columns meterql adds to every stream's table (not fields of the events).
INGESTED = "_ingested_at"
INTERNAL_COLUMNS = (INGESTED, "_backfill")


@dataclass
class StreamConfig:
    name: str
    id_field: str = "id"
    timestamp_field: str = "timestamp"
    customer_field: str = "customer_id"
    declared: bool = False
    columns: dict[str, str] = field(default_factory=dict)  # field -> DuckDB type
