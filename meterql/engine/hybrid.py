"""The hybrid route's contract: a table read as its replica plus the source's rows past the
watermark, combined the way the next sync would combine them.

The engine knows what to ask for (``Deltas``); the sync part knows each strategy's delta and
builds the ``Overlay`` (``meterql.sync.delta``), so "what the next sync would do" is written
once, beside the sync itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import duckdb
import pyarrow as pa


@dataclass
class Overlay:
    """One table as the next sync would leave its replica, without writing it.

    Attributes:
        sql: a DuckDB SELECT of the table's rows, in the replica's column order and types; it
            reads the replica and the names of ``frames``.
        frames: Arrow tables read from the source, to register under these names first.
        rows: rows read from the source.
        seconds: time spent reading them.
        note: one line on what was read (for EXPLAIN ANALYZE).
    """

    sql: str
    frames: dict[str, pa.Table] = field(default_factory=dict)
    rows: int = 0
    seconds: float = 0.0
    note: str = ""


class Deltas(Protocol):
    """What the engine asks of the replicas' sync: which tables have an exact delta, and
    the overlay of one of them."""

    def delta_of(self, table: str) -> str | None:
        """How the table's delta is read (``"append on id"``), or ``None`` when its sync
        strategy defines none (``full``) or its replica does not match the source's columns."""
        ...

    def overlay(self, cur: duckdb.DuckDBPyConnection, table: str, prefix: str) -> Overlay:
        """The table's overlay; ``cur`` is the query's cursor (the replica as the query reads
        it), ``prefix`` the names its frames may take."""
        ...


class NoDeltas:
    """An engine without replicas: no table has a delta."""

    def delta_of(self, table: str) -> str | None:
        return None

    def overlay(self, cur: duckdb.DuckDBPyConnection, table: str, prefix: str) -> Overlay:
        raise RuntimeError(f"{table} has no delta to read")
