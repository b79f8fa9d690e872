"""A query plan: fragments pushed to sources and the residual DuckDB runs over their results.

A fragment is a :class:`ScanFragment` (one table's columns and filters, each pushed or kept
filter a record with its origin or reason) or a :class:`QueryFragment` (a whole query or
subquery, with how DuckDB types its result). ``str(plan)`` is the EXPLAIN output, rendered from
these records; nothing reads it back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal, TypeAlias

import pyarrow as pa
from sqlglot import exp

from meterql.engine.planner.dynamic import DynamicFilter
from meterql.engine.planner.scan_sql import ScanSelect
from meterql.wording import approx_count

if TYPE_CHECKING:
    from meterql.engine.planner.routes import Route

#: The clause a pushed filter came from.
FilterOrigin = Literal["WHERE", "ON"]


@dataclass(frozen=True)
class PushedFilter:
    """A WHERE or ON conjunct sent into a scan (the residual applies it again).

    Attributes:
        condition: the conjunct as the query writes it, qualified (``e.meter = 'api'``): a node
            of the bound query's qualified tree, never changed.
        origin: the clause it came from.
    """

    condition: exp.Expression
    origin: FilterOrigin

    def __str__(self) -> str:
        return f"filter {self.condition.sql('duckdb')} (from {self.origin})"


@dataclass(frozen=True)
class KeptFilter:
    """A conjunct on a scanned table that stays in DuckDB, and why.

    Attributes:
        condition: the conjunct as the query writes it (as in :class:`PushedFilter`).
        reason: why the source does not receive it.
    """

    condition: exp.Expression
    reason: str

    def __str__(self) -> str:
        return f"filter {self.condition.sql('duckdb')}: {self.reason}"


@dataclass(frozen=True)
class ScanFragment:
    """One table reference read from its source: the columns the query uses, and the filters
    that keep their meaning there.

    Attributes:
        id: the fragment's name in the residual (``f1``, ``f2``, ...).
        source: the source it runs on.
        kind: the source kind.
        table: the catalog table's full name.
        scan: the SELECT sent: its tree (markers in place), SQL, parameter names in marker
            order, per marker the DuckDB type it is compared with, and the Arrow schema its
            rows are conformed to.
        pushed_filters: the conjuncts sent with it.
        kept_filters: conjuncts on this table that stay in DuckDB.
        ref: the table reference it reads (its index in the bound query); ``None`` when
            several references share the scan.
        dynamic: run-time filters on its join keys, from other fragments' rows.
        dynamic_notes: why join keys that could have filtered it at run time do not.
    """

    id: str
    source: str
    kind: str
    table: str
    scan: ScanSelect
    pushed_filters: tuple[PushedFilter, ...] = ()
    kept_filters: tuple[KeptFilter, ...] = ()
    ref: int | None = None
    dynamic: DynamicFilter | None = None
    dynamic_notes: tuple[str, ...] = ()

    #: A scan's rows take its schema's types.
    typing: ClassVar[None] = None

    @property
    def sql(self) -> str:
        return self.scan.sql

    @property
    def params(self) -> list[str]:
        return self.scan.params

    @property
    def param_types(self) -> list[str | None]:
        return self.scan.param_types

    @property
    def schema(self) -> pa.Schema:
        return self.scan.schema

    @property
    def columns(self) -> list[str]:
        """The columns read."""
        names: list[str] = self.scan.schema.names
        return names

    @property
    def what(self) -> str:
        return f"scan {self.table}"

    @property
    def pushed(self) -> list[str]:
        """What was pushed into it, as EXPLAIN lists it."""
        return ["columns " + ", ".join(self.columns), *(str(f) for f in self.pushed_filters)]

    @property
    def kept(self) -> list[str]:
        """What stayed local and why, as EXPLAIN lists it."""
        return [str(f) for f in self.kept_filters]


@dataclass(frozen=True)
class QueryFragment:
    """A whole query, or a derived table or CTE, sent to one source in its dialect.

    Attributes:
        id: the fragment's name in the residual (``f1``, ``f2``, ...).
        source: the source it runs on.
        kind: the source kind.
        sql: the SQL sent, with ``$n`` / ``?n`` markers for bound parameters.
        params: parameter names, in marker order.
        param_types: per marker, the DuckDB type of what it is compared with (or ``None``);
            text values are converted to it before binding where the source needs typed
            values.
        typing: for a source that is not DuckDB, how DuckDB types its result; the source's rows
            are conformed to those types (``None``: keep the driver's).
        subquery: the name of the derived table or CTE it stands for in the residual; ``None``
            for the whole query.
        aggregate: for a partial aggregate of one table below a join (eager aggregation),
            what it groups and computes; ``None`` otherwise.
        tree: the query sent, as a tree with its markers in place (a rule may extend it).
        dynamic: run-time filters on the join keys of a partial aggregate's table, from other
            fragments' rows (applied before it groups).
        dynamic_notes: why join keys that could have filtered it at run time do not.
    """

    id: str
    source: str
    kind: str
    sql: str
    params: list[str]
    param_types: list[str | None] = field(default_factory=list)
    typing: ResultTyping | None = None
    subquery: str | None = None
    aggregate: PartialAggregate | None = None
    tree: exp.Expr | None = field(default=None, compare=False, repr=False)
    dynamic: DynamicFilter | None = None
    dynamic_notes: tuple[str, ...] = ()

    #: Its types come from ``typing`` (or the driver).
    schema: ClassVar[None] = None

    @property
    def what(self) -> str:
        if self.aggregate is not None:
            return f"partial aggregate of {self.aggregate.table}"
        return "whole query" if self.subquery is None else "subquery"

    @property
    def pushed(self) -> list[str]:
        """What was pushed into it, as EXPLAIN lists it."""
        if self.aggregate is not None:
            return [str(self.aggregate), *(str(f) for f in self.aggregate.filters)]
        return [] if self.subquery is None else [f"the whole subquery {self.subquery}"]

    @property
    def kept(self) -> list[str]:
        return []


@dataclass(frozen=True)
class PartialAggregate:
    """One table's rows grouped at its source before they are joined (eager aggregation): the
    residual finishes each aggregate over the groups (a sum of partial sums, ...).

    Attributes:
        table: the table's full name.
        group_by: the columns grouped by (the join keys and the columns the query reads
            outside aggregates).
        aggregates: the partial aggregates, as DuckDB SQL over the table's columns.
        groups: the groups estimated from the source's statistics.
        rows: the rows estimated to be grouped.
        filters: the table's WHERE/ON conjuncts applied before grouping.
        ref: the table reference it reads (its index in the bound query).
    """

    table: str
    group_by: tuple[str, ...]
    aggregates: tuple[str, ...]
    groups: float
    rows: float
    filters: tuple[PushedFilter, ...] = ()
    ref: int | None = None

    def __str__(self) -> str:
        return (f"partial aggregate: group by {', '.join(self.group_by)}; "
                f"{', '.join(self.aggregates)} (eager aggregation: ~{approx_count(self.groups)} "
                f"groups from ~{approx_count(self.rows)} rows)")


#: A piece of the query sent to one source; the executor reads ``id``, ``source``, ``kind``,
#: ``sql``, ``params``, ``param_types``, ``schema``, ``typing`` and ``dynamic`` of either kind.
Fragment: TypeAlias = ScanFragment | QueryFragment


@dataclass(frozen=True)
class ResultTyping:
    """The result types DuckDB gives a whole query, found by running it over empty stand-ins.

    A source computes with its own types: PostgreSQL answers ``sum(quantity * unit_price)``
    as NUMERIC without a scale, which no fixed DECIMAL holds exactly. DuckDB's type for the same
    expression (here DECIMAL(38, 16)) is what the query has in the residual and in every other
    mode, so the whole query's rows are conformed to it (exactly, or with an error).

    Attributes:
        sql: the query in DuckDB SQL, its tables replaced by the stand-ins.
        tables: each stand-in's name and its columns as (name, DuckDB type).
    """

    sql: str
    tables: list[tuple[str, list[tuple[str, str]]]]


@dataclass(frozen=True)
class PartialPlan:
    """A plan before its scans: what has been pushed so far, and what is left.

    Attributes:
        residual: the query with each pushed part replaced by a read of its fragment
            (``fragment_table(id)``); the table references still in it (``meta[bind.REF]``) and
            not in ``read`` are left to scan. Rules copy it before rewriting it.
        fragments: the fragments made so far, in order (their ids are ``f1``, ``f2``, ...).
        read: the table references those fragments read.
        notes: why the plan has its shape so far, for EXPLAIN.
    """

    residual: exp.Expression
    fragments: tuple[QueryFragment, ...] = ()
    read: frozenset[int] = frozenset()
    notes: tuple[str, ...] = ()


def fragment_table(fragment_id: str) -> str:
    """The name a fragment's rows have in the residual (registered per query cursor)."""
    return f"__fragment_{fragment_id}"


def read_as(node: exp.Table, name: str) -> None:
    """Replace a table reference of a residual by a read of ``name`` (a fragment's rows, a
    hybrid table), under the same alias and column aliases."""
    alias = node.args.get("alias")
    replacement = exp.Table(
        this=exp.to_identifier(name),
        alias=exp.TableAlias(
            this=exp.to_identifier(node.alias),
            columns=[c.copy() for c in (alias.columns if alias is not None else [])]),
    )
    # A parenthesised join hangs off its first table: keep it (and PIVOT, samples, ...).
    for key, value in node.args.items():
        if key not in ("this", "db", "catalog", "alias") and value:
            replacement.set(key, value)
    node.replace(replacement)


@dataclass(frozen=True)
class HybridRead:
    """A table read as its replica plus the source's delta (the ``hybrid`` route).

    Attributes:
        table: its full name.
        name: what the residual reads it as (a view made per query, ``hybrid_table(i)``).
        delta: how its delta is read, e.g. ``append on id``.
    """

    table: str
    name: str
    delta: str


def hybrid_table(index: int) -> str:
    """The name a hybrid table's rows have in the residual (a view per query cursor)."""
    return f"__hybrid_{index}"


@dataclass
class Plan:
    """Fragments plus the residual; ``residual`` is ``None`` when one fragment is the whole query.

    Attributes:
        sql: the query as written.
        fragments: what each source runs.
        residual: the DuckDB query over the fragments, each read as ``fragment_table(id)``.
        notes: why the plan has this shape.
        local_tables: tables read from their local replica (sources in sync mode).
        routes: where each table of an ``auto`` source is read, and why.
        hybrid: the tables read as replica plus delta (also in ``local_tables``).
        time_zone: for ``SET TimeZone``, the zone it sets (nothing runs).
    """

    sql: str
    fragments: list[Fragment]
    residual: exp.Expression | None
    params: list[str]
    notes: list[str] = field(default_factory=list)
    local_tables: list[str] = field(default_factory=list)
    time_zone: str | None = None
    routes: list[Route] = field(default_factory=list)
    hybrid: list[HybridRead] = field(default_factory=list)

    @functools.cached_property
    def residual_params(self) -> list[str]:
        """The named parameters the residual itself uses (others went to fragments)."""
        if self.residual is None:
            return []
        found = self.residual.find_all(exp.Placeholder, exp.Parameter)
        return list(dict.fromkeys(node.name for node in found))

    @functools.cached_property
    def residual_sql(self) -> str | None:
        """The residual as DuckDB SQL (generated once per plan; plans are cached)."""
        return None if self.residual is None else self.residual.sql(dialect="duckdb")

    def __str__(self) -> str:
        lines = []
        if self.time_zone is not None:
            lines.append("Plan: nothing runs")
        elif self.residual is None:
            lines.append("Plan: the whole query runs on one source")
        else:
            lines.append(f"Plan: {len(self.fragments)} fragment(s), run locally in DuckDB")
        for note in self.notes:
            lines.append(f"  note: {note}")
        for route in self.routes:
            lines.append(f"  route: {route}")
        for frag in self.fragments:
            lines.append(
                f"- fragment {frag.id} on source '{frag.source}' ({frag.kind}): {frag.what}"
            )
            lines.append(f"    sql: {frag.sql}")
            if frag.params:
                lines.append("    params: " + ", ".join(f":{p}" for p in frag.params))
            for item in frag.pushed:
                lines.append(f"    pushed: {item}")
            if frag.dynamic is not None:
                df = frag.dynamic
                for key in df.keys:
                    lines.append(
                        f"    dynamic filter: {key.probe_column} in the keys of {key.build}."
                        f"{key.build_column} (read first; up to {df.max_keys} keys as a set, "
                        f"else {'their min/max range' if key.ranged else 'unfiltered'})"
                        + (f": {key.reason}" if key.reason else "")
                    )
            for note in frag.dynamic_notes:
                lines.append(f"    no dynamic filter: {note}")
            for item in frag.kept:
                lines.append(f"    kept local: {item}")
        hybrid = {h.table: h for h in self.hybrid}
        for table in self.local_tables:
            if table in hybrid:
                lines.append(f"- replica {table} + its delta from the source "
                             f"({hybrid[table].delta}), read as {hybrid[table].name}")
            else:
                lines.append(f"- replica {table}: read locally")
        if self.residual is not None:
            lines.append("- residual in DuckDB:")
            lines.append(f"    sql: {self.residual_sql}")
        return "\n".join(lines)

    __repr__ = __str__
