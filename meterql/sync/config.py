"""How each table of a synced source is copied: the strategies, their checks and defaults.

A strategy is chosen per table (:func:`choose_strategy`, which refuses a choice the table
cannot take, naming the fix); a table with none chosen gets its default (:func:`table_configs`):
``cdc`` for primary-key tables of a source whose change log is configured, else ``full``.
The strategies themselves are described in :mod:`meterql.sync.runner`.

Example:
    >>> from meterql.catalog import Column, Table
    >>> events = Table("pg", "public", "events", (Column("id", "BIGINT", "bigint"),
    ...                Column("at", "TIMESTAMP", "timestamp")), primary_key=("id",))
    >>> choose_strategy(events, "postgres", "append", cursor="AT")
    TableSyncConfig(strategy='append', cursor='at', lag=0, soft_delete=None, cluster_by=())
    >>> choose_strategy(events, "postgres", "full", cluster_by=["AT", "id"]).cluster_by
    ('at', 'id')
    >>> choose_strategy(events, "postgres", "merge")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    meterql.errors.InvalidSourceError: merge sync ... needs a cursor column (pass cursor= ...)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeGuard, get_args

from meterql.catalog import Source, Table
from meterql.dialects import dialect_for
from meterql.errors import InvalidSourceError

Strategy = Literal["full", "append", "merge", "cdc"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)

def _is_strategy(name: str) -> TypeGuard[Strategy]:
    return name in STRATEGIES


@dataclass(frozen=True)
class TableSyncConfig:
    """How one table is synced."""

    strategy: Strategy = "full"
    cursor: str | None = None
    lag: int = 0  # in the cursor's unit: seconds for timestamps, units for integers
    soft_delete: str | None = None  # merge: deletes at the source are updates of this column
    #: the replica keeps the table's rows in this order (its zone maps then skip the row groups
    #: of other keys: ``(customer_id, ts)`` makes one customer's reads touch one or two)
    cluster_by: tuple[str, ...] = ()

    @classmethod
    def stored(cls, strategy: str, cursor: str | None, lag: int,
               soft_delete: str | None, cluster_by: Sequence[str] = ()) -> TableSyncConfig:
        """A configuration as the catalog stores it (the strategy as text, checked here)."""
        if not _is_strategy(strategy):
            raise RuntimeError(f"the catalog holds an unknown sync strategy {strategy!r}")
        return cls(strategy, cursor, lag, soft_delete, tuple(cluster_by))


def choose_strategy(entry: Table, kind: str, strategy: str, cursor: str | None = None,
                    lag: int = 0, soft_delete: str | None = None,
                    cluster_by: Sequence[str] | None = None) -> TableSyncConfig:
    """The configuration of ``entry`` (a table of a source of ``kind``) for ``strategy``,
    with the cursor, soft-delete and clustering columns spelled as the table spells them; or
    :class:`InvalidSourceError` saying why the table cannot be synced so and what to use."""
    config = _choose(entry, kind, strategy, cursor, lag, soft_delete)
    return replace(config, cluster_by=_cluster_key(entry, cluster_by or ()))


def _cluster_key(entry: Table, names: Sequence[str]) -> tuple[str, ...]:
    """The clustering key's columns as the table spells them, each once."""
    key: list[str] = []
    for name in names:
        column = entry.column(name.strip())
        if column is None:
            close = difflib.get_close_matches(name.strip().lower(),
                                              [c.name.lower() for c in entry.columns], 1)
            raise InvalidSourceError(
                f"cluster_by: {entry.full_name} has no column {name!r}",
                table=entry.full_name,
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + "the key is columns of the table, e.g. customer_id, ts",
            )
        if column.name in key:
            raise InvalidSourceError(f"cluster_by names {column.name!r} twice",
                                     table=entry.full_name, hint="name each column once")
        key.append(column.name)
    return tuple(key)


def _choose(entry: Table, kind: str, strategy: str, cursor: str | None, lag: int,
            soft_delete: str | None) -> TableSyncConfig:
    if not _is_strategy(strategy):
        raise InvalidSourceError(
            f"unknown sync strategy '{strategy}'", hint="use one of: " + ", ".join(STRATEGIES)
        )
    if strategy == "cdc" and not dialect_for(kind).capabilities.change_log:
        raise InvalidSourceError(
            f"cdc sync reads PostgreSQL's change log; {entry.source} is a {kind} source",
            source=entry.source, table=entry.full_name,
            hint="use full, append or merge",
        )
    if strategy in ("merge", "cdc") and not entry.primary_key:
        raise InvalidSourceError(
            f"{strategy} sync of {entry.full_name} needs a primary key, and it has none",
            table=entry.full_name,
            hint="use full, or append for an append-only table",
        )
    if soft_delete is not None:
        column = entry.column(soft_delete)
        if strategy != "merge" or column is None:
            raise InvalidSourceError(
                f"soft_delete={soft_delete!r} does not apply to {strategy} sync of "
                f"{entry.full_name}",
                table=entry.full_name,
                hint="a soft-delete column is one of the table's columns, used by merge",
            )
        soft_delete = column.name
    if strategy in ("append", "merge"):
        column = entry.column(cursor or "")
        if column is None:
            names = ", ".join(c.name for c in entry.columns)
            raise InvalidSourceError(
                f"{strategy} sync of {entry.full_name} needs a cursor column",
                table=entry.full_name,
                hint=f"pass cursor= one of: {names}",
            )
        return TableSyncConfig(strategy, column.name, int(lag), soft_delete)
    return TableSyncConfig(strategy, None, int(lag), soft_delete)


def partition_columns(config: TableSyncConfig | None) -> tuple[str, ...]:
    """The columns a replica's Parquet snapshots may be partitioned by on the spark engine,
    in order (engine/spark/lake.py takes the first that is a date or a timestamp): its
    clustering key, then the cursor of an append sync.

    >>> partition_columns(TableSyncConfig("append", "at", cluster_by=("customer", "day")))
    ('customer', 'day', 'at')
    >>> partition_columns(TableSyncConfig("merge", "updated_at")), partition_columns(None)
    ((), ())
    """
    if config is None:
        return ()
    cursor = (config.cursor,) if config.strategy == "append" and config.cursor else ()
    return config.cluster_by + cursor


def table_configs(source: Source, tables: list[Table],
                  stored: Mapping[tuple[str, str], tuple[Any, ...]]
                  ) -> dict[tuple[str, str], TableSyncConfig]:
    """Each table's configuration: as stored in the catalog (``stored``, by (schema, table)),
    else ``cdc`` for primary-key tables of a source with a change log and a replication slot
    configured (tables without one are copied ``full``, the runner's default)."""
    chosen = {key: TableSyncConfig.stored(*row) for key, row in stored.items()}
    if "cdc_slot" in source.options and dialect_for(source.kind).capabilities.change_log:
        for table in tables:
            if table.primary_key and (table.schema, table.name) not in chosen:
                chosen[(table.schema, table.name)] = TableSyncConfig("cdc")
    return chosen
