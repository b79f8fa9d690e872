"""Saved aggregate versions and the evaluation log, in the catalog file (``catalog.duckdb``).

The tables (``aggregates``, ``evaluations``) are created by the catalog's migration chain
(``catalog/store.py``); this module only reads and writes them, so the catalog knows nothing of
aggregates. Each call uses its own cursor (DuckDB connections are not shared between threads),
so the HTTP server's threads can read and write at the same time.

Example:
    >>> import duckdb
    >>> from meterql.aggregates import new_aggregate
    >>> from meterql.catalog.store import CatalogStore
    >>> con = duckdb.connect()
    >>> _ = CatalogStore(con)  # (the catalog's migrations create the tables)
    >>> store = AggregateStore(con)
    >>> saved, new = store.save(new_aggregate("calls", "SELECT customer_id, count(*) AS "
    ...     "quantity FROM t WHERE ts >= :period_start AND ts < :period_end GROUP BY 1"))
    >>> (saved.version, new, [a.version for a in store.versions("calls")])
    (1, True, [1])
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from meterql.aggregates.definition import Aggregate

_AGGREGATE_COLUMNS = ("name, version, sql, description, unit, dialect, customer_column, "
                      "created_at, freshness")


class AggregateStore:
    """Aggregate versions (immutable, numbered from 1) and the log of evaluations."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        # Only the process holding the workspace lock writes aggregates, so a copy in memory
        # stays right; every save drops it.
        self._aggregates: list[Aggregate] | None = None

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    # -- versions --------------------------------------------------------------------------------
    def versions(self, name: str | None = None) -> list[Aggregate]:
        """Every saved version (of one aggregate, or of all), oldest first."""
        every = self._aggregates
        if every is None:
            with self._cursor() as cur:
                rows = cur.execute(f"SELECT {_AGGREGATE_COLUMNS} FROM aggregates "
                                   "ORDER BY name, version").fetchall()
            every = self._aggregates = [_aggregate(row) for row in rows]
        return [a for a in every if name is None or a.name == name]

    def save(self, draft: Aggregate) -> tuple[Aggregate, bool]:
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
                if latest is None:
                    version = 1
                elif latest.version is not None:
                    version = latest.version + 1
                else:
                    raise RuntimeError(f"the stored aggregate '{draft.name}' has no version")
                cur.execute(
                    "INSERT INTO aggregates (name, version, sql, description, unit, dialect, "
                    "customer_column, freshness) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [draft.name, version, draft.sql, draft.description, draft.unit,
                     draft.dialect, draft.customer_column, draft.freshness])
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
        """Append one evaluation: id, aggregate, version, started_at, seconds, rows,
        result_hash and provenance (stored as JSON)."""
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [entry["id"], entry["aggregate"], entry["version"], entry["started_at"],
                 entry["seconds"], entry["rows"], entry["result_hash"],
                 json.dumps(entry["provenance"], default=str)])

    def evaluations(self, aggregate: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The latest ``limit`` evaluations (of one aggregate, or of all), newest first."""
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


def _aggregate(row: tuple) -> Aggregate:
    name, version, sql, description, unit, dialect, customer, created, freshness = row
    return Aggregate(name, sql, description, unit, dialect, customer, version, created,
                     freshness=freshness)
