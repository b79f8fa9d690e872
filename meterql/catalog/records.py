"""Aggregates, the evaluation log and API keys in the catalog file.

Each call uses its own cursor (DuckDB connections are not shared between threads), so the HTTP
server's threads can read and write these at the same time.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from meterql.aggregates.definition import Aggregate

_AGGREGATE_COLUMNS = "name, version, sql, description, unit, dialect, customer_column, created_at"


class Records:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        # Keys are checked on every API request; only this process writes them (the workspace
        # is locked to it), so a copy in memory stays right.
        self._keys: dict[str, tuple[str, str, datetime | None]] | None = None
        # Bumped after every key change: a copy read while a change was being written is
        # used for that one check and not kept (it may miss the change).
        self._keys_changed = 0
        self._aggregates: list[Aggregate] | None = None  # the same holds for aggregates

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    # -- aggregates ------------------------------------------------------------------------------
    def aggregate_versions(self, name: str | None = None) -> list[Aggregate]:
        """Every saved version (of one aggregate, or of all), oldest first."""
        every = self._aggregates
        if every is None:
            with self._cursor() as cur:
                rows = cur.execute(f"SELECT {_AGGREGATE_COLUMNS} FROM aggregates "
                                   "ORDER BY name, version").fetchall()
            every = self._aggregates = [_aggregate(row) for row in rows]
        return [a for a in every if name is None or a.name == name]

    def save_aggregate(self, draft: Aggregate) -> tuple[Aggregate, bool]:
        """Store ``draft`` as the next version, unless it equals the latest one. Returns the
        version in force and whether it is new."""
        with self._cursor() as cur:
            cur.execute("BEGIN")
            try:
                rows = cur.execute(
                    f"SELECT {_AGGREGATE_COLUMNS} FROM aggregates WHERE name = ? "
                    "ORDER BY version DESC LIMIT 1", [draft.name]).fetchall()
                latest = _aggregate(rows[0]) if rows else None
                if latest is not None and latest.content() == draft.content():
                    cur.execute("ROLLBACK")
                    return latest, False
                version = 1 if latest is None else latest.version + 1
                cur.execute(
                    "INSERT INTO aggregates (name, version, sql, description, unit, dialect, "
                    "customer_column) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [draft.name, version, draft.sql, draft.description, draft.unit,
                     draft.dialect, draft.customer_column])
                saved = _aggregate(cur.execute(
                    f"SELECT {_AGGREGATE_COLUMNS} FROM aggregates WHERE name = ? AND version = ?",
                    [draft.name, version]).fetchall()[0])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        self._aggregates = None
        return saved, True

    # -- evaluations -----------------------------------------------------------------------------
    def log_evaluation(self, entry: dict[str, Any]) -> None:
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [entry["id"], entry["aggregate"], entry["version"], entry["started_at"],
                 entry["seconds"], entry["rows"], entry["result_hash"],
                 json.dumps(entry["provenance"], default=str)])

    def evaluations(self, aggregate: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, args = ("WHERE aggregate = ?", [aggregate]) if aggregate else ("", [])
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT id, aggregate, version, started_at, seconds, rows, result_hash, "
                f"provenance FROM evaluations {where} ORDER BY started_at DESC LIMIT ?",
                [*args, limit]).fetchall()
        keys = ("id", "aggregate", "version", "started_at", "seconds", "rows", "result_hash")
        out = []
        for row in rows:
            entry = dict(zip(keys, row[:7], strict=True))
            entry["provenance"] = json.loads(row[7])
            out.append(entry)
        return out

    # -- API keys --------------------------------------------------------------------------------
    def add_api_key(self, key_id: str, name: str | None, scope: str, key_hash: str) -> None:
        with self._cursor() as cur:
            cur.execute("INSERT INTO api_keys (id, name, scope, key_hash) VALUES (?, ?, ?, ?)",
                        [key_id, name, scope, key_hash])
        self._keys_changed += 1
        self._keys = None

    def api_key(self, key_id: str) -> tuple[str, str, datetime | None] | None:
        """(scope, hash, revoked_at) of a key, or None."""
        keys = self._keys
        if keys is None:
            changes = self._keys_changed
            with self._cursor() as cur:
                rows = cur.execute("SELECT id, scope, key_hash, revoked_at FROM api_keys"
                                   ).fetchall()
            keys = {row[0]: tuple(row[1:]) for row in rows}
            if changes == self._keys_changed:
                self._keys = keys
        return keys.get(key_id)

    def api_keys(self) -> list[dict[str, Any]]:
        with self._cursor() as cur:
            rows = cur.execute("SELECT id, name, scope, created_at, revoked_at FROM api_keys "
                               "ORDER BY created_at").fetchall()
        return [dict(zip(("id", "name", "scope", "created_at", "revoked_at"), r, strict=True))
                for r in rows]

    def revoke_api_key(self, key_id: str) -> bool:
        with self._cursor() as cur:
            rows = cur.execute("UPDATE api_keys SET revoked_at = now() WHERE id = ? AND "
                               "revoked_at IS NULL RETURNING id", [key_id]).fetchall()
        self._keys_changed += 1
        self._keys = None  # the very next check reads the revocation
        return bool(rows)


def _aggregate(row: tuple) -> Aggregate:
    name, version, sql, description, unit, dialect, customer, created = row
    return Aggregate(name, sql, description, unit, dialect, customer, version, created)
