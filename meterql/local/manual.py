"""Tables edited by hand: ``local.manual.<name>``, one row at a time by primary key.

Every change is recorded in ``local.__meterql__.audit``: the table, the action, the row's key,
the row before and after (JSON), who made it and when. Values are bound, never spliced, and
cast by DuckDB to the column's type; a value that does not fit is a :class:`DataError` naming
the column.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import duckdb

from meterql.errors import DataError, InvalidSourceError, ParameterError
from meterql.local.store import LocalStore
from meterql.sql_text import is_name, quote_ident, sql_type


class ManualTables:
    """``ws.manual``: create tables, insert, update and delete rows, read the audit."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store

    def create(self, name: str, columns: dict[str, str], key: list[str],
               actor: str | None = None) -> str:
        if not is_name(name):
            raise InvalidSourceError(f"'{name}' is not a valid table name",
                                     hint="use a lowercase identifier: letters, digits and _")
        if not columns or not key or any(k not in columns for k in key):
            raise ParameterError("a manual table needs columns and a key among them",
                                 hint="e.g. --column customer_id:VARCHAR --column credit:"
                                 "DECIMAL(18,2) --key customer_id")
        types = {}
        for column, typ in columns.items():
            try:
                types[column] = sql_type(typ)
            except ValueError as exc:
                raise ParameterError(f"column {column!r:.80} of local.manual.{name}: {exc}",
                                     hint="column types are DuckDB types, such as VARCHAR, "
                                     "BIGINT or DECIMAL(18,2)") from None
        cols = ", ".join(f"{quote_ident(c)} {t}" for c, t in types.items())
        keys = ", ".join(quote_ident(k) for k in key)
        with self._store.write() as cur:
            try:
                cur.execute(f"CREATE TABLE local.manual.{quote_ident(name)} ({cols}, "
                            f"PRIMARY KEY ({keys}))")
            except duckdb.CatalogException as exc:
                raise InvalidSourceError(f"local.manual.{name} exists",
                                         hint="pick another name") from exc
            except duckdb.Error as exc:
                raise ParameterError(f"cannot create local.manual.{name}: "
                                     f"{str(exc).splitlines()[0]}",
                                     hint="column types are DuckDB types") from exc
            self._audit(cur, name, "create", {}, None, {"columns": columns, "key": key}, actor)
        self._store.refresh_catalog()
        return f"local.manual.{name}"

    def insert(self, table: str, values: dict[str, Any], actor: str | None = None
               ) -> dict[str, Any]:
        key_cols, target = self._table(table)
        names = ", ".join(quote_ident(c) for c in values)
        marks = ", ".join("?" for _ in values)
        with self._store.write() as cur:
            self._run(cur, f"INSERT INTO {target} ({names}) VALUES ({marks})",
                      list(values.values()), table)
            key = {k: values.get(k) for k in key_cols}
            after = self._row(cur, target, key)
            self._audit(cur, table, "insert", key, None, after, actor)
            self._store.touch(cur, f"manual.{table}")
        return _parse(after)

    def update(self, table: str, key: dict[str, Any], changes: dict[str, Any],
               actor: str | None = None) -> dict[str, Any]:
        key_cols, target = self._table(table)
        key = self._key(key_cols, key, table)
        sets = ", ".join(f"{quote_ident(c)} = ?" for c in changes)
        where = " AND ".join(f"{quote_ident(k)} = ?" for k in key)
        with self._store.write() as cur:
            before = self._row(cur, target, key)
            if before is None:
                raise DataError(f"local.manual.{table} has no row with key {key}")
            self._run(cur, f"UPDATE {target} SET {sets} WHERE {where}",
                      [*changes.values(), *key.values()], table)
            new_key = {k: changes.get(k, v) for k, v in key.items()}
            after = self._row(cur, target, new_key)
            self._audit(cur, table, "update", key, before, after, actor)
            self._store.touch(cur, f"manual.{table}")
        return _parse(after)

    def delete(self, table: str, key: dict[str, Any], actor: str | None = None) -> None:
        key_cols, target = self._table(table)
        key = self._key(key_cols, key, table)
        where = " AND ".join(f"{quote_ident(k)} = ?" for k in key)
        with self._store.write() as cur:
            before = self._row(cur, target, key)
            if before is None:
                raise DataError(f"local.manual.{table} has no row with key {key}")
            cur.execute(f"DELETE FROM {target} WHERE {where}", list(key.values()))
            self._audit(cur, table, "delete", key, before, None, actor)
            self._store.touch(cur, f"manual.{table}")

    def audit(self, table: str | None = None) -> list[dict[str, Any]]:
        with self._store.read() as cur:
            rows = cur.execute(
                "SELECT table_name, action, row_key, before, after, actor, changed_at "
                "FROM local.__meterql__.audit WHERE ? IS NULL OR table_name = ? "
                "ORDER BY changed_at, rowid", [table, table]).fetchall()
        return [{"table": r[0], "action": r[1], "key": json.loads(r[2]),
                 "before": _parse(r[3]), "after": _parse(r[4]),
                 "actor": r[5],
                 "changed_at": r[6]} for r in rows]

    # -- helpers -------------------------------------------------------------------------------
    def _table(self, table: str) -> tuple[list[str], str]:
        with self._store.read() as cur:
            rows = cur.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() WHERE database_name "
                "= 'local' AND schema_name = 'manual' AND table_name = ? AND constraint_type = "
                "'PRIMARY KEY'", [table]).fetchall()
        if not rows:
            raise InvalidSourceError(f"no manual table local.manual.{table}",
                                     hint="create it with 'meterql rows create'")
        return list(rows[0][0]), f"local.manual.{quote_ident(table)}"

    @staticmethod
    def _key(key_cols: list[str], key: dict[str, Any], table: str) -> dict[str, Any]:
        if set(key) != set(key_cols):
            raise ParameterError(f"local.manual.{table} is keyed by {', '.join(key_cols)}",
                                 hint="give every key column, and only those")
        return {k: key[k] for k in key_cols}

    @staticmethod
    def _row(cur, target: str, key: dict[str, Any]) -> str | None:
        """The row as DuckDB's JSON (decimals written exactly), or None."""
        where = " AND ".join(f"{quote_ident(k)} = ?" for k in key)
        rows = cur.execute(f"SELECT to_json(t) FROM {target} t WHERE {where}",
                           list(key.values())).fetchall()
        return rows[0][0] if rows else None

    @staticmethod
    def _run(cur, sql: str, params: list[Any], table: str) -> None:
        try:
            cur.execute(sql, params)
        except duckdb.ConstraintException as exc:
            raise DataError(f"local.manual.{table}: {str(exc).splitlines()[0]}",
                            hint="a row with that key exists; update it instead") from exc
        except (duckdb.ConversionException, duckdb.BinderException,
                duckdb.InvalidInputException) as exc:
            raise DataError(f"local.manual.{table}: {str(exc).splitlines()[0]}",
                            hint="check the column names and that each value fits its type"
                            ) from exc

    @staticmethod
    def _audit(cur, table, action, key, before, after, actor) -> None:
        cur.execute("INSERT INTO local.__meterql__.audit (table_name, action, row_key, before, "
                    "after, actor) VALUES (?, ?, ?, ?, ?, ?)",
                    [table, action, json.dumps(key, default=str), _text(before), _text(after),
                     actor])


def _text(row: str | dict[str, Any] | None) -> str | None:
    return row if row is None or isinstance(row, str) else json.dumps(row, default=str)


def _parse(row: str | None) -> dict[str, Any] | None:
    return None if row is None else json.loads(row, parse_float=Decimal)
