"""Rule: push a small side's join keys into the other side's scan at run time.

When a scan of one source is joined on ``a.k = b.k`` with a scan that is estimated to be small
(the table's rows times the selectivity of its pushed filters, from the source's statistics),
the small side ("build") is read first and its distinct keys restrict the big side ("probe") at
its source: as a key set up to ``dynamic_filter_max_keys`` keys, else as the keys' min/max range.
Which keys: with statistics, the keys expected to keep the smallest share of the probe's rows
(the build's distinct keys against the probe column's distinct values), every one that keeps at
most half of them; a key that prunes nothing (3 meters joined with events of 3 meters) is named
in EXPLAIN and not used. Without statistics, the smallest build side. The residual still joins, so
the probe only has to keep every row that can match: the filter is safe for inner and semi joins,
for the null-supplying side of a LEFT join and the joined side of an ANTI join (never the side
whose unmatched rows are kept), and for equalities in WHERE (which reject NULL-extended rows).
A column its source compares otherwise than DuckDB (a PostgreSQL char(n)) is never a probe.
Trino calls this dynamic filtering; DuckDB's postgres scanner does not do it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeAlias

from sqlglot import exp

from meterql.catalog import Table, TableStats
from meterql.dialects import dialect_for, type_family
from meterql.engine.bind import REF
from meterql.engine.planner.context import PlanContext
from meterql.engine.planner.costs import (
    FILTER_SELECTIVITY,
    percent,
    selectivity,
    table_predicates,
    table_rows,
)
from meterql.engine.planner.dynamic import DynamicFilter, DynamicKey
from meterql.engine.planner.plan import Plan, QueryFragment, ScanFragment
from meterql.engine.planner.scan_sql import conjuncts

#: Key types a run-time key set keeps exact at every source: integers and text.
_KEY_FAMILIES = {
    "TINYINT": "integer", "SMALLINT": "integer", "INT": "integer", "BIGINT": "integer",
    "UTINYINT": "integer", "USMALLINT": "integer", "UINT": "integer", "UBIGINT": "integer",
    "TEXT": "text", "VARCHAR": "text",
}
#: The probe side must be estimated this many times larger than the build side.
MIN_SIZE_RATIO = 4


def add_dynamic_filters(ctx: PlanContext, plan: Plan) -> Plan:
    """The plan with dynamic filters on each scan that small scans' join keys may cut.

    >>> from meterql.engine.planner.examples import example_context
    >>> from meterql.engine.planner.plan import PartialPlan
    >>> from meterql.engine.planner.split_into_scans import split_into_scans
    >>> ctx = example_context("SELECT c.name, e.quantity FROM pg.public.events AS e "
    ...     "JOIN lite.main.customers AS c ON c.id = e.customer_id WHERE c.plan = 'pro'")
    >>> plan = add_dynamic_filters(ctx, split_into_scans(ctx, PartialPlan(ctx.bound.tree)))
    >>> key = plan.fragments[0].dynamic.keys[0]  # 10 million events, cut by 300 customers
    >>> key.build, key.build_column, key.probe_column
    ('f2', 'id', 'customer_id')
    >>> key.reason
    '~300 keys among ~1,000 distinct customer_id values keep ~30% of the rows'

    Every customer's id would keep every event: no filter, and EXPLAIN says why.

    >>> ctx = example_context("SELECT c.name, e.quantity FROM pg.public.events AS e "
    ...     "JOIN lite.main.customers AS c ON c.id = e.customer_id")
    >>> plan = add_dynamic_filters(ctx, split_into_scans(ctx, PartialPlan(ctx.bound.tree)))
    >>> plan.fragments[0].dynamic is None, plan.fragments[0].dynamic_notes[0].endswith("little)")
    (True, True)
    """
    if plan.residual is None or not ctx.settings.get("dynamic_filter", True):
        return plan
    tables = [table for _, table in ctx.bound.tables]
    # table reference -> (its scan's index in the plan, the scan); a partial aggregate of a
    # table (eager aggregation) is filtered like its scan, before it groups, but gives no keys
    scans: dict[int, tuple[int, Probe]] = {
        f.ref: (i, f) for i, f in enumerate(plan.fragments)
        if isinstance(f, ScanFragment) and f.ref is not None}
    scans.update({f.aggregate.ref: (i, f) for i, f in enumerate(plan.fragments)
                  if isinstance(f, QueryFragment) and f.aggregate is not None
                  and f.aggregate.ref is not None and f.tree is not None})
    nodes = {
        t.meta[REF]: t
        for t in ctx.bound.qualified.find_all(exp.Table)
        if t.meta.get(REF) in scans
    }
    sizes = {ref: _size(ctx, ref, scan, tables[ref]) for ref, (_, scan) in scans.items()}
    max_build = ctx.settings.get("dynamic_filter_max_build_rows", 1_000_000)
    candidates: dict[int, list[_Candidate]] = {}
    for select in ctx.bound.qualified.find_all(exp.Select):
        for probe, build, probe_col, build_col in _equi_pairs(select, nodes):
            build_rows, probe_rows = sizes[build].rows, sizes[probe].rows
            if build_rows is None or build_rows > max_build:
                continue
            if not isinstance(scans[build][1], ScanFragment):
                continue  # (a partial aggregate's rows are groups: read after, never first)
            if probe_rows is not None and probe_rows < MIN_SIZE_RATIO * max(build_rows, 1):
                continue
            if not _same_key_family(tables[probe], probe_col, tables[build], build_col):
                continue
            dialect = dialect_for(ctx.catalog.source(tables[probe].source).kind)
            probe_column = tables[probe].column(probe_col)
            if probe_column is None or dialect.computes_differently(probe_column.source_type):
                continue  # (e.g. a char(n): the source would compare the keys otherwise)
            if dialect.capabilities.key_sets:
                candidates.setdefault(probe, []).append(_Candidate(
                    build, probe_col, build_col, build_rows,
                    sizes[build].distinct(build_col, build_rows),
                    sizes[probe].column_distinct(probe_col), scans[build][1].id))
    chosen = {probe: _choose(found) for probe, found in candidates.items()}
    builds = {c.build for used, _ in chosen.values() for c in used}
    fragments = list(plan.fragments)
    max_keys = ctx.settings.get("dynamic_filter_max_keys", 10_000)
    for probe, (used, skipped) in chosen.items():
        scan = scans[probe][1]
        if probe in builds:
            used = []  # a build side is read first; it takes no filter itself (no chains)
        if used:
            builds_of = [(side, c) for c in used
                         if isinstance(side := scans[c.build][1], ScanFragment)]
            scan = _with_filter(scan, builds_of, tables[probe], max_keys)
        if skipped:
            scan = replace(scan, dynamic_notes=tuple(skipped))
        fragments[scans[probe][0]] = scan
    return replace(plan, fragments=fragments)


#: A key is used when the keys are expected to keep at most this share of the probe's rows.
MAX_KEEP = 0.5
#: The most keys pushed into one scan.
MAX_KEYS_PER_SCAN = 3


@dataclass(frozen=True)
class _Size:
    """A scan's estimated rows after its pushed filters, and its table's statistics."""

    rows: float | None
    stats: TableStats | None
    share: float

    def column_distinct(self, column: str) -> float | None:
        found = self.stats.column(column) if self.stats is not None else None
        return found.distinct if found is not None and found.distinct else None

    def distinct(self, column: str, rows: float) -> float:
        """The distinct keys ``column`` is expected to give over the scan's ``rows`` (at most
        one per row when the source has no statistics on it)."""
        found = self.column_distinct(column)
        return max(1.0, rows if found is None else min(rows, found * self.share))


def _size(ctx: PlanContext, ref: int, scan: Probe, table: Table) -> _Size:
    """The rows a scan is expected to read: the table's rows times the selectivity of its
    pushed filters from the source's statistics (a fixed 0.3 without them)."""
    stats = ctx.catalog.statistics(table.full_name)
    rows = table_rows(stats, table)
    if rows is None:
        return _Size(None, stats, 1.0)
    if stats is None:
        pushed = (scan.pushed_filters if isinstance(scan, ScanFragment)
                  else scan.aggregate.filters if scan.aggregate is not None else ())
        share = FILTER_SELECTIVITY if pushed else 1.0
    else:
        share = selectivity(table_predicates(ctx.bound, ref), stats, table)
    return _Size(rows * share, stats, share)


