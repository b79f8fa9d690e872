"""Tables edited by hand: ``local.manual.<name>``, one row at a time by primary key.

Every change is recorded in ``local.__meterql__.audit``: the table, the action, the row's key,
the row before and after (JSON), who made it and when. Values are bound, never spliced.

Each value (and each key value) is checked against its column's type before DuckDB casts it,
since DuckDB's casts are lenient (``true`` becomes ``1.00``, ``12.345`` becomes ``12.35``,
an object becomes its Python text). A value that does not fit is a :class:`DataError` naming
the column and the value:

- a number column (integers, DECIMAL, FLOAT, DOUBLE) takes a number or a number as text, never
  a boolean; an exact column (integers, DECIMAL) refuses more decimal places than it keeps
  unless ``round_decimals`` is set (see :mod:`meterql.local.exact`);
- a BOOLEAN column takes a boolean or text (``true``, ``false``, ``t``, ``1`` ...), never a
  number;
- a JSON column takes any JSON value (text is taken as JSON text, as the CLI sends it);
  LIST, ARRAY, STRUCT and MAP columns take a list or an object, or their text;
- every other column (VARCHAR, DATE, TIMESTAMP ...) takes text (or a Python value of its type,
  such as a ``date``): a number or a boolean is refused rather than turned into text, as for
  event streams, and an object or a list is refused for every column but those above.

Text is cast by DuckDB to the column's type: it is how the CLI sends every value.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal

import duckdb

from meterql import exact_json
from meterql.errors import ConflictError, DataError, IngestError
from meterql.local.exact import TooPrecise, exact_scale, fit_number, parse_number
from meterql.local.store import LocalStore
from meterql.sql_text import is_name, quote_ident, sql_type, sql_types

#: What a column takes, by its type (see the module's docstring).
Kind = Literal["json", "nested", "boolean", "exact", "float", "text"]
#: The JSON values other than text (and null) each kind of column takes; text goes to all.
_TAKES: dict[Kind, tuple[str, ...]] = {
    "json": ("an object", "a list", "a boolean", "a number"),
    "nested": ("a list", "an object"), "boolean": ("a boolean",), "exact": ("a number",),
    "float": ("a number",), "text": ()}


class ManualTables:
    """``ws.manual``: create tables, insert, update and delete rows, read the audit."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store

    def create(self, name: str, columns: dict[str, str], key: list[str],
               actor: str | None = None) -> str:
        if not is_name(name):
            raise IngestError(f"'{name}' is not a valid table name",
                                     hint="use a lowercase identifier: letters, digits and _")
        if not columns or not key or any(k not in columns for k in key):
            raise IngestError("a manual table needs columns and a key among them",
                                 hint="e.g. --column customer_id:VARCHAR --column 'credit:"
                                 "DECIMAL(18,2)' --key customer_id")
        types = sql_types(columns, f"local.manual.{name}", IngestError)
        cols = ", ".join(f"{quote_ident(c)} {sql_type(t)}" for c, t in types.items())
        keys = ", ".join(quote_ident(k) for k in key)
        with self._store.write() as cur:
            try:
                cur.execute(f"CREATE TABLE local.manual.{quote_ident(name)} ({cols}, "
                            f"PRIMARY KEY ({keys}))")
            except duckdb.CatalogException as exc:
                raise IngestError(f"local.manual.{name} exists",
                                         hint="pick another name") from exc
            except duckdb.Error as exc:
                raise IngestError(f"cannot create local.manual.{name}: "
                                     f"{str(exc).splitlines()[0]}",
                                     hint="column types are DuckDB types") from exc
            self._audit(cur, name, "create", {}, None, {"columns": columns, "key": key}, actor)
        self._store.refresh_catalog()
        return f"local.manual.{name}"

    def insert(self, table: str, values: dict[str, Any], actor: str | None = None, *,
               round_decimals: bool = False) -> dict[str, Any]:
        """Insert one row; returns it as stored.

        Example::

            ws.manual.insert("credits", {"customer_id": "acme", "amount": "25"})
            # {'customer_id': 'acme', 'amount': Decimal('25.00')}

        Raises:
            DataError: a value does not fit its column (``12.345`` in a ``DECIMAL(18,2)``
                unless ``round_decimals``), a key column has no value, or the key exists.
        """
        key_cols, target, types = self._table(table)
        if not values:
            raise IngestError(f"a row of local.manual.{table} needs values",
                                 hint=f"give at least its key: {', '.join(key_cols)}")
        values = _fit_row(table, types, values, round_decimals)
        for column in key_cols:
            if values.get(column) is None:
                raise DataError(f"local.manual.{table}: the key column {column} needs a value",
                                table=f"local.manual.{table}",
                                hint=f"give every key column: {', '.join(key_cols)}")
        names = ", ".join(quote_ident(c) for c in values)
        marks = ", ".join("?" for _ in values)
        with self._store.write() as cur:
            self._run(cur, f"INSERT INTO {target} ({names}) VALUES ({marks})",
                      list(values.values()), table)
            key = {k: values.get(k) for k in key_cols}
            after = self._row(cur, target, key, types)
            self._audit(cur, table, "insert", key, None, after, actor)
            self._store.touch(cur, f"manual.{table}")
            return self._stored(cur, target, key, types)

    def update(self, table: str, key: dict[str, Any], changes: dict[str, Any],
               actor: str | None = None, *, round_decimals: bool = False) -> dict[str, Any]:
        """Change the row with ``key``; returns it as stored (values checked as by
        :meth:`insert`; the key is never rounded)."""
        key_cols, target, types = self._table(table)
        key = _fit_row(table, types, self._key(key_cols, key, table), False, "key column")
        if not changes:
            raise IngestError(f"no change given for the row of local.manual.{table}",
                                 hint="give the new values of the columns to change")
        changes = _fit_row(table, types, changes, round_decimals)
        sets = ", ".join(f"{quote_ident(c)} = ?" for c in changes)
        where = " AND ".join(f"{quote_ident(k)} = ?" for k in key)
        with self._store.write() as cur:
            before = self._row(cur, target, key, types)
            if before is None:
                raise DataError(f"local.manual.{table} has no row with key {key}")
            self._run(cur, f"UPDATE {target} SET {sets} WHERE {where}",
                      [*changes.values(), *key.values()], table)
            new_key = {k: changes.get(k, v) for k, v in key.items()}
            after = self._row(cur, target, new_key, types)
            self._audit(cur, table, "update", key, before, after, actor)
            self._store.touch(cur, f"manual.{table}")
            return self._stored(cur, target, new_key, types)

    def delete(self, table: str, key: dict[str, Any], actor: str | None = None) -> None:
        key_cols, target, types = self._table(table)
        key = _fit_row(table, types, self._key(key_cols, key, table), False, "key column")
        where = " AND ".join(f"{quote_ident(k)} = ?" for k in key)
        with self._store.write() as cur:
            before = self._row(cur, target, key, types)
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
    def _table(self, table: str) -> tuple[list[str], str, dict[str, str]]:
        """The table's key columns, its quoted name, and its columns' types."""
        with self._store.read() as cur:
            rows = cur.execute(
                "SELECT constraint_column_names FROM duckdb_constraints() WHERE database_name "
                "= 'local' AND schema_name = 'manual' AND table_name = ? AND constraint_type = "
                "'PRIMARY KEY'", [table]).fetchall()
            types = dict(cur.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = "
                "'local' AND schema_name = 'manual' AND table_name = ? ORDER BY column_index",
                [table]).fetchall())
        if not rows:
            raise IngestError(f"no manual table local.manual.{table}",
                                     hint="create it with 'meterql rows create'")
        return list(rows[0][0]), f"local.manual.{quote_ident(table)}", types

    @staticmethod
    def _key(key_cols: list[str], key: dict[str, Any], table: str) -> dict[str, Any]:
        if set(key) != set(key_cols):
            raise IngestError(f"local.manual.{table} is keyed by {', '.join(key_cols)}",
                                 hint="give every key column, and only those")
        return {k: key[k] for k in key_cols}

    @staticmethod
    def _row(cur, target: str, key: dict[str, Any], types: dict[str, str]) -> str | None:
        """The row as the audit keeps it (JSON), or None: each value as the table shows it,
        a decimal with its column's scale (``25.00``, never ``25.0``: DuckDB's ``to_json``
        drops trailing zeros of some decimal widths), a time in ISO 8601."""
        where = " AND ".join(f"{quote_ident(k)} = ?" for k in key)
        cur.execute(f"SELECT * FROM {target} WHERE {where}", list(key.values()))
        found = cur.fetchone()
        if found is None:
            return None
        names = [d[0] for d in cur.description]
        row = {n: exact_json.loads(v) if isinstance(v, str) and types.get(n) == "JSON"
               else _audit_value(v) for n, v in zip(names, found, strict=True)}
        return exact_json.dumps(row)

    @staticmethod
    def _stored(cur, target: str, key: dict[str, Any], types: dict[str, str]
                ) -> dict[str, Any]:
        """The row as stored, as typed values (a timestamp a datetime, a decimal a Decimal, a
        JSON column its value with exact numbers): every answer renders them the same way
        (meterql.encoders.json_value)."""
        where = " AND ".join(f"{quote_ident(k)} = ?" for k in key)
        cur.execute(f"SELECT * FROM {target} WHERE {where}", list(key.values()))
        names = [d[0] for d in cur.description]
        row = dict(zip(names, cur.fetchone(), strict=True))
        for name, value in row.items():
            if isinstance(value, str) and types.get(name) == "JSON":
                row[name] = exact_json.loads(value)
        return row

    @staticmethod
    def _run(cur, sql: str, params: list[Any], table: str) -> None:
        try:
            cur.execute(sql, params)
        except duckdb.ConstraintException as exc:
            reason = str(exc).splitlines()[0]
            if "NOT NULL" in reason:
                raise DataError(f"local.manual.{table}: {reason}",
                                hint="every key column needs a value") from exc
            raise ConflictError(f"local.manual.{table}: {reason}", table=f"local.manual.{table}",
                                hint="a row with that key exists; update it instead") from exc
        except (duckdb.DataError, duckdb.BinderException,
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


def _fit_row(table: str, types: dict[str, str], values: dict[str, Any], round_decimals: bool,
             what: str = "column") -> dict[str, Any]:
    """``values`` as they are bound for their columns, or a :class:`DataError` whose message
    and hint are those of the first that does not fit and whose ``rows`` name every one (a form
    shows each cell's reason next to it)."""
    fitted = {}
    refused: list[tuple[str, Any, ValueError]] = []
    for column, value in values.items():
        if column not in types:
            raise DataError(f"local.manual.{table} has no column {column!r:.80}",
                            table=f"local.manual.{table}",
                            hint="its columns: " + ", ".join(types))
        try:
            fitted[column] = _fit(value, types[column], round_decimals)
        except ValueError as exc:
            refused.append((column, value, exc))
    if refused:
        first, _, problem = refused[0]
        raise DataError(f"local.manual.{table}: {what} {first}: {problem}",
                        table=f"local.manual.{table}",
                        rows=[{"column": c, "reason": str(e), "value": (
                            v if isinstance(v, str) else _shown(v))} for c, v, e in refused],
                        hint=_hint(types[first], problem))
    return fitted


def _kind(typ: str) -> Kind:
    if typ == "JSON":
        return "json"
    if typ.endswith("]") or typ.startswith(("STRUCT(", "MAP(", "UNION(")):
        return "nested"
    if typ == "BOOLEAN":
        return "boolean"
    if exact_scale(typ) is not None:
        return "exact"
    if typ in ("FLOAT", "DOUBLE"):
        return "float"
    return "text"


def _fit(value: Any, typ: str, round_decimals: bool) -> Any:
    """``value`` as it is bound for a column of type ``typ``; :class:`ValueError` with the
    reason when it does not fit."""
    if value is None:
        return None
    kind = _kind(typ)
    if kind == "json":
        if not isinstance(value, str):
            return _json_text(value)
        try:
            json.loads(value)
        except ValueError:
            raise ValueError(f"{_shown(value)} is not JSON text ({typ})") from None
        return value
    given = ("an object" if isinstance(value, dict) else
             "a list" if isinstance(value, (list, tuple)) else
             "a boolean" if isinstance(value, bool) else
             "a number" if isinstance(value, (int, float, Decimal)) else None)
    if given is not None and given not in _TAKES[kind]:
        raise ValueError(f"{_shown(value)} is {given}, not {_expected(kind)} ({typ})")
    if kind != "exact" or not isinstance(value, (str, int, float, Decimal)):
        return value  # (text and Python values are cast by DuckDB)
    if isinstance(value, str):
        number, shown = parse_number(value), value.strip()
        if number is None:
            raise ValueError(f"{_shown(value)} is not a number ({typ})")
    else:  # a float is taken as it prints (0.1, not 0.1000000000000000055511151231257827)
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        shown = _shown(value)
    fitted = fit_number(number, typ, round_decimals, shown=shown[:80])
    return int(fitted) if exact_scale(typ) == 0 else fitted


def _json_text(value: Any) -> str:
    """``value`` as JSON text, its numbers exactly as given (``json.dumps`` cannot write a
    Decimal, and DuckDB's own conversion turns ``[1, "a"]`` into ``["1","a"]``)."""
    try:
        return exact_json.dumps(value)
    except (TypeError, ValueError):
        raise ValueError(f"{_shown(value)} is not a JSON value") from None


def _expected(kind: Kind) -> str:
    """What a column of ``kind`` takes, in words."""
    return {"json": "JSON", "text": "text"}.get(kind) or " or ".join(_TAKES[kind])


def _shown(value: Any) -> str:
    """A value as a message shows it: as JSON where it is a JSON value, at most 80 characters."""
    if isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, (bool, dict, list, tuple)) or value is None:
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _hint(typ: str, problem: ValueError) -> str:
    if isinstance(problem, TooPrecise):
        return ("send the value as the column keeps it, or ask for rounding (--round, "
                "round=true, round_decimals=True)")
    return f"the column is {typ}: send {_expected(_kind(typ))}"


def _text(row: str | dict[str, Any] | None) -> str | None:
    return row if row is None or isinstance(row, str) else json.dumps(row, default=str)


def _audit_value(value: Any) -> Any:
    """A stored value as audit JSON holds it: decimals exact (with their scale), times in ISO
    8601, bytes in hex, NaN and infinities as text; lists and structs throughout."""
    if value is None or isinstance(value, (bool, int, str, Decimal)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_audit_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _audit_value(v) for k, v in value.items()}
    return str(value)


def _parse(row: str | None) -> dict[str, Any] | None:
    return None if row is None else json.loads(row, parse_float=Decimal)
