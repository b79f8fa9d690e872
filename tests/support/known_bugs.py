"""What the random suite still finds to differ from DuckDB, as signatures a failure is matched
against: today only refusals (meterql errors, with the reason, where DuckDB answers), matched by
their error message. Any wrong answer or crash is new, and fails the CI run with its repro.
``columns_read`` and ``hazards`` tell what a repro reads (a char(n), real, HUGEINT or UHUGEINT
column: the types issue 15 found wrong answers in), for the summary.

Example:
    >>> read = columns_read("SELECT a.country FROM pg.public.accounts a WHERE a.id > 1")
    >>> sorted(read)
    ['pg.public.accounts.country', 'pg.public.accounts.id']
    >>> hazards(read)
    ['char(n)']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

#: Columns of the random dataset whose type is a known source of wrong answers.
HAZARD_COLUMNS = {
    "char(n)": {"pg.public.accounts.country", "pg.public.invoices.code"},
    "real": {"pg.public.accounts.score", "pg.public.invoices.tax"},
    "hugeint": {"duck.main.sessions.customer_id", "duck.main.sessions.bytes"},
    "uhugeint": {"ducku.main.counters.hits"},
}


@dataclass(frozen=True)
class Failure:
    """What a known-bug signature looks at."""

    outcome: str  # "wrong", "refused" or "crash"
    sql: str
    error: str = ""  # refused and crash: "ErrorClass: message" (and the message as raised)
    fixed_without_dynamic_filter: bool = False


@dataclass(frozen=True)
class KnownBug:
    id: str
    title: str
    outcomes: tuple[str, ...]
    matches: Callable[[Failure], bool]


def columns_read(sql: str) -> set[str]:
    """Full names (``source.schema.table.column``) of the base-table columns a query reads.

    Columns are followed through CTEs and derived tables by their alias; names the query does
    not qualify are matched to a table in scope that has them (best effort).
    """
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return set()
    ctes = {cte.alias: cte.this for cte in tree.find_all(exp.CTE)}
    aliases: dict[str, exp.Expression | str] = {}
    for table in tree.find_all(exp.Table):
        full = ".".join(p for p in (table.catalog, table.db, table.name) if p)
        aliases[table.alias_or_name] = ctes.get(table.name, full)
    for sub in tree.find_all(exp.Subquery):
        if sub.alias:
            aliases[sub.alias] = sub.this
    found: set[str] = set()

    def resolve(column: exp.Column, depth: int) -> None:
        target = aliases.get(column.table)
        if isinstance(target, str):
            found.add(f"{target}.{column.name}")
        elif isinstance(target, exp.Query) and depth < 8:
            for select in target.find_all(exp.Select):
                for item in select.expressions:
                    if item.alias_or_name == column.name:
                        for inner in item.find_all(exp.Column):
                            resolve(inner, depth + 1)
        elif not column.table:
            for name in aliases.values():
                if isinstance(name, str):
                    found.add(f"{name}.{column.name}")

    for column in tree.find_all(exp.Column):
        resolve(column, 0)
    return found


_CONSTRUCTS: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.Exists, "EXISTS"), (exp.Window, "window"), (exp.Group, "GROUP BY"),
    (exp.Having, "HAVING"), (exp.Union, "UNION"), (exp.Intersect, "INTERSECT"),
    (exp.Except, "EXCEPT"), (exp.CTE, "CTE"), (exp.Distinct, "DISTINCT"), (exp.Limit, "LIMIT"),
    (exp.TryCast, "TRY_CAST"), (exp.IntDiv, "//"), (exp.Mod, "%"), (exp.Div, "/"),
    (exp.Case, "CASE"), (exp.Coalesce, "COALESCE"), (exp.Placeholder, "parameter"),
    (exp.Parameter, "parameter"), (exp.AggFunc, "aggregate"),
)


def features(sql: str) -> list[str]:
    """What a (minimized) query is made of: its joins, constructs and the declared types of
    the columns it reads; new wrong answers are grouped by it."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return ["unparsed"]
    found = set()
    for join in tree.find_all(exp.Join):
        words = " ".join(w for w in (join.side, join.kind) if w)
        found.add(f"{words} JOIN".strip() if join.args.get("on") or words else "comma join")
    for node_type, name in _CONSTRUCTS:
        if tree.find(node_type) is not None:
            found.add(name)
    if any(isinstance(c, exp.Cast) and not isinstance(c, exp.TryCast)
           for c in tree.find_all(exp.Cast)):
        found.add("CAST")
    for sub in tree.find_all(exp.Subquery):
        if not isinstance(sub.parent, exp.From | exp.Join):
            found.add("subquery")
    declared = column_types()
    found.update(declared[c] for c in columns_read(sql) if c in declared)
    return sorted(found)


@functools.cache
def column_types() -> dict[str, str]:
    """``source.schema.table.column`` -> ``source TYPE`` as the source declares it."""
    from tests.support.random_data import build_random_data

    return {f"{t.name}.{c.name}": f"{t.source} {c.declared.split()[0]}"
            for t in build_random_data().tables for c in t.columns}


def hazards(read: set[str]) -> list[str]:
    """The hazard families among the columns read."""
    return [name for name, cols in HAZARD_COLUMNS.items() if read & cols]




def _error(pattern: str, also: Callable[[Failure], bool] = lambda f: True
           ) -> Callable[[Failure], bool]:
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda f: bool(regex.search(f.error)) and also(f)








WRONG, REFUSED, CRASH = ("wrong",), ("refused",), ("crash",)

#: What is still known to differ from DuckDB, tried in order: the first match names a failure.
#: Issue 15's bugs and R1-R4 are fixed; their regression tests are in
#: tests/test_correctness_regressions.py. What is left is refusals only, no wrong answer: a
#: query DuckDB answers that meterql refuses with an error saying why.
KNOWN_BUGS: tuple[KnownBug, ...] = (
    KnownBug("order", "evaluation order: an expression that raises for some rows (a cast, a "
             "division by zero, an overflow) is computed where the rows are, before the "
             "filters and joins that DuckDB's own plan would have applied first",
             REFUSED,
             _error(r"Conversion Error|Could not convert|out of range|Division by zero|Overflow")),
)


def known_bug(failure: Failure) -> KnownBug | None:
    """The first known bug the failure matches, or None (a new bug)."""
    return next((b for b in KNOWN_BUGS
                 if failure.outcome in b.outcomes and b.matches(failure)), None)