@dataclass(frozen=True)
class _Candidate:
    build: int
    probe_col: str
    build_col: str
    build_rows: float
    keys: float
    probe_distinct: float | None
    build_id: str

    @property
    def keep(self) -> float | None:
        """The share of the probe's rows the keys are expected to keep (the build's keys are
        assumed to be among the probe's values)."""
        if self.probe_distinct is None:
            return None
        return min(1.0, self.keys / self.probe_distinct)

    def reason(self) -> str:
        keep = self.keep
        if keep is None:
            return (f"the smallest build side (~{_count(self.build_rows)} rows; no statistics "
                    "on the probe's keys)")
        return (f"~{_count(self.keys)} keys among ~{_count(self.probe_distinct or 0)} "
                f"distinct {self.probe_col} values keep ~{percent(keep)} of the rows")


def _choose(found: list[_Candidate]) -> tuple[list[_Candidate], list[str]]:
    """The keys to use, most selective first, and why the others are not used.

    With statistics, every key expected to keep at most ``MAX_KEEP`` of the probe's rows is
    used (up to ``MAX_KEYS_PER_SCAN``, one per probe column); a key whose values cover the
    probe's (a 3-row meter table joined on meter) prunes nothing and is never used. Without
    statistics on a pair, the smallest build side is used when no key is known to prune.
    """
    known = sorted((c for c in found if c.keep is not None), key=lambda c: (c.keep, c.build_rows))
    unknown = sorted((c for c in found if c.keep is None), key=lambda c: c.build_rows)
    chosen: list[_Candidate] = []
    skipped: list[str] = []
    for c in known:
        assert c.keep is not None
        if c.keep > MAX_KEEP:
            skipped.append(f"{c.probe_col} from {c.build_id}.{c.build_col}: "
                           f"{c.reason().replace(' keep ', ' would keep ')} (prunes too little)")
        elif len(chosen) < MAX_KEYS_PER_SCAN and all(
                x.probe_col.lower() != c.probe_col.lower() for x in chosen):
            chosen.append(c)
    if not chosen and unknown:
        chosen.append(unknown[0])
    return chosen, skipped


