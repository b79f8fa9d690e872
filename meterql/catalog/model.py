"""What the catalog holds: sources, their tables and columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from meterql.catalog.uri import redact_uri

Mode = Literal["direct", "sync", "auto"]
MODES: tuple[Mode, ...] = get_args(Mode)


@dataclass(frozen=True, repr=False)
class Source:
    """A registered database.

    Attributes:
        name: lowercase identifier; the first part of every table name.
        kind: ``postgres``, ``sqlite`` or ``duckdb``.
        uri: the connection URI as stored (a password in it stays in the workspace only).
        mode: ``direct`` (query the source at query time), ``sync`` (query its replica) or
            ``auto`` (synced like ``sync``; each query reads the replica or the source per
            table, by the freshness bound ``max_staleness``).
        options: kind-specific settings (``statement_timeout_ms``, ``numeric_scale``, ...).
    """

    name: str
    kind: str
    uri: str
    mode: Mode = "direct"
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def replicated(self) -> bool:
        """Whether the source is synced to a local replica (modes ``sync`` and ``auto``)."""
        return self.mode in ("sync", "auto")

    @property
    def display_uri(self) -> str:
        """The URI with any written password shown as ``***``."""
        return redact_uri(self.uri)

    def __repr__(self) -> str:
        # Never the stored URI: a written password would show wherever a Source is printed.
        return (
            f"Source(name={self.name!r}, kind={self.kind!r}, uri={self.display_uri!r}, "
            f"mode={self.mode!r}, options={self.options!r})"
        )

    def describe(self) -> dict[str, Any]:
        """A secret-free description for listings and JSON output."""
        return {
            "name": self.name,
            "kind": self.kind,
            "mode": self.mode,
            "uri": self.display_uri,
            "options": dict(self.options),
        }


@dataclass(frozen=True)
class Column:
    """A column as meterql sees it.

    Attributes:
        name: the column name as the source spells it.
        type: the DuckDB type that carries it exactly.
        source_type: the type as the source declares it.
        nullable: whether it may hold NULL.
    """

    name: str
    type: str
    source_type: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    """A table or view of a source, addressed as ``source.schema.table``."""

    source: str
    schema: str
    name: str
    columns: tuple[Column, ...]
    kind: str = "table"
    #: Rows the source estimates the table holds (PostgreSQL's reltuples, a SQLite count,
    #: DuckDB's estimated size); ``None`` when unknown. Read at add and refresh time.
    rows: int | None = None
    #: The primary key's columns, in key order (empty when the table has none).
    primary_key: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.source}.{self.schema}.{self.name}"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.schema, self.name)

    def column(self, name: str) -> Column | None:
        lowered = name.lower()
        for col in self.columns:
            if col.name.lower() == lowered:
                return col
        return None


@dataclass(frozen=True)
class ColumnStats:
    """What a source knows about one column's values (read from its statistics, never computed
    by scanning the table).

    Attributes:
        column: the column name as the source spells it.
        distinct: the number of distinct values (PostgreSQL's ``n_distinct`` made absolute;
            SQLite's from ``sqlite_stat1``), ``None`` when unknown.
        null_frac: the fraction of rows that are NULL, ``None`` when unknown.
        min, max: the smallest and largest value seen (Python values), ``None`` when unknown.
        histogram: bounds splitting the values that are not among ``common`` into groups of
            equal size, ascending (numbers, dates and timestamps only).
        common: the most common values with the fraction of rows holding each.
        correlation: how closely the rows' physical order follows the column's order, from -1
            to 1 (PostgreSQL's ``correlation``; near 1 for the time of an append-only log),
            ``None`` when unknown.
    """

    column: str
    distinct: float | None = None
    null_frac: float | None = None
    min: Any = None
    max: Any = None
    histogram: tuple[Any, ...] = ()
    common: tuple[tuple[Any, float], ...] = ()
    correlation: float | None = None


@dataclass(frozen=True)
class IndexInfo:
    """An index a source can use to find rows: its key columns in order (an index whose key
    starts with an expression is not listed; one with an expression later lists the columns
    before it).

    >>> print(IndexInfo("events_customer_ts", ("customer_id", "ts")))
    index on (customer_id, ts)
    """

    name: str
    columns: tuple[str, ...]
    unique: bool = False

    def __str__(self) -> str:
        return f"{'unique ' if self.unique else ''}index on ({', '.join(self.columns)})"


@dataclass(frozen=True)
class TableStats:
    """A table's statistics at its source: rows, per-column statistics and indexes.

    Attributes:
        table: the table's full name (``source.schema.table``).
        rows: the rows the source estimates it holds, ``None`` when unknown.
        columns: per column (lower-case name), what the source knows of its values.
        indexes: the indexes the source can use for it.
        read_at: when they were read (ISO 8601, UTC), ``None`` when never.
    """

    table: str
    rows: int | None = None
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    indexes: tuple[IndexInfo, ...] = ()
    read_at: str | None = None

    def column(self, name: str) -> ColumnStats | None:
        return self.columns.get(name.lower())
