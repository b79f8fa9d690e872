"""A query plan: fragments pushed to sources and the residual DuckDB runs over their results.

``str(plan)`` is the EXPLAIN output.
"""

from __future__ import annotations

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
        skip_rows: leading rows to drop (SQLite's typed first row).
        typing: for a whole query on a source that is not DuckDB, how DuckDB types its result;
            the source's rows are conformed to those types (``None``: keep the driver's).
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
    skip_rows: int = 0
    typing: ResultTyping | None = None


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


@dataclass
class Plan:
    """Fragments plus the residual; ``residual`` is ``None`` when one fragment is the whole query.

    Attributes:
        sql: the query as written.
        fragments: what each source runs.
        residual: the DuckDB query over the fragments, with fragment tables in schema ``__q__``.
        notes: why the plan has this shape.
        columns: output column names, in order.
    """

    sql: str
    fragments: list[Fragment]
    residual: exp.Expression | None
    params: list[str]
    notes: list[str] = field(default_factory=list)

    def residual_sql(self, schema: str = "__q__") -> str | None:
        """The residual as DuckDB SQL, its fragment tables in ``schema``."""
        if self.residual is None:
            return None
        tree = self.residual.copy()
        for table in tree.find_all(exp.Table):
            if table.meta.get("fragment"):
                table.set("db", exp.to_identifier(schema))
        return tree.sql(dialect="duckdb")

    def __str__(self) -> str:
        lines = []
        if self.residual is None:
            lines.append("Plan: the whole query runs on one source")
        else:
            lines.append(f"Plan: {len(self.fragments)} fragment(s), joined locally in DuckDB")
        for note in self.notes:
            lines.append(f"  note: {note}")
        for frag in self.fragments:
            what = f"scan {frag.table}" if frag.table else "whole query"
            lines.append(f"- fragment {frag.id} on source '{frag.source}' ({frag.kind}): {what}")
            lines.append(f"    sql: {frag.sql}")
            if frag.params:
                lines.append("    params: " + ", ".join(f":{p}" for p in frag.params))
            for item in frag.pushed:
                lines.append(f"    pushed: {item}")
            for item in frag.kept:
                lines.append(f"    kept local: {item}")
        if self.residual is not None:
            lines.append("- residual in DuckDB:")
            lines.append(f"    sql: {self.residual_sql('q')}")
        return "\n".join(lines)

    __repr__ = __str__