def _count(value: float) -> str:
    """A row or key count as EXPLAIN prints it.

    >>> _count(56581.2), _count(3), _count(2_500_000)
    ('56.6k', '3', '2.5M')
    """
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:,.0f}"


#: What a dynamic filter restricts: a table's scan, or its partial aggregate.
Probe: TypeAlias = ScanFragment | QueryFragment

#: (probe ref, build ref, probe column, build column)
_EquiPair: TypeAlias = tuple[int, int, str, str]


def _equi_pairs(select: exp.Select, nodes: dict[int, exp.Table]) -> list[_EquiPair]:
    """(probe ref, build ref, probe column, build column) for each usable ``a.x = b.y``."""
    from_ = select.args.get("from_")
    if from_ is None:
        return []
    joins = select.args.get("joins") or []
    if any(j.side in ("RIGHT", "FULL") or (j.method and j.method.upper() != "NATURAL")
           for j in joins):
        return []
    refs: dict[str, int] = {}
    for item in [from_.this, *[j.this for j in joins]]:
        if isinstance(item, exp.Table) and REF in item.meta and nodes.get(item.meta[REF]):
            refs[item.alias_or_name] = item.meta[REF]
    pairs: list[_EquiPair] = []
    where = select.args.get("where")
    if where is not None:
        for cond in conjuncts(where.this):
            pairs += _both_ways(cond, refs)
    for join in joins:
        on = join.args.get("on")
        if on is None:
            continue
        own = join.this.alias_or_name if isinstance(join.this, exp.Table) else None
        # A LEFT join keeps every row of the tables before it, and an ANTI join keeps exactly
        # those without a match: only the joined table may be filtered by their keys.
        keeps_left = join.side == "LEFT" or (join.kind or "").upper() == "ANTI"
        for cond in conjuncts(on):
            for pair in _both_ways(cond, refs):
                if not keeps_left or (own is not None and pair[0] == refs.get(own)):
                    pairs.append(pair)
    return pairs


def _both_ways(cond: exp.Expression, refs: dict[str, int]) -> list[_EquiPair]:
    if not isinstance(cond, exp.EQ):
        return []
    left, right = cond.this, cond.expression
    if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
        return []
    a, b = refs.get(left.table), refs.get(right.table)
    if a is None or b is None or a == b:
        return []
    return [(a, b, left.name, right.name), (b, a, right.name, left.name)]


def _same_key_family(probe: Table, probe_col: str, build: Table, build_col: str) -> bool:
    p, b = probe.column(probe_col), build.column(build_col)
    if p is None or b is None:
        return False
    family = _KEY_FAMILIES.get(type_family(p.type))
    return family is not None and family == _KEY_FAMILIES.get(type_family(b.type))


def _with_filter(
    probe: Probe, keys: list[tuple[ScanFragment, _Candidate]], table: Table, max_keys: int,
) -> Probe:
    dialect = dialect_for(probe.kind)
    made = []
    for build, c in keys:
        column = table.column(c.probe_col)
        assert column is not None
        build_column = next(f.name for f in build.schema if f.name.lower() == c.build_col.lower())
        ident: exp.Expression = exp.column(exp.to_identifier(column.name, quoted=True))
        if dialect.text_collation and type_family(column.type) in ("TEXT", "VARCHAR"):
            # Bytewise like DuckDB's keys, whatever the column declares (SQLite's NOCASE).
            ident = exp.Collate(this=ident, expression=exp.Var(this=dialect.text_collation))
        # Keys are bound as the widest type of their family: a BIGINT key must not overflow an
        # INT probe column (it just matches nothing); PostgreSQL compares int4 with int8 exactly.
        family = _KEY_FAMILIES[type_family(column.type)]
        # DuckDB's min and max of text are bytewise; a source that orders text by a collation
        # would cut the range differently, so past max_keys such a key is not used.
        made.append(DynamicKey(
            build=build.id, build_column=build_column, probe_column=column.name, column=ident,
            key_type="BIGINT" if family == "integer" else "VARCHAR",
            ranged=family == "integer" or dialect.capabilities.binary_text_order,
            reason=c.reason(),
        ))
    tree = probe.scan.tree if isinstance(probe, ScanFragment) else probe.tree
    assert tree is not None
    return replace(probe, dynamic=DynamicFilter(
        keys=tuple(made), scan=tree, table=table.name, params=tuple(probe.params),
        sqlglot_dialect=dialect.sqlglot_dialect, marker=dialect.parameter_marker,
        style=dialect.capabilities.key_sets or "list",
        typed_parameters=dialect.capabilities.typed_parameters, max_keys=max_keys,
    ))


