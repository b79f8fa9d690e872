"""The open bugs of issue 15 (and those this suite found since) as signatures a random failure
can be matched against.

A wrong answer matches a known bug by what its (minimized) query reads and does: a char(n)
column of PostgreSQL, a real column of PostgreSQL, a HUGEINT or UHUGEINT column of a DuckDB
file, or an ANTI JOIN whose answer is right once dynamic filtering is off. A refused query
(meterql errors where DuckDB answers) or a crash matches by its error message and the construct
named in the bug. Anything else is new.

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


def _reads(family: str) -> Callable[[Failure], bool]:
    return lambda f: family in hazards(columns_read(f.sql))


def _error(pattern: str, also: Callable[[Failure], bool] = lambda f: True
           ) -> Callable[[Failure], bool]:
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda f: bool(regex.search(f.error)) and also(f)


def _sql(pattern: str) -> Callable[[Failure], bool]:
    regex = re.compile(pattern, re.IGNORECASE)
    return lambda f: bool(regex.search(f.sql))


def _unread_or_unused_cte(f: Failure) -> bool:
    try:
        tree = sqlglot.parse_one(f.sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return False
    for cte in tree.find_all(exp.CTE):
        body = cte.this
        if isinstance(body, exp.Select) and any(e.alias_or_name.startswith("unread")
                                                for e in body.expressions):
            return True
        if not [t for t in tree.find_all(exp.Table) if t.name == cte.alias]:
            return True
    return False


def _group_by_subquery(f: Failure) -> bool:
    try:
        tree = sqlglot.parse_one(f.sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return False
    return any(g.find(exp.Subquery, exp.Select) is not None for g in tree.find_all(exp.Group))


WRONG, REFUSED, CRASH = ("wrong",), ("refused",), ("crash",)

#: The open bugs of issue 15, then the ones this suite found since (``R<n>``), in the order
#: they are tried: the first match names a failure.
KNOWN_BUGS: tuple[KnownBug, ...] = (
    # -- wrong answers --------------------------------------------------------------------
    KnownBug("15.1", "ANTI JOIN with a dynamic filter drops rows", WRONG,
             lambda f: f.fixed_without_dynamic_filter and "ANTI JOIN" in f.sql.upper()),
    KnownBug("R1", "UHUGEINT from a DuckDB file: past 2^127 read negative, VARCHAR when "
             "scanned", WRONG, _reads("uhugeint")),
    KnownBug("15.4", "HUGEINT from a DuckDB file becomes DECIMAL(38,0)", WRONG,
             _reads("hugeint")),
    KnownBug("15.2", "PostgreSQL char(n) read padded, compared pad-insensitively", WRONG,
             _reads("char(n)")),
    KnownBug("15.3", "PostgreSQL real compared with decimals, summed as float4", WRONG,
             _reads("real")),
    KnownBug("R4", "SEMI/ANTI JOIN then RIGHT/FULL JOIN sent whole: the EXISTS lands in WHERE, "
             "after the outer join", WRONG,
             _sql(r"\b(SEMI|ANTI) JOIN\b.*\b(RIGHT|FULL)( OUTER)? JOIN\b")),
    # -- refused valid SQL and crashes: the specific signatures first, the ones that only
    # look at what the query reads last
    KnownBug("15.5", ":name right after SELECT or '(' does not parse", REFUSED,
             _error(r"SqlParseError", _sql(r"(SELECT(\s+DISTINCT)?|\()\s*:p\d"))),
    KnownBug("R2", "an internal DuckDB error in the residual invalidates the engine: every "
             "later query fails", REFUSED + CRASH,
             _error(r"INTERNAL Error|database has been invalidated")),
    KnownBug("R3", "dynamic filter keys past BIGINT (UBIGINT) bound to a PostgreSQL bigint",
             REFUSED, _error(r"out of range for type bigint")),
    KnownBug("15.6", "FROM a, b JOIN c ON a.x = c.y sent whole to PostgreSQL", REFUSED,
             _error(r"invalid reference to FROM-clause entry")),
    KnownBug("15.8", "TRY_CAST sent to PostgreSQL as CAST", REFUSED,
             _error(r"source 'pg'.*(invalid input syntax for type|out of range)",
                    _sql(r"TRY_CAST"))),
    KnownBug("15.9", "GROUP BY an expression holding a subquery", REFUSED,
             _error(r"must appear in the GROUP BY clause", _group_by_subquery)),
    KnownBug("15.10", "FULL JOIN with a non-equality ON sent to PostgreSQL", REFUSED,
             _error(r"FULL JOIN is only supported")),
    KnownBug("15.11", "a text parameter compared with an expression at PostgreSQL", REFUSED,
             _error(r"operator does not exist: .*\btext\b")),
    KnownBug("15.7", "errors on values never needed (unread CTE columns, unused CTEs)", REFUSED,
             _error(r"source '\w+'", _unread_or_unused_cte)),
    KnownBug("15.3", "PostgreSQL real overflows float4", REFUSED,
             _error(r"value out of range: (overflow|underflow)", _reads("real"))),
    KnownBug("R1", "UHUGEINT from a DuckDB file: past 2^127 read negative, VARCHAR when "
             "scanned", REFUSED + CRASH,
             _error(r"VARCHAR|\bhits\b|UINT128|UINT64|HUGEINT|DECIMAL|Overflow",
                    _reads("uhugeint"))),
    KnownBug("15.4", "HUGEINT from a DuckDB file becomes DECIMAL(38,0)", REFUSED,
             _error(r"DECIMAL|HUGEINT|INT128|Overflow|out of range|Division by zero",
                    _reads("hugeint"))),
)


def known_bug(failure: Failure) -> KnownBug | None:
    """The first known bug the failure matches, or None (a new bug)."""
    return next((b for b in KNOWN_BUGS
                 if failure.outcome in b.outcomes and b.matches(failure)), None)
