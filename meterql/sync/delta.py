"""Each incremental strategy's delta, for the sync run and for the hybrid route alike.

A sync run reads the delta and writes it into the replica; a hybrid read reads the same delta
and combines it with the replica in a query (``Overlay.sql``) exactly as the run would write it,
so "the hybrid answer equals sync-then-replica" holds by construction:

- ``append``: the source's rows with ``cursor >= low`` (``low`` = the replica's last cursor
  value minus the lag) replace the replica's rows in that window;
- ``merge``: the rows with ``cursor >= low`` replace the replica's rows by key; the replica's
  rows whose key the source no longer has are gone (unless deletes are soft, i.e. updates of a
  column the cursor carries);
- ``cdc``: the slot's pending changes, peeked without consuming them, applied per key as the
  run applies them (``meterql.sync.cdc.overlay``).

``full`` has no delta (a hybrid read would be the whole table: the source route is that).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
from sqlglot import exp

from meterql.catalog import Catalog, Table
from meterql.connectors import Connector
from meterql.dialects import dialect_for
from meterql.engine.hybrid import Overlay
from meterql.engine.planner.scan_sql import ScanSelect, scan_select
from meterql.sql_text import quote_ident, quote_qualified
from meterql.sync.cdc import applied_position, slot_names
from meterql.sync.cdc import overlay as cdc_overlay
from meterql.sync.config import TableSyncConfig, table_configs
from meterql.wording import count

#: The strategies whose delta a hybrid read can take.
HYBRID_STRATEGIES = ("append", "merge", "cdc")


def minus_lag(value: Any, lag: int) -> Any:
    """The cursor's low end for a lag: seconds for dates and timestamps, units otherwise.

    >>> minus_lag(100, 5), minus_lag(datetime(2026, 1, 1, 0, 0, 10), 10)
    (95, datetime.datetime(2026, 1, 1, 0, 0))
    """
    if not lag:
        return value
    if isinstance(value, datetime | date):
        return value - timedelta(seconds=lag)
    return value - lag


def delta_scan(cur: duckdb.DuckDBPyConnection, table: Table, config: TableSyncConfig,
               kind: str) -> tuple[ScanSelect, list[Any], Any]:
    """The source read of an ``append`` or ``merge`` delta: the scan, its parameters and the
    window's low end (``None`` when the replica has no cursor value yet: every row is read)."""
    if config.cursor is None:
        raise RuntimeError(f"the {config.strategy} sync of {table.full_name} has no cursor")
    target = quote_qualified(table.source, table.schema, table.name)
    last = cur.execute(f"SELECT max({quote_ident(config.cursor)}) FROM {target}").fetchall()[0][0]
    conditions: list[exp.Expression] = []
    params: list[Any] = []
    low = None
    if last is not None:
        low = minus_lag(last, config.lag)
        conditions.append(exp.GTE(this=exp.column(config.cursor),
                                  expression=exp.Placeholder(this="cursor")))
        params = [low]
    scan = scan_select(table, list(table.columns), dialect_for(kind), conditions,
                       scaled_integers=True)
    return scan, params, low


def key_scan(table: Table, kind: str) -> ScanSelect:
    """The source read of a table's primary-key columns (merge's delete reconciliation)."""
    columns = []
    for name in table.primary_key:
        column = table.column(name)
        if column is None:
            raise RuntimeError(f"{table.full_name} has no column {name} of its primary key")
        columns.append(column)
    return scan_select(table, columns, dialect_for(kind))


def replica_columns(cur: duckdb.DuckDBPyConnection, table: Table) -> list[tuple[str, str]]:
    """The replica table's (column, DuckDB type) in order; empty when it does not exist."""
    return cur.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [table.source, table.schema, table.name]).fetchall()


def column_change(cur: duckdb.DuckDBPyConnection, table: Table
                  ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]] | None:
    """The replica's (column, type) list and the source's, when the replica exists and they
    differ (the next run copies the table whole); else ``None``."""
    had = replica_columns(cur, table)
    return _changed(cur, table, had)


def _changed(cur: duckdb.DuckDBPyConnection, table: Table, had: list[tuple[str, str]]
             ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]] | None:
    wanted = [(c.name, _normal_type(cur, c.type)) for c in table.columns]
    return None if not had or had == wanted else (had, wanted)


def _normal_type(cur: duckdb.DuckDBPyConnection, duckdb_type: str) -> str:
    """A type as DuckDB spells it in its catalog (``DECIMAL(18, 6)`` -> ``DECIMAL(18,6)``)."""
    spelt = _SPELLINGS.get(duckdb_type)
    if spelt is None:
        spelt = cur.execute(f"SELECT typeof(CAST(NULL AS {duckdb_type}))").fetchall()[0][0]
        _SPELLINGS[duckdb_type] = spelt
    return spelt


