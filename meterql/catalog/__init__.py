"""The catalog: sources, tables, columns; persisted, versioned, and sqlglot's optimizer schema."""

from meterql.catalog.catalog import Catalog
from meterql.catalog.model import MODES, Column, Mode, Source, Table

__all__ = ["MODES", "Catalog", "Column", "Mode", "Source", "Table"]
