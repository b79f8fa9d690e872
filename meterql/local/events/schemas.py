"""Event streams' shapes: :class:`StreamConfig` (the required fields and the columns, frozen),
and :class:`StreamSchemas`, which creates streams, describes them and keeps them in memory.

Only this process writes ``local.duckdb``, so a stream's shape is read once and then kept. The
cache holds committed shapes only, and never changes one in place: a write reads and changes
shapes through an :class:`EventsTransaction`, whose changes are new configs kept apart from the
cache; when DuckDB commits they replace the cached ones (before the next writer starts), and a
rollback drops them. Other threads may read the cache at any time, without a lock (a dict
read; a config they hold is never changed under them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb

from meterql.errors import IngestError, InputLimitError, UnknownStreamError
from meterql.local.event_values import fillable
from meterql.local.store import META, LocalStore
from meterql.sql_text import quote_ident, sql_type

#: Columns meterql adds to every stream's table (not fields of the events).
INGESTED = "_ingested_at"
INTERNAL_COLUMNS = (INGESTED, "_backfill")

_TYPES_HINT = "declare DuckDB types, such as VARCHAR, BIGINT, BOOLEAN, JSON or DECIMAL(18,6)"


class Columns(dict[str, str]):
    """A stream's columns (field -> DuckDB type), read-only: a dict still, so that it
    serializes as one.

    >>> Columns({"id": "VARCHAR"})["qty"] = "BIGINT"
    Traceback (most recent call last):
    TypeError: a stream's columns are not changed in place (StreamConfig.with_columns)
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a stream's columns are not changed in place "
                        "(StreamConfig.with_columns)")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse


@dataclass(frozen=True)
class StreamConfig:
    """A stream's required fields and its columns (field -> DuckDB type, in table order).

    >>> config = StreamConfig("calls", columns={"id": "VARCHAR"})
    >>> dict(config.with_columns({"qty": "BIGINT"}).columns), dict(config.columns)
    ({'id': 'VARCHAR', 'qty': 'BIGINT'}, {'id': 'VARCHAR'})
    """

    name: str
    id_field: str = "id"
    timestamp_field: str = "timestamp"
    customer_field: str = "customer_id"
    declared: bool = False
    columns: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.columns, Columns):
            object.__setattr__(self, "columns", Columns(self.columns))

    def with_columns(self, changes: Mapping[str, str]) -> StreamConfig:
        """A copy with ``changes`` added or retyped."""
        return replace(self, columns={**self.columns, **changes})


def staging_table(stream: str) -> str:
    """The stream's staging table, for backfills: ``local.__meterql__.<this>``."""
    return f"staged_{stream}"


def staged(stream: str) -> str:
    """The stream's staging table, quoted in full."""
    return f"local.{META}.{quote_ident(staging_table(stream))}"


def _read(cur: duckdb.DuckDBPyConnection, stream: str) -> StreamConfig | None:
    rows = cur.execute("SELECT id_field, timestamp_field, customer_field, declared FROM "
                       "local.__meterql__.streams WHERE stream = ?", [stream]).fetchall()
    if not rows:
        return None
    columns = dict(cur.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'local' "
        "AND schema_name = 'events' AND table_name = ? ORDER BY column_index",
        [stream]).fetchall())
    for internal in INTERNAL_COLUMNS:
        columns.pop(internal, None)
    id_field, timestamp_field, customer_field, declared = rows[0]
    return StreamConfig(stream, id_field, timestamp_field, customer_field, declared,
                        columns=columns)


def _unknown(stream: str) -> UnknownStreamError:
    return UnknownStreamError(f"no event stream named '{stream}'",
                              hint="a stream is created by its first event")


