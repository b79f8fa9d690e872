"""The catalog: sources, tables, columns; persisted, versioned, and sqlglot's optimizer schema."""

from meterql.catalog.catalog import Catalog
from meterql.catalog.model import (
    MODES,
    Column,
    ColumnStats,
    IndexInfo,
    Mode,
    Source,
    Table,
    TableStats,
)

__all__ = ["MODES", "Catalog", "Column", "ColumnStats", "IndexInfo", "Mode", "Source", "Table",
           "TableStats"]
