"""A query plan: fragments pushed to sources and the residual DuckDB runs over their results.

``str(plan)`` is the EXPLAIN output.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pyarrow as pa
from sqlglot import exp


@dataclass
class Fragment:
    """A piece of the query sent to one direct source, as SQL in that source's dialect.

    Attributes:
        id: the fragment's name in the residual (``f1``, ``f2``, ...).
        source: the source it runs on.
        kind: the source kind.
        sql: the SQL sent, with ``$n`` / ``?n`` markers for bound parameters.
        params: parameter names, in marker order.
        schema: the Arrow schema its rows are conformed to (``None``: the driver's types).
        table: the catalog table a scan reads (``None`` for a whole query).
        pushed: what was pushed into it, for EXPLAIN.
        kept: what stayed local and why, for EXPLAIN.
        typing: for a whole query on a source that is not DuckDB, how DuckDB types its result;
            the source's rows are conformed to those types (``None``: keep the driver's).
        tree: the scan as a sqlglot tree (markers in place), for rules that extend it.
        dialect: the sqlglot dialect ``sql`` is written in.
        dynamic: a run-time filter on this scan's join keys, from another fragment's rows.
        ref: the table reference a scan reads (its index in the bound query).
        param_types: per marker, the DuckDB type of the column it is compared with (or
            ``None``); text values are converted to it before binding where the source needs
            typed values.
    """

    id: str
    source: str
    kind: str
    sql: str
    params: list[str]
    schema: pa.Schema | None = None
    table: str | None = None
    pushed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    typing: ResultTyping | None = None
    tree: exp.Expression | None = None
    dialect: str | None = None
    dynamic: DynamicFilter | None = None
    param_types: list[str | None] = field(default_factory=list)
    ref: int | None = None


@dataclass
class DynamicFilter:
    """Join keys of a small fragment pushed into this scan once the small side has been read.

    If the build side has at most ``max_keys`` distinct non-NULL keys, ``keys_sql`` runs with them
    bound as one parameter; otherwise ``range_sql`` runs with their minimum and maximum. Both are
    the scan's own SQL plus one condition, so the scan still returns every row the join needs.

    Attributes:
        build: the fragment whose rows give the keys.
        build_column: the key column in that fragment.
        probe_column: the key column of this scan, as the source spells it.
        style: how the keys are bound (see ``Capabilities.key_sets``).
        max_keys: the most keys bound as a set.
        keys_sql: the scan with ``probe_column`` restricted to the key set.
        keys_params: its parameter names, ``__keys__`` standing for the key set.
        range_sql: the scan with ``probe_column BETWEEN min AND max``, or ``None`` where a range
            would not mean the same at the source (text under a collation): past ``max_keys``
            the scan then runs without the filter.
        range_params: its parameter names, ``__min__`` and ``__max__`` for the range.
    """

    build: str
    build_column: str
    probe_column: str
    style: str
    max_keys: int
    keys_sql: str
    keys_params: list[str]
    range_sql: str | None
    range_params: list[str]


@dataclass
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


def fragment_table(fragment_id: str) -> str:
    """The name a fragment's rows have in the residual (registered per query cursor)."""
    return f"__fragment_{fragment_id}"


@dataclass
class Plan:
    """Fragments plus the residual; ``residual`` is ``None`` when one fragment is the whole query.

    Attributes:
        sql: the query as written.
        fragments: what each source runs.
        residual: the DuckDB query over the fragments, each read as ``fragment_table(id)``.
        notes: why the plan has this shape.
        local_tables: tables read from their local replica (sources in sync mode).
    """

    sql: str
    fragments: list[Fragment]
    residual: exp.Expression | None
    params: list[str]
    notes: list[str] = field(default_factory=list)
    local_tables: list[str] = field(default_factory=list)

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
        if self.residual is None:
            lines.append("Plan: the whole query runs on one source")
        else:
            lines.append(f"Plan: {len(self.fragments)} fragment(s), run locally in DuckDB")
        for note in self.notes:
            lines.append(f"  note: {note}")
        for frag in self.fragments:
            what = f"scan {frag.table}" if frag.table else (
                "whole query" if self.residual is None else "subquery"
            )
            lines.append(f"- fragment {frag.id} on source '{frag.source}' ({frag.kind}): {what}")
            lines.append(f"    sql: {frag.sql}")
            if frag.params:
                lines.append("    params: " + ", ".join(f":{p}" for p in frag.params))
            for item in frag.pushed:
                lines.append(f"    pushed: {item}")
            if frag.dynamic is not None:
                df = frag.dynamic
                lines.append(
                    f"    dynamic filter: {df.probe_column} in the keys of {df.build}."
                    f"{df.build_column} (read first; up to {df.max_keys} keys as a set, "
                    "else their min/max range)"
                )
            for item in frag.kept:
                lines.append(f"    kept local: {item}")
        for table in self.local_tables:
            lines.append(f"- replica {table}: read locally (source in sync mode)")
        if self.residual is not None:
            lines.append("- residual in DuckDB:")
            lines.append(f"    sql: {self.residual_sql}")
        return "\n".join(lines)

    __repr__ = __str__
