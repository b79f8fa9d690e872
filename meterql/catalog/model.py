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
