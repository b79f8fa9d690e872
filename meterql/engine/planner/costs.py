"""The cost of reading one table reference from its source or from its replica, in one line
a person can check.

- **Rows selected** from the source's statistics (``Catalog.statistics``): ``col = value`` and
  ``IN`` lists by the most common values or ``1 / distinct``; ranges (``<``, ``<=``, ``>``,
  ``>=``, ``BETWEEN``, and a lower and an upper bound on one column together) by the histogram
  bounds, the common values, or the column's minimum and maximum; ``IS NULL`` by the null
  fraction; ``OR`` as two independent conditions; anything else (a parameter's unknown value in
  a range, a function) keeps a third. Conjuncts multiply.
- **Source**: when an index's leading columns are bound by equalities (and optionally a range
  on the next), the source reads the rows the index selects at a cost per index row; else it
  scans every row. Plus the selected rows' transfer and a round trip.
- **Replica**: DuckDB scans the replica's rows, columnar, at a cost per row, plus a fixed cost.
  A filter on a column whose order follows the rows' order (PostgreSQL's ``correlation`` near
  1 or -1: the time of an append-only log, copied in that order) lets DuckDB's zone maps skip
  the row groups outside it: the scan reads about the share that filter keeps.

The constants default to figures measured on the benchmark machine (``CostConstants``) and are
replaced per source by ``meterql calibrate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlglot import exp

from meterql.catalog import Catalog, ColumnStats, IndexInfo, Table, TableStats
from meterql.catalog.stat_values import read_value
from meterql.dialects import type_family
from meterql.engine.bind import REF, BoundQuery
from meterql.engine.planner.split_into_scans import candidate_filters
from meterql.wording import approx_count, approx_duration

RouteName = Literal["source", "replica", "hybrid"]

#: The share of rows kept by a condition the statistics cannot weigh (PostgreSQL's default for
#: an unknown range is the same third).
UNKNOWN = 1 / 3
#: The share kept by ``col = value`` when the column's distinct values are unknown.
UNKNOWN_EQ = 0.005
#: A column whose order follows the rows' order this closely (``ColumnStats.correlation``)
#: lets DuckDB's zone maps skip the replica's row groups outside a filter on it.
ORDERED = 0.9


@dataclass(frozen=True)
class CostConstants:
    """Costs per row and per query, in milliseconds and nanoseconds.

    The defaults are fitted to the benchmark (docs/benchmarks/10gb/report.md, PostgreSQL 15
    and DuckDB on 2 cores, 56.6M events): the invoice run's direct sequential scan took 7.65 s
    (135 ns a row); one customer's month, ~5,000 rows through the index on
    ``(customer_id, ts)`` by PostgreSQL's statistics, 3.0 ms (600 ns an index row with the
    round trip); on the replica, the same month's 4.8M rows scanned past zone maps took 9 ms
    when the filter kept few (2 ns a row scanned), and the invoice run, which keeps them all,
    315 ms (60 ns more a row kept). The round trip is the one measured at 2M events (a query
    that reads one row: 0.4 ms direct). The replica's fixed cost is per table, beside the
    query's own (which every route pays): reading a 5-row table from the source adds a
    fragment to a query that would otherwise run in DuckDB alone (at 1 GB, join_plans took
    9.3 ms with the plans table read at the source, 4.8 ms all local). A query of one table
    read from the replica also pays DuckDB's own fixed cost, which the same query sent whole
    to its source does not (at 1 GB, one customer's month: 1.2 ms direct, 2.1 ms on the
    replica). ``meterql calibrate
    SOURCE`` measures the per-row figures per source.
    """

    round_trip_ms: float = 0.5
    seq_row_ns: float = 135.0
    index_row_ns: float = 600.0
    transfer_row_ns: float = 150.0
    replica_fixed_ms: float = 0.1
    replica_query_ms: float = 1.0
    replica_scan_ns: float = 2.0
    replica_row_ns: float = 60.0

    @classmethod
    def measured(cls, values: Mapping[str, float] | None) -> CostConstants:
        """The defaults with the measured values that are known (``Catalog.cost_constants``).

        >>> CostConstants.measured({"round_trip_ms": 0.4, "other": 1}).round_trip_ms
        0.4
        """
        known = {f.name for f in fields(cls)}
        return replace(cls(), **{k: float(v) for k, v in (values or {}).items() if k in known})

    def describe(self) -> dict[str, float]:
        return asdict(self)


def constants_for(catalog: Catalog, source: str) -> CostConstants:
    """The constants of one source: those ``meterql calibrate`` measured, the defaults for the
    rest."""
    return CostConstants.measured(catalog.cost_constants(source))


@dataclass(frozen=True)
class RouteCost:
    """The estimated cost of one route for one table reference.

    Attributes:
        route: ``source`` or ``replica``.
        ms: the estimated time.
        rows_read: the rows it reads (through an index, a scan, or the replica's scan).
        reason: one line saying how, e.g. ``source: index on (customer_id, ts) selects
            ~0.02% of 56.6M rows, ~12 ms``.
        would: the same said of a route not taken (``source would scan 56.6M rows,
            ~7.6 s``).
    """

    route: RouteName
    ms: float
    rows_read: int
    reason: str
    would: str = ""


def table_predicates(bound: BoundQuery, ref: int) -> list[exp.Expression]:
    """The WHERE and JOIN ON conjuncts that restrict table reference ``ref`` alone: those of its
    SELECT that may restrict its scan (as ``split_into_scans`` finds them) and name only its
    columns, beside literals and parameters.

    >>> from meterql.engine.planner.examples import example_context
    >>> bound = example_context("SELECT * FROM pg.public.events e JOIN lite.main.customers c "
    ...     "ON c.id = e.customer_id AND c.plan = 'pro' WHERE e.customer_id IN (1, 2) "
    ...     "AND e.meter = :m").bound
    >>> [p.sql() for p in table_predicates(bound, 0)]
    ['e.customer_id IN (1, 2)', 'e.meter = :m']
    >>> [p.sql() for p in table_predicates(bound, 1)]
    ["c.plan = 'pro'"]
    """
    node = next((t for t in bound.qualified.find_all(exp.Table) if t.meta.get(REF) == ref), None)
    if node is None:
        return []
    alias = node.alias_or_name
    out = []
    for conjunct, _ in candidate_filters(node):
        columns = list(conjunct.find_all(exp.Column))
        if (columns and all(c.table == alias for c in columns)
                and conjunct.find(exp.Query, exp.Subquery) is None):
            out.append(conjunct)
    return out


#: How much a pushed filter is assumed to cut a table when the source has no statistics.
FILTER_SELECTIVITY = 0.3


def table_rows(stats: TableStats | None, table: Table) -> float | None:
    """The rows a table holds: the source's statistics' count, else the catalog's estimate."""
    if stats is not None and stats.rows is not None:
        return float(stats.rows)
    return None if table.rows is None else float(table.rows)


# -- selectivity -------------------------------------------------------------------------------
def selectivity(predicates: Sequence[exp.Expression], stats: TableStats | None,
                table: Table | None = None) -> float:
    """The share of a table's rows that satisfy every predicate (a product over the conjuncts;
    a lower and an upper bound on one column count as one range).

    >>> from datetime import UTC, datetime
    >>> import sqlglot
    >>> def month(day):
    ...     return datetime(2026, day, 1, tzinfo=UTC)
    >>> ts = ColumnStats("ts", 1e6, 0.0, histogram=tuple(month(m) for m in range(1, 13)))
    >>> stats = TableStats("pg.public.e", 1_000_000, {"ts": ts,
    ...     "customer_id": ColumnStats("customer_id", 50, 0.0)})
    >>> where = sqlglot.parse_one("SELECT * FROM e WHERE customer_id = 7 AND "
    ...     "ts >= TIMESTAMPTZ '2026-03-01 00:00:00+00' "
    ...     "AND ts < TIMESTAMPTZ '2026-04-01 00:00:00+00'",
    ...     read="duckdb").args["where"].this
    >>> from meterql.engine.planner.scan_sql import conjuncts
    >>> round(selectivity(conjuncts(where), stats), 6)  # 1/50 of one bucket in 11
    0.001818
    """
    share = 1.0
    ranges: dict[str, list[tuple[str, exp.Expression]]] = {}
    for predicate in predicates:
        bound = _range_bound(predicate)
        if bound is not None:
            column, op, value = bound
            ranges.setdefault(column, []).append((op, value))
            continue
        share *= _one(predicate, stats, table)
    for column, bounds in ranges.items():
        share *= _range(column, bounds, stats, table)
    return max(0.0, min(1.0, share))


def _column_of(node: exp.Expression) -> str | None:
    return node.name.lower() if isinstance(node, exp.Column) else None


_FLIP: dict[type[exp.Expression], str] = {exp.GT: "<", exp.GTE: "<=", exp.LT: ">",
                                          exp.LTE: ">="}
_OPS: dict[type[exp.Expression], str] = {exp.GT: ">", exp.GTE: ">=", exp.LT: "<",
                                         exp.LTE: "<="}


def _range_bound(node: exp.Expression) -> tuple[str, str, exp.Expression] | None:
    """``(column, op, value)`` for ``column op value`` (either way round)."""
    op = _OPS.get(type(node))
    if op is None:
        return None
    left, right = node.this, node.expression
    if (name := _column_of(left)) is not None and _column_of(right) is None:
        return name, op, right
    if (name := _column_of(right)) is not None and _column_of(left) is None:
        return name, _FLIP[type(node)], left
    return None


def _family(column: str, table: Table | None, stats: ColumnStats | None) -> str | None:
    if table is not None and (col := table.column(column)) is not None:
        return type_family(col.type)
    sample = stats and (stats.histogram[:1] or [v for v, _ in stats.common[:1]])
    return _family_of_value(sample[0]) if sample else None


def _family_of_value(value: Any) -> str | None:
    if isinstance(value, datetime):
        return "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, (Decimal, float)):
        return "DOUBLE"
    return None


def _value(node: exp.Expression, family: str | None) -> Any:
    """The Python value of a literal (plain, negated or cast), read as the column's type;
    ``None`` for a parameter, a function, or a literal that does not read."""
    if family is None:
        return None
    negate = False
    while True:
        if isinstance(node, (exp.Cast, exp.Paren)):
            node = node.this
        elif isinstance(node, exp.Neg):
            negate, node = not negate, node.this
        else:
            break
    if not isinstance(node, exp.Literal):
        return None
    value = read_value(("-" if negate else "") + node.this, family)
    if value is None and family in ("DECIMAL", "DOUBLE", "FLOAT"):
        return None
    if value is None and node.is_number:  # an integer column compared with 2.5
        value = read_value(("-" if negate else "") + node.this, "DOUBLE")
    return value


def _eq_share(stats: ColumnStats | None, value: Any) -> float:
    """The share of rows equal to ``value`` (``None``: a value not known when planning)."""
    if stats is None:
        return UNKNOWN_EQ
    for common, freq in stats.common:
        if value is not None and _same(common, value):
            return freq
    rest = 1.0 - (stats.null_frac or 0.0) - sum(f for _, f in stats.common)
    if stats.distinct is None or stats.distinct <= 0:
        return UNKNOWN_EQ
    others = stats.distinct - len(stats.common)
    if value is None and stats.common:  # any value: the average over all of them
        return (1.0 - (stats.null_frac or 0.0)) / stats.distinct
    return max(0.0, rest) / others if others >= 1 else 0.0


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except TypeError:
        return False


def _one(node: exp.Expression, stats: TableStats | None, table: Table | None) -> float:
    """The share kept by one conjunct that is not a range bound."""
    col_stats = None
    if isinstance(node, exp.Paren):
        return _one(node.this, stats, table)
    if isinstance(node, (exp.EQ, exp.In)):
        column, others = _eq_parts(node)
        if column is None:
            return UNKNOWN
        col_stats = stats.column(column) if stats else None
        family = _family(column, table, col_stats)
        return min(1.0, sum(_eq_share(col_stats, _value(v, family)) for v in others))
    if isinstance(node, exp.Between) and (column := _column_of(node.this)) is not None:
        return _range(column, [(">=", node.args["low"]), ("<=", node.args["high"])], stats,
                      table)
    if isinstance(node, exp.Is) and (column := _column_of(node.this)) is not None:
        col_stats = stats.column(column) if stats else None
        null = col_stats.null_frac if col_stats and col_stats.null_frac is not None else None
        return UNKNOWN_EQ if null is None else null
    if isinstance(node, exp.Not):
        inner = node.this
        if isinstance(inner, exp.Is) and (column := _column_of(inner.this)) is not None:
            col_stats = stats.column(column) if stats else None
            null = col_stats.null_frac if col_stats and col_stats.null_frac is not None else 0.0
            return 1.0 - null
        return 1.0 - _one(inner, stats, table)
    if isinstance(node, exp.NEQ):
        return 1.0 - _one(exp.EQ(this=node.this, expression=node.expression), stats, table)
    if isinstance(node, exp.Or):  # (the two sides taken as independent)
        left = selectivity([node.this], stats, table)
        right = selectivity([node.expression], stats, table)
        return left + right - left * right
    return UNKNOWN


def _eq_parts(node: exp.Expression) -> tuple[str | None, list[exp.Expression]]:
    """The column and the values of ``col = v``, ``v = col`` or ``col IN (v, ...)``."""
    if isinstance(node, exp.In):
        column = _column_of(node.this)
        values = list(node.expressions)
        return (column, values) if column is not None and values else (None, [])
    left, right = node.this, node.expression
    if (column := _column_of(left)) is not None and _column_of(right) is None:
        return column, [right]
    if (column := _column_of(right)) is not None and _column_of(left) is None:
        return column, [left]
    return None, []


def _range(column: str, bounds: list[tuple[str, exp.Expression]], stats: TableStats | None,
           table: Table | None) -> float:
    """The share of rows within every bound on one column."""
    col_stats = stats.column(column) if stats else None
    family = _family(column, table, col_stats)
    low = high = None  # the share of rows below each bound
    for op, node in bounds:
        value = _value(node, family)
        below = None if value is None else _below(col_stats, value, op in ("<=", ">"))
        if below is None:
            return UNKNOWN ** len(bounds)
        if op in (">", ">="):
            low = below if low is None else max(low, below)
        else:
            high = below if high is None else min(high, below)
    not_null = 1.0 - ((col_stats.null_frac or 0.0) if col_stats else 0.0)
    return max(0.0, (not_null if high is None else high) - (0.0 if low is None else low))


def _below(stats: ColumnStats | None, value: Any, inclusive: bool) -> float | None:
    """The share of all rows whose value is below ``value`` (or equal, when ``inclusive``);
    ``None`` when the statistics cannot say."""
    if stats is None:
        return None
    try:
        common = sum(f for v, f in stats.common if v < value or (inclusive and v == value))
        rest = max(0.0, 1.0 - (stats.null_frac or 0.0) - sum(f for _, f in stats.common))
        bounds = stats.histogram
        if len(bounds) >= 2:
            return common + rest * _histogram_share(bounds, value)
        if stats.min is not None and stats.max is not None and stats.max > stats.min:
            return common + rest * _histogram_share((stats.min, stats.max), value)
        if stats.common and rest < 0.01:
            return common
    except TypeError:  # a literal of another type than the column's values
        return None
    return None


def _histogram_share(bounds: Sequence[Any], value: Any) -> float:
    """The share of the values below ``value`` in a histogram of equal-size buckets."""
    if value <= bounds[0]:
        return 0.0
    if value >= bounds[-1]:
        return 1.0
    buckets = len(bounds) - 1
    for i in range(buckets):
        lo, hi = bounds[i], bounds[i + 1]
        if lo <= value < hi:
            span = _number(hi) - _number(lo)
            part = (_number(value) - _number(lo)) / span if span > 0 else 0.5
            return (i + part) / buckets
    return 1.0


def _number(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return float(value.toordinal())
    return float(value)


# -- routes ------------------------------------------------------------------------------------
def index_selectivity(
    predicates: Sequence[exp.Expression], stats: TableStats, table: Table | None = None
) -> tuple[IndexInfo, float] | None:
    """The index that selects the fewest rows for ``predicates`` and the share it selects:
    its leading columns bound by equalities, then optionally a range on the next; ``None`` when
    no index fits."""
    equal: dict[str, exp.Expression] = {}
    ranged: dict[str, list[exp.Expression]] = {}
    for predicate in predicates:
        node = predicate.this if isinstance(predicate, exp.Paren) else predicate
        if isinstance(node, (exp.EQ, exp.In)) and (column := _eq_parts(node)[0]) is not None:
            equal.setdefault(column, node)
        elif (bound := _range_bound(node)) is not None:
            ranged.setdefault(bound[0], []).append(node)
        elif isinstance(node, exp.Between) and (column := _column_of(node.this)) is not None:
            ranged.setdefault(column, []).append(node)
    best: tuple[IndexInfo, float] | None = None
    for index in stats.indexes:
        used: list[exp.Expression] = []
        for column in (c.lower() for c in index.columns):
            if column in equal:
                used.append(equal[column])
                continue
            used += ranged.get(column, [])
            break
        if not used:
            continue
        share = selectivity(used, stats, table)
        if best is None or share < best[1]:
            best = (index, share)
    return best


def estimate_routes(
    bound: BoundQuery, ref: int, table: Table, stats: TableStats | None,
    replica_rows: int | None, constants: CostConstants | None = None,
    sent_whole: bool = False, cluster_by: Sequence[str] = (),
) -> dict[str, RouteCost]:
    """The cost of reading table reference ``ref`` from its source and, when it has a replica
    (``replica_rows`` not ``None``), from the replica. ``sent_whole``: the source route would
    send the whole query to the source (no DuckDB query at all; the replica route pays
    DuckDB's fixed cost, ``replica_query_ms``). ``cluster_by``: the replica keeps its rows in
    this order (the table's clustering key), so its zone maps skip on the key's first column
    instead of on the columns the source's physical order follows.

    >>> from meterql.engine.planner.examples import example_context
    >>> bound = example_context("SELECT * FROM pg.public.events WHERE customer_id = 7").bound
    >>> table = bound.tables[0][1]
    >>> stats = TableStats(table.full_name, 10_000_000,
    ...     {"customer_id": ColumnStats("customer_id", 10_000, 0.0)},
    ...     (IndexInfo("events_customer", ("customer_id",)),))
    >>> costs = estimate_routes(bound, 0, table, stats, 10_000_000)
    >>> print(costs["source"].reason)
    source: index on (customer_id) selects ~0.01% of 10M rows, ~1 ms
    >>> print(costs["replica"].reason)
    replica: scans 10M rows columnar, ~20 ms
    """
    constants = constants or CostConstants()
    predicates = table_predicates(bound, ref)
    rows = int(table_rows(stats, table) or 0)
    # a table never analyzed has no row count at the source: the last sync counted it
    rows = max(rows, replica_rows or 0)
    share = selectivity(predicates, stats, table)
    selected = rows * share
    transfer_ms = selected * constants.transfer_row_ns / 1e6
    seq_ms = rows * constants.seq_row_ns / 1e6
    found = index_selectivity(predicates, stats, table) if stats is not None else None
    index_ms = None if found is None else rows * found[1] * constants.index_row_ns / 1e6
    out: dict[str, RouteCost] = {}
    if found is not None and index_ms is not None and index_ms < seq_ms:
        index, index_share = found
        ms = constants.round_trip_ms + index_ms + transfer_ms
        how = f"{index} selects ~{percent(index_share)} of {approx_count(rows)} rows"
        out["source"] = RouteCost(
            "source", ms, round(rows * index_share), f"source: {how}, ~{approx_duration(ms)}",
            f"source would read ~{approx_count(rows * index_share)} rows through the {index}, "
            f"~{approx_duration(ms)}")
    else:
        ms = constants.round_trip_ms + seq_ms + transfer_ms
        why = "" if not predicates or found is not None else " (no index fits its filters)"
        out["source"] = RouteCost(
            "source", ms, rows,
            f"source: scans {approx_count(rows)} rows{why}, ~{approx_duration(ms)}",
            f"source would scan {approx_count(rows)} rows, ~{approx_duration(ms)}")
    if replica_rows is not None:
        skip, ordered = _zone_share(predicates, stats, table, cluster_by)
        read = replica_rows * skip
        kept = min(read, replica_rows * share)  # the rows past the filters: the query's work
        ms = (constants.replica_fixed_ms + read * constants.replica_scan_ns / 1e6
              + kept * constants.replica_row_ns / 1e6)
        if sent_whole:
            # the query runs in DuckDB only on this route: sent whole, the source runs it
            ms += constants.replica_query_ms
        what = f"{approx_count(replica_rows)} rows"
        if ordered:
            what = f"~{percent(skip)} of {what} (zone maps on {', '.join(ordered)})"
        out["replica"] = RouteCost(
            "replica", ms, round(read),
            f"replica: scans {what} columnar, ~{approx_duration(ms)}",
            f"replica would scan {what}, ~{approx_duration(ms)}")
    return out


def _zone_share(predicates: Sequence[exp.Expression], stats: TableStats | None,
                table: Table | None, cluster_by: Sequence[str] = ()) -> tuple[float, list[str]]:
    """The share of the replica's rows a columnar scan reads, and the columns whose order
    lets it skip the others: the clustering key's first column when the replica is sorted by
    one, else the columns the source's physical order follows (see ``ORDERED``)."""
    if stats is None:
        return 1.0, []
    if cluster_by:
        ordered = {cluster_by[0].lower()}
    else:
        ordered = {name for name, c in stats.columns.items()
                   if c.correlation is not None and abs(c.correlation) >= ORDERED}
    used = [p for p in predicates
            if {c.name.lower() for c in p.find_all(exp.Column)} <= ordered]
    if not used:
        return 1.0, []
    names = sorted({c.name for p in used for c in p.find_all(exp.Column)})
    return selectivity(used, stats, table), names


def cheapest(costs: Mapping[str, RouteCost]) -> RouteCost:
    """The cheapest route, its reason naming what the other would cost (one line for EXPLAIN).

    >>> print(cheapest({"source": RouteCost("source", 7600, 56_600_000, "source: ...",
    ...                                     "source would scan 56.6M rows, ~7.6 s"),
    ...                 "replica": RouteCost("replica", 30, 56_600_000,
    ...                                      "replica: scans 56.6M rows columnar, ~30 ms")}).reason)
    replica: scans 56.6M rows columnar, ~30 ms; source would scan 56.6M rows, ~7.6 s
    """
    ranked = sorted(costs.values(), key=lambda c: c.ms)
    best = ranked[0]
    others = "; ".join(c.would for c in ranked[1:] if c.would)
    return replace(best, reason=f"{best.reason}; {others}" if others else best.reason)


def percent(share: float) -> str:
    """A share as a percentage with two significant digits.

    >>> [percent(s) for s in (0.0002, 0.083, 0.5, 1.0)]
    ['0.02%', '8.3%', '50%', '100%']
    """
    pct = share * 100
    return f"{pct:.0f}%" if pct >= 10 else f"{pct:.2g}%"
