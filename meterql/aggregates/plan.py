"""A dry run read like ``terraform plan``: what a draft changes, summed up first (customers
changed, rows to add, change and remove, the total before and after), then one row per change
with the current and draft quantities and their delta, periods in the evaluation's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from meterql.aggregates.definition import Aggregate


@dataclass(frozen=True)
class DryRunPlan:
    name: str
    against: int | None  # the current version; None for a new aggregate
    tz: str
    counts: dict[str, int]  # added, removed, changed, unchanged
    customers_changed: int
    current_total: Decimal
    draft_total: Decimal
    changes: pa.Table  # the key columns, change, current, draft, delta

    @property
    def delta(self) -> Decimal:
        return self.draft_total - self.current_total

    def summary(self) -> dict[str, Any]:
        return {"customers_changed": self.customers_changed, **self.counts,
                "current_total": self.current_total, "draft_total": self.draft_total,
                "delta": self.delta}


def dry_run_plan(out: dict[str, Any], draft: Aggregate) -> DryRunPlan:
    """The plan of ``AggregateBook.dry_run``'s answer (local or through a server)."""
    evaluation = out["draft"]
    tz = evaluation.tz
    changes = out["diff"]["changes"]
    delta = sum((_zero(c["draft"]) - _zero(c["current"]) for c in changes),
                Decimal(0))
    draft_total = sum((_zero(v) for v in evaluation.table.column("quantity").to_pylist()),
                      Decimal(0)) if "quantity" in evaluation.table.column_names else Decimal(0)
    customers = {str(c.get(draft.customer_column)) for c in changes}
    return DryRunPlan(draft.name, out["current_version"], tz, dict(out["diff"]["summary"]),
                      len(customers), draft_total - delta, draft_total, _changes(changes, tz))


def _changes(changes: list[dict[str, Any]], tz: str) -> pa.Table:
    keys = [k for k in (changes[0] if changes else {}) if k not in ("kind", "current", "draft")]
    zone = ZoneInfo(tz)
    columns: dict[str, pa.Array] = {}
    for key in keys:
        values = [c.get(key) for c in changes]
        if key == "period_start":
            columns[key] = pa.array([None if v is None else
                                     datetime.fromisoformat(str(v)).astimezone(zone)
                                     for v in values], pa.timestamp("us", tz=tz))
        else:
            columns[key] = pa.array(values)
    current = [_number(c["current"]) for c in changes]
    drafted = [_number(c["draft"]) for c in changes]
    columns["change"] = pa.array([c["kind"] for c in changes], pa.string())
    columns["current"] = pa.array(current, _decimal_type(current + drafted))
    columns["draft"] = pa.array(drafted, _decimal_type(current + drafted))
    deltas: list[Decimal | None] = [(d or Decimal(0)) - (c or Decimal(0))
                                     for c, d in zip(current, drafted, strict=True)]
    columns["delta"] = pa.array(deltas, _decimal_type(deltas))
    if not changes:
        return pa.table({"change": pa.array([], pa.string())})
    return pa.table(columns)


def _number(value: Any) -> Decimal | None:
    """A quantity, exact: a Decimal as it is, a JSON string or number through its text."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value) if isinstance(value, float) else str(value))


def _zero(value: Any) -> Decimal:
    return _number(value) or Decimal(0)


def _decimal_type(values: list[Decimal | None]) -> pa.DataType:
    """The narrowest decimal type that holds every value exactly (all of them at the largest
    scale among them)."""
    present = [v for v in values if v is not None and v.is_finite()]
    scale = max([max(0, -int(v.as_tuple().exponent)) for v in present] or [0])
    digits = max([len(v.quantize(Decimal(1).scaleb(-scale)).as_tuple().digits)
                  for v in present] or [1])
    return pa.decimal128(min(38, max(digits, scale + 1)), scale)
