"""The catalog: registered sources and their introspected tables, cached in memory."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import duckdb

from meterql.catalog.model import MODES, Column, Source, Table, TableStats
from meterql.catalog.names import resolve_table
from meterql.catalog.settings import SETTINGS, setting
from meterql.catalog.stat_values import orders_values
from meterql.catalog.store import CatalogStore
from meterql.catalog.uri import parse_uri
from meterql.dialects import kind_for_scheme, uri_schemes
from meterql.errors import InvalidSourceError, SourceExistsError, UnknownSourceError
from meterql.sql_text import is_name

if TYPE_CHECKING:
    from meterql.catalog.schema import CatalogSchema

#: The workspace's own data (events, uploads, manual rows) in its DuckDB file ``local.duckdb``,
#: read by DuckDB directly as replicas are.
LOCAL = Source("local", "local", "local://workspace", "sync", {})
#: Names meterql keeps for itself (the local source arrives with ingestion).
RESERVED_NAMES = frozenset({"local", "memory", "system", "temp", "main"})
#: Source options meterql knows, with the integer range each accepts, or NAME for a PostgreSQL
#: object name (a connector reading a new option adds it here, so a misspelt option is refused
#: when the source is added, not ignored).
NAME: Final = "name"
SOURCE_OPTIONS: dict[str, tuple[int, int] | Literal["name"]] = {
    "statement_timeout_ms": (1, 2**31 - 1),
    "numeric_scale": (0, 38),
    "sync_every_s": (1, 366 * 86400),
    "cdc_slot": NAME,
    "cdc_publication": NAME,
}


#: A table's stored sync configuration: (strategy, cursor column, lag, soft-delete column,
#: clustering key).
SyncConfigRow: TypeAlias = tuple[str, str | None, int, str | None, tuple[str, ...]]

class Catalog:
    """Sources and tables, persisted in the workspace and cached for planning.

    The cache is rebuilt after every change; :attr:`version` tells planners when.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._store = CatalogStore(con)
        self._local_tables: list[Table] = []
        self._local_version = 0
        self._load()

    def _load(self) -> None:
        """Read the stored catalog, then index it."""
        self._sources = {s.name: s for s in self._store.sources()}
        self._sources[LOCAL.name] = LOCAL
        self._sync_configs: dict[str, dict[tuple[str, str], SyncConfigRow]] = {}
        self._stored_tables = self._store.tables() + [
            _sync_state_table(s.name) for s in self._sources.values()
            if s.replicated and s is not LOCAL
        ]
        self._stored_version = self._store.version
        self._index()
        self._load_statistics()
        stored = self._store.settings()
        self.settings = {
            name: definition.parse(stored[name]) if name in stored else definition.default
            for name, definition in SETTINGS.items()
        }

    def _index(self) -> None:
        self._tables = self._stored_tables + self._local_tables
        self._by_key = {t.key: t for t in self._tables}
        self._schema: CatalogSchema | None = None
        #: Plans are cached per version: the stored catalog's, and the local data's shape.
        self.version = (self._stored_version, self._local_version)

    def set_local_tables(self, tables: list[Table]) -> None:
        """The tables of the workspace's own data (``local``: events, uploads, manual rows),
        read from its DuckDB file whenever their shape changes (the stored catalog is not
        read again)."""
        self._local_tables = list(tables)
        self._local_version += 1
        self._index()

    # -- sources -------------------------------------------------------------------------
    def sources(self) -> list[Source]:
        """The registered sources (the built-in ``local`` is not one of them)."""
        return [s for s in self._sources.values() if s is not LOCAL]

    def source(self, name: str) -> Source:
        try:
            return self._sources[name.lower()]
        except KeyError:
            close = difflib.get_close_matches(name.lower(), list(self._sources), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "run 'meterql source list'"
            raise UnknownSourceError(f"no source named '{name}'", source=name, hint=hint) from None

    def _registered(self, name: str) -> Source:
        """A source that may be changed: any but the built-in ``local``."""
        source = self.source(name)
        if source is LOCAL:
            raise InvalidSourceError(
                "'local' is the workspace's own data (events, uploads, manual rows)",
                source="local", hint="it has no URI, mode or options to change")
        return source

    def validate_source(self, source: Source) -> None:
        """Check a source before it is stored; raises :class:`InvalidSourceError`."""
        if not is_name(source.name):
            raise InvalidSourceError(
                f"'{source.name}' is not a valid source name",
                hint="use a lowercase identifier: letters, digits and _, starting with a letter",
            )
        if source.name in RESERVED_NAMES:
            raise InvalidSourceError(
                f"'{source.name}' is reserved by meterql", hint="choose another name"
            )
        if source.mode not in MODES:
            raise InvalidSourceError(
                f"unknown mode '{source.mode}'", hint=f"use one of: {', '.join(MODES)}"
            )
        _validate_options(source)
        if source.name in self._sources:
            raise SourceExistsError(
                f"a source named '{source.name}' already exists",
                source=source.name,
                hint="remove it first with 'meterql source remove', or pick another name",
            )

    @staticmethod
    def kind_of(uri: str) -> str:
        """The source kind a URI names; raises with the accepted schemes otherwise."""
        scheme = parse_uri(uri).scheme
        kind = kind_for_scheme(scheme)
        if kind is None:
            accepted = ", ".join(uri_schemes())
            raise InvalidSourceError(
                f"unknown source kind '{scheme}'", hint=f"URI schemes meterql knows: {accepted}"
            )
        return kind

    def add_source(self, source: Source, tables: Sequence[Table]) -> None:
        self.validate_source(source)
        try:
            self._store.add_source(source, tables)
        finally:
            self._load()

    def remove_source(self, name: str) -> Source:
        source = self._registered(name)
        self._store.delete_source(source.name)
        self._load()
        return source

    def replace_tables(self, name: str, tables: Sequence[Table]) -> None:
        self._store.replace_tables(self.source(name).name, tables)
        self._load()

    def set_mode(self, name: str, mode: str) -> Source:
        source = self._registered(name)
        if mode not in MODES:
            raise InvalidSourceError(
                f"unknown mode '{mode}'", hint=f"use one of: {', '.join(MODES)}"
            )
        self._store.set_mode(source.name, mode)
        self._load()
        return self.source(name)

    def set_options(self, name: str, options: dict[str, Any]) -> Source:
        """Change a source's options (a value of None removes the option)."""
        source = self._registered(name)
        merged = {k: v for k, v in {**source.options, **options}.items() if v is not None}
        _validate_options(Source(source.name, source.kind, source.uri, source.mode, merged))
        self._store.set_options(source.name, merged)
        self._load()
        return self.source(name)

    def sync_configs(
        self, source: str
    ) -> dict[tuple[str, str], SyncConfigRow]:
        """Per table (schema, name): (strategy, cursor column, lag, soft-delete column,
        clustering key) set for syncing."""
        name = self.source(source).name
        configs = self._sync_configs.get(name)
        if configs is None:  # (read once per load: every change reloads the catalog)
            configs = self._sync_configs[name] = self._store.sync_configs(name)
        return configs

    def set_sync_config(
        self, table: Table, strategy: str, cursor: str | None, lag: int,
        soft_delete: str | None = None, cluster_by: Sequence[str] = (),
    ) -> None:
        self._store.set_sync_config(table.source, table.schema, table.name, strategy, cursor, lag,
                                    soft_delete, cluster_by)
        self._load()

    # -- statistics -----------------------------------------------------------------------------
    def _load_statistics(self) -> None:
        self._statistics = self._store.statistics()
        self._cost_constants = self._store.cost_constants()

    def statistics(self, full_name: str) -> TableStats | None:
        """A table's statistics at its source (``source.schema.table``), as last read by
        ``source refresh`` or a sync; ``None`` when never read."""
        return self._statistics.get(full_name)

    def replace_statistics(self, name: str, stats: Sequence[TableStats]) -> None:
        """Store a source's statistics in place of those it had (no new catalog version:
        only routed plans read them, and those are made per query)."""
        from meterql.dialects import type_family  # (sqlglot: not when the catalog opens)

        source = self.source(name).name
        families = {
            (t.full_name, c.name.lower()): family
            for t in self.tables(source) for c in t.columns
            if orders_values(family := type_family(c.type))
        }
        self._store.replace_statistics(source, stats, families)
        self._load_statistics()

    def cost_constants(self, name: str) -> dict[str, float] | None:
        """The per-row costs measured for a source by ``meterql calibrate``, if any."""
        return self._cost_constants.get(self.source(name).name)

    def set_cost_constants(self, name: str, constants: dict[str, float]) -> None:
        self._store.set_cost_constants(self._registered(name).name, constants)
        self._load_statistics()

    # -- settings -------------------------------------------------------------------------------
    def set_setting(self, name: str, value: Any) -> Any:
        """Store a setting (``None`` restores its default); returns the value in force."""
        definition = setting(name)
        if value is None:
            self._store.set_setting(name, None)
        else:
            parsed = definition.parse(value)
            text = str(parsed).lower() if isinstance(parsed, bool) else str(parsed)
            self._store.set_setting(name, text)
        self._load()
        return self.settings[name]

    # -- tables ----------------------------------------------------------------------------
    def tables(self, source: str | None = None, internal: bool = False) -> list[Table]:
        """The tables a person works with (of one source when given). The replicas' sync
        state (``<source>.__meterql__.sync_state``) is named and queried like a table but
        listed only with ``internal``."""
        tables = self._tables if internal else [t for t in self._tables
                                                if t.kind != SYNC_STATE_KIND]
        if source is None:
            return list(tables)
        name = self.source(source).name
        return [t for t in tables if t.source == name]

    def table(self, name: str | Sequence[str]) -> Table:
        """Resolve a table name (``'pg.public.events'`` or its parts) to one table."""
        parts = name.split(".") if isinstance(name, str) else list(name)
        return resolve_table(parts, self._tables)

    @property
    def schema(self) -> CatalogSchema:
        """The catalog as sqlglot's optimizer schema (built lazily, per catalog version)."""
        if self._schema is None:
            from meterql.catalog.schema import CatalogSchema  # (sqlglot: only when planning)

            self._schema = CatalogSchema(self._tables)
        return self._schema


#: Where a synced source's replica keeps its state, queryable by SQL as
#: ``<source>.__meterql__.sync_state``.
SYNC_STATE_SCHEMA, SYNC_STATE_TABLE = "__meterql__", "sync_state"
#: The kind of those tables (not listed among a source's tables).
SYNC_STATE_KIND = "sync state"


def _sync_state_table(source: str) -> Table:
    """The watermarks of a synced source's replica, as a table SQL can read."""
    columns = (
        Column("schema_name", "VARCHAR", "VARCHAR", False),
        Column("table_name", "VARCHAR", "VARCHAR", False),
        Column("strategy", "VARCHAR", "VARCHAR", False),
        Column("cursor_column", "VARCHAR", "VARCHAR"),
        Column("cursor_value", "VARCHAR", "VARCHAR"),
        Column("rows", "BIGINT", "BIGINT", False),
        Column("synced_at", "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", False),
    )
    return Table(source, SYNC_STATE_SCHEMA, SYNC_STATE_TABLE, columns, kind=SYNC_STATE_KIND)


def _validate_options(source: Source) -> None:
    for key, value in source.options.items():
        if key not in SOURCE_OPTIONS:
            close = difflib.get_close_matches(key, list(SOURCE_OPTIONS), n=1)
            known = ", ".join(SOURCE_OPTIONS)
            raise InvalidSourceError(
                f"unknown source option '{key}'",
                source=source.name,
                hint=f"did you mean '{close[0]}'?" if close else f"options meterql knows: {known}",
            )
        spec = SOURCE_OPTIONS[key]
        if isinstance(spec, str):  # NAME (the other specs are number ranges)
            if not is_name(value):
                raise InvalidSourceError(
                    f"source option {key}={value!r} is not valid",
                    source=source.name,
                    hint="use lower-case letters, digits and underscores (at most 63), as "
                    "PostgreSQL names replication slots",
                )
            continue
        low, high = spec
        try:
            number = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise InvalidSourceError(
                f"source option {key}={value!r} is not valid",
                source=source.name,
                hint=f"use a whole number from {low} to {high}",
            )
