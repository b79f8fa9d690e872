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
    spellings = {}
    for t in tables:
        for form in (t.full_name, f"{t.schema}.{t.name}", f"{t.source}.{t.name}", t.name):
            spellings.setdefault(form.lower(), t.full_name)
    close = difflib.get_close_matches(".".join(wanted), list(spellings), n=3, cutoff=0.6)
    if close:
        names = sorted({spellings[c] for c in close})
        return "did you mean " + " or ".join(f"'{n}'" for n in names) + "?"
    return "run 'meterql tables' to list the tables"
