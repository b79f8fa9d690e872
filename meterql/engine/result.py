"""What a query returns: Arrow rows plus the plan and what running it cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from meterql.engine.planner.plan import Plan

#: Schema metadata of a result that is a plan's text (EXPLAIN, EXPLAIN ANALYZE): one line a row.
PLAN_METADATA = b"meterql.plan"
#: Schema metadata of the result of ``SET TimeZone``: the zone the session takes.
TIME_ZONE_METADATA = b"meterql.time_zone"


def plan_table(text: str) -> pa.Table:
    """A plan's text as a result: a column ``plan``, one line a row, marked as a plan (the
    mark survives Arrow IPC, so a remote result is known as one too)."""
    return pa.table({"plan": text.splitlines()}, metadata={PLAN_METADATA: b"true"})


def plan_text(table: pa.Table) -> str | None:
    """The plan's text if ``table`` is one (see :func:`plan_table`), else ``None``: EXPLAIN is
    printed as plain text wherever it is shown, never as a table.

    >>> plan_text(plan_table("Plan: a\\n- b"))
    'Plan: a\\n- b'
    >>> plan_text(pa.table({"plan": ["x"]})) is None
    True
    """
    meta = table.schema.metadata or {}
    if meta.get(PLAN_METADATA) != b"true" or table.column_names != ["plan"]:
        return None
    return "\n".join(str(line) for line in table.column("plan").to_pylist())


def time_zone_table(zone: str) -> pa.Table:
    """The result of ``SET TimeZone``: one row naming the zone, marked with it."""
    return pa.table({"TimeZone": [zone]}, metadata={TIME_ZONE_METADATA: zone.encode()})


@dataclass
class FragmentStats:
    """Rows, bytes and time of one fragment (EXPLAIN ANALYZE)."""

    fragment: str
    source: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    note: str | None = None


@dataclass
class Result:
    """The answer to a query.

    Attributes:
        plan: how the query was run (``str(result.plan)`` is its EXPLAIN).
        truncated: the row cap cut the result short.
        seconds: wall time of the query.
        fragments: rows, bytes and time per fragment.
        watermarks: for every table read from a local replica, its last committed sync
            (table, strategy, synced_at, rows, cursor); for a table of an ``auto`` source,
            its ``route`` too (``replica``, or ``source`` with the ``reason``).
        warnings: what the caller should know about the answer (a table read from its
            replica because its source was unreachable).

    Example:
        >>> import pyarrow as pa
        >>> r = Result(pa.table({"n": [1, 2]}), plan=None)
        >>> r.to_pylist()
        [{'n': 1}, {'n': 2}]
    """

    table: pa.Table
    plan: Plan | None
    truncated: bool = False
    seconds: float = 0.0
    fragments: list[FragmentStats] = field(default_factory=list)
    watermarks: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pylist(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.table.to_pylist()
        return rows

    def rows(self) -> list[tuple[Any, ...]]:
        """Rows as tuples, in result order."""
        columns = [col.to_pylist() for col in self.table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    @property
    def time_zone(self) -> str | None:
        """The zone a ``SET TimeZone`` statement set (the caller's session keeps it and passes
        it as ``tz`` to its next queries); ``None`` for every other statement."""
        zone = (self.table.schema.metadata or {}).get(TIME_ZONE_METADATA)
        return None if zone is None else zone.decode()

    @property
    def columns(self) -> list[str]:
        names: list[str] = self.table.column_names
        return names

    @property
    def num_rows(self) -> int:
        count: int = self.table.num_rows
        return count
