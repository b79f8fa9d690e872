"""The catalog as sqlglot's optimizer schema: qualify and annotate_types read names and types here.

Tables are registered under their full name (catalog = source, db = schema), so the optimizer sees
``pg.public.events`` exactly as meterql does. Types are DuckDB types, the engine's own.

Names are normalised the way DuckDB does it (case-insensitively, quoted or not), because the
optimizer normalises the query's identifiers that way: a schema keeping ``CustomerId`` as
written would never match the query's ``customerid`` and every mixed-case column would be
"unknown". Each :class:`Table` keeps the name as the source spells it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot.schema import MappingSchema

from meterql.catalog.model import Table


class CatalogSchema(MappingSchema):
    """A :class:`sqlglot.schema.Schema` built from the catalog's tables.

    >>> from meterql.catalog.model import Column, Table
    >>> s = CatalogSchema([Table("pg", "public", "t", (Column("amount", "DECIMAL(18, 6)", "x"),))])
    >>> s.column_names("pg.public.t")
    ['amount']
    """

    def __init__(self, tables: Iterable[Table]) -> None:
        mapping: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
        for table in tables:
            columns = {c.name: c.type for c in table.columns}
            mapping.setdefault(table.source, {}).setdefault(table.schema, {})[table.name] = columns
        # sqlglot types the schema as dict[str, object], which (dict being invariant) refuses
        # the nested dict it takes; it only reads it (normalize=True copies it).
        super().__init__(mapping, dialect="duckdb", normalize=True)  # type: ignore[arg-type]