#: Types as DuckDB spells them, by the catalog's spelling (the same for one DuckDB; the
#: hybrid route checks a table's columns at every query).
_SPELLINGS: dict[str, str] = {}


class ReplicaDeltas:
    """The engine's ``Deltas`` over the workspace's replicas (``meterql.engine.hybrid``)."""

    def __init__(self, catalog: Catalog, connector: Callable[[str], Connector],
                 duck: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._catalog = catalog
        self._connector = connector
        self._duck = duck

    def config(self, table: Table) -> TableSyncConfig:
        source = self._catalog.source(table.source)
        configs = table_configs(source, [table], self._catalog.sync_configs(source.name))
        return configs.get((table.schema, table.name), TableSyncConfig())

    def delta_of(self, name: str) -> str | None:
        table = self._catalog.table(name)
        config = self.config(table)
        if config.strategy not in HYBRID_STRATEGIES:
            return None
        cur = self._duck().cursor()
        try:
            had = replica_columns(cur, table)
            if not had or _changed(cur, table, had) is not None:
                return None  # not synced yet, or the next sync copies it whole
            if config.strategy == "cdc":
                if applied_position(cur, table) is None:
                    return None
                return f"cdc from slot {slot_names(self._catalog.source(table.source))[0]}"
        finally:
            cur.close()
        if config.strategy == "merge" and config.soft_delete is None:
            return f"merge on {config.cursor}, deletes found by reading every key"
        return f"{config.strategy} on {config.cursor}"

    def overlay(self, cur: duckdb.DuckDBPyConnection, name: str, prefix: str) -> Overlay:
        t0 = time.perf_counter()
        table = self._catalog.table(name)
        config = self.config(table)
        connector = self._connector(table.source)
        if config.strategy == "cdc":
            return cdc_overlay(cur, connector, table, prefix)
        kind = connector.source.kind
        target = quote_qualified(table.source, table.schema, table.name)
        columns = replica_columns(cur, table)
        names = ", ".join(quote_ident(c) for c, _ in columns)
        delta, keys = f"{prefix}_delta", f"{prefix}_keys"
        typed = ", ".join(f"CAST({quote_ident(c)} AS {t}) AS {quote_ident(c)}" for c, t in columns)
        frames = {}
        scan, params, low = delta_scan(cur, table, config, kind)
        with connector.snapshot():  # the delta and the keys: one moment of the source
            with connector.stream(scan.sql, params, schema=scan.schema) as reader:
                frames[delta] = reader.read_all()
            if config.strategy == "merge" and config.soft_delete is None:
                ks = key_scan(table, kind)
                with connector.stream(ks.sql, [], schema=ks.schema) as reader:
                    frames[keys] = reader.read_all()
        rows = frames[delta].num_rows
        delta_sql = f"SELECT {typed} FROM {quote_ident(delta)}"
        if config.strategy == "append":
            assert config.cursor is not None
            kept = f"SELECT {names} FROM {target}"
            if low is not None:
                # the run deletes cursor >= low: rows with a NULL cursor stay
                ctype = dict((c.lower(), t) for c, t in columns)[config.cursor.lower()]
                frames[f"{prefix}_low"] = cur.sql(
                    f"SELECT CAST(? AS {ctype}) AS low", params=[low]).to_arrow_table()
                kept += (f" WHERE ({quote_ident(config.cursor)} >= (SELECT low FROM "
                         f"{quote_ident(prefix + '_low')})) IS NOT TRUE")
            sql = f"{kept} UNION ALL {delta_sql}"
        else:
            key = ", ".join(quote_ident(k) for k in table.primary_key)
            sql = (f"WITH d AS ({delta_sql}) SELECT {names} FROM {target} WHERE ({key}) NOT IN "
                   f"(SELECT ({key}) FROM d) UNION ALL SELECT {names} FROM d")
            if keys in frames:
                sql = (f"SELECT {names} FROM ({sql}) WHERE ({key}) IN "
                       f"(SELECT ({key}) FROM {quote_ident(keys)})")
        window = "every row" if low is None else f"{config.cursor} >= {low}"
        note = (f"{config.strategy} delta: {count(rows, 'row')} with {window}"
                + (f", and {count(frames[keys].num_rows, 'key')}" if keys in frames else ""))
        return Overlay(sql, frames, rows, time.perf_counter() - t0, note)

