"""Resolving table names: ``source.schema.table``, or shorter when unique, with "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from meterql.catalog.model import Table
from meterql.errors import AmbiguousNameError, UnknownTableError


def resolve_table(parts: Sequence[str], tables: Iterable[Table]) -> Table:
    """Find the one table a 1-, 2- or 3-part name means.

    Matching ignores case, as DuckDB does. A two-part name is ``schema.table`` or
    ``source.table`` (for a source with one schema holding that table).

    >>> from meterql.catalog.model import Table
    >>> t = [Table("pg", "public", "events", ()), Table("lite", "main", "customers", ())]
    >>> resolve_table(["events"], t).full_name
    'pg.public.events'
    """
    wanted = [p.lower() for p in parts]
    candidates = list(tables)
    matches = [t for t in candidates if _matches(t, wanted)]
    if len(matches) == 1:
        return matches[0]
    name = ".".join(parts)
    if matches:
        listed = ", ".join(sorted(t.full_name for t in matches))
        raise AmbiguousNameError(
            f"table name '{name}' is ambiguous: it matches {listed}",
            table=name,
            hint="write the full name source.schema.table",
            candidates=sorted(t.full_name for t in matches),
        )
    raise UnknownTableError(
        f"no table named '{name}'", table=name, hint=_suggest(wanted, candidates)
    )


def _matches(table: Table, wanted: list[str]) -> bool:
    source, schema, name = table.source.lower(), table.schema.lower(), table.name.lower()
    if len(wanted) == 3:
        return wanted == [source, schema, name]
    if len(wanted) == 2:
        return wanted[1] == name and wanted[0] in (schema, source)
    return len(wanted) == 1 and wanted[0] == name


def _suggest(wanted: list[str], tables: list[Table]) -> str:
    if not tables:
        return "no tables are registered yet; add a source with 'meterql source add'"
    names = _closest(wanted, tables)
    if names:
        return "did you mean " + " or ".join(f"'{n}'" for n in names) + "?"
    return "run 'meterql tables' to list the tables"


def _closest(wanted: list[str], tables: list[Table], limit: int = 3) -> list[str]:
    """Full names of the tables closest to ``wanted``, best first.

    Parts are compared one by one against a spelling of each table with as many parts, so the
    long common prefix of ``pg.public.*`` does not make every table there look alike: the table
    name must be close, and so must the source and schema written before it.
    """
    scored: dict[str, float] = {}
    for t in tables:
        forms = ([t.source, t.schema, t.name], [t.schema, t.name], [t.source, t.name], [t.name])
        for form in forms:
            if len(form) != len(wanted):
                continue
            score = 1.0
            for have, want in zip(form, wanted, strict=True):
                score *= difflib.SequenceMatcher(None, have.lower(), want).ratio()
            scored[t.full_name] = max(score, scored.get(t.full_name, 0.0))
    ranked = sorted((s, n) for n, s in scored.items() if s >= 0.6)
    if not ranked:
        return []
    best = ranked[-1][0]
    return [n for s, n in sorted(ranked, key=lambda sn: (-sn[0], sn[1])) if s >= best - 0.1][:limit]