class StreamSchemas:
    """Streams' shapes in ``local.duckdb`` and in memory (see the module's docstring)."""

    def __init__(self, store: LocalStore, settings: Callable[[], dict[str, Any]]) -> None:
        self._store = store
        self._settings = settings
        self._cache: dict[str, StreamConfig] = {}  # committed shapes only

    def cached(self, stream: str) -> StreamConfig | None:
        """The stream's committed shape if it is in memory (any thread)."""
        return self._cache.get(stream)

    def describe(self, stream: str) -> StreamConfig:
        """The stream's shape as DuckDB has it (an unknown stream is an error)."""
        with self._store.read() as cur:
            config = _read(cur, stream)
        if config is None:
            raise _unknown(stream)
        return config

    def names(self) -> list[str]:
        with self._store.read() as cur:
            return [r[0] for r in cur.execute(
                "SELECT stream FROM local.__meterql__.streams ORDER BY 1").fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[EventsTransaction]:
        """A DuckDB write transaction (``LocalStore.write``) with the shapes it reads and
        changes: published to the cache once committed, dropped on a rollback."""
        tx = EventsTransaction(self)
        with self._store.write(committed=tx.publish) as cur:
            tx.cur = cur
            yield tx


class EventsTransaction:
    """One write transaction over the event streams (``cur``), and the stream shapes it has
    read or changed: this transaction's view, published by :meth:`publish`."""

    def __init__(self, schemas: StreamSchemas) -> None:
        self._schemas = schemas
        self._seen: dict[str, StreamConfig] = {}
        self.cur: duckdb.DuckDBPyConnection = None  # type: ignore[assignment]  # (set on entry)

    def publish(self) -> None:
        """(Once committed, under the store's lock.) The shapes read or changed become the
        cached ones."""
        self._schemas._cache.update(self._seen)

    def config(self, stream: str) -> StreamConfig:
        """The stream's shape in this transaction; LookupError if there is no such stream."""
        config = self._seen.get(stream) or self._schemas.cached(stream)
        if config is None:
            config = _read(self.cur, stream)
            if config is None:
                raise LookupError(stream)
        self._seen[stream] = config
        return config

    def existing(self, stream: str) -> StreamConfig:
        """:meth:`config`, with a stream that does not exist an error for the caller."""
        try:
            return self.config(stream)
        except LookupError:
            raise _unknown(stream) from None

    def create(self, config: StreamConfig, schema: Mapping[str, str]) -> StreamConfig:
        """Create the stream: its table, its staging table for backfills, its fields. The
        required fields and declared columns (``schema``) are checked first."""
        cur = self.cur
        if cur.execute("SELECT 1 FROM local.__meterql__.streams WHERE stream = ?",
                       [config.name]).fetchall():
            raise IngestError(f"event stream '{config.name}' exists")
        columns = _columns(config, schema)
        most = self._schemas._settings()["events_max_columns"]
        if len(columns) > most:
            raise InputLimitError(
                f"stream '{config.name}' would have {len(columns)} columns; a stream may have "
                f"{most} (setting events_max_columns)",
                hint="declare fewer columns, or raise the setting")
        ddl = ", ".join(f"{quote_ident(c)} {sql_type(t)}" for c, t in columns.items())
        for table in (f"local.events.{quote_ident(config.name)}", staged(config.name)):
            try:
                cur.execute(f"CREATE TABLE {table} ({ddl}, _ingested_at TIMESTAMPTZ NOT NULL, "
                            "_backfill VARCHAR)")
            except (duckdb.ParserException, duckdb.CatalogException,
                    duckdb.BinderException) as exc:
                raise IngestError(
                    f"the declared columns of stream '{config.name}' are not valid: "
                    f"{str(exc).splitlines()[0]}", hint=_TYPES_HINT) from None
        cur.execute("INSERT INTO local.__meterql__.streams (stream, id_field, timestamp_field, "
                    "customer_field, declared) VALUES (?, ?, ?, ?, ?)",
                    [config.name, config.id_field, config.timestamp_field,
                     config.customer_field, config.declared])
        self._seen.pop(config.name, None)
        return self.config(config.name)  # (the types as DuckDB spells them)

    # A new field is one ALTER TABLE of the stream (each costs DuckDB a new version of the
    # table's entry in the transaction); a backfill's staging table takes the stream's
    # columns only when a backfill writes to it (see sync_staging).
    def change_columns(self, config: StreamConfig, new: Mapping[str, str],
                       retyped: Mapping[str, str]) -> StreamConfig:
        """Add the ``new`` columns and change the type of the ``retyped`` ones (name ->
        type); the stream's shape after."""
        table = f"local.events.{quote_ident(config.name)}"
        for name, typ in new.items():
            self.cur.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(name)} "
                             f"{sql_type(typ)}")
        for name, typ in retyped.items():
            self.cur.execute(f"ALTER TABLE {table} ALTER COLUMN {quote_ident(name)} TYPE "
                             f"{sql_type(typ)}")
        changed = self._seen[config.name] = config.with_columns({**new, **retyped})
        return changed

    def sync_staging(self, config: StreamConfig) -> None:
        """Give the stream's staging table (backfills) the stream's columns and types."""
        have = dict(self.cur.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = "
            "'local' AND schema_name = ? AND table_name = ?",
            [META, staging_table(config.name)]).fetchall())
        table = staged(config.name)
        for name, typ in config.columns.items():
            column, rendered = quote_ident(name), sql_type(typ)
            if name not in have:
                self.cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {rendered}")
            elif have[name] != typ:
                self.cur.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {rendered}")


def _columns(config: StreamConfig, schema: Mapping[str, str]) -> dict[str, str]:
    """A new stream's columns: its required fields, then its declared ones (checked)."""
    required = {"id_field": config.id_field, "timestamp_field": config.timestamp_field,
                "customer_field": config.customer_field}
    for what, name in [*required.items(), *(("column", c) for c in schema)]:
        if not name or name.startswith("_"):
            raise IngestError(
                f"{what} {name!r} is not a valid field name",
                hint="use a non-empty name that does not start with _ (those are kept "
                "for meterql)")
    if len(set(required.values())) < 3:
        raise IngestError("the id, timestamp and customer fields must be three "
                                 f"different fields, not {', '.join(required.values())}")
    fixed = {config.id_field: "VARCHAR", config.timestamp_field: "TIMESTAMP WITH TIME ZONE",
             config.customer_field: "VARCHAR"}
    declared = {}
    for column, typ in schema.items():
        try:
            declared[column] = fillable(sql_type(typ))
            if column in fixed and declared[column] != fixed[column]:
                raise ValueError(f"a required field is always {fixed[column]}, not "
                                 f"{declared[column]}")
        except ValueError as exc:
            raise IngestError(
                f"the declared columns of stream '{config.name}' are not valid: column "
                f"{column!r:.80}: {exc}", hint=_TYPES_HINT) from None
    return {**fixed, **declared}
