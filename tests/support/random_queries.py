"""A seeded random SELECT generator over the random dataset (tests/support/random_data.py).

In the spirit of sqlsmith (random well-typed queries) and SQLancer (differential checks), each
seed gives one DuckDB-dialect query whose answer DuckDB computes deterministically, so meterql's
answer can be compared with DuckDB's. The generator can write every shape below:

- joins: inner, left, right, full, semi, anti; equi and non-equi ON; comma joins mixed with
  ``JOIN ... ON`` (``FROM a, b JOIN c ON a.x = c.y``); derived tables
- subqueries: EXISTS / NOT EXISTS, IN / NOT IN (NULLs in the list), scalar, correlated or not,
  inside GROUP BY expressions
- CTEs, some unused and some with columns nobody reads (a cast that fails on some rows)
- GROUP BY / HAVING, sum / avg / min / max / count / count(DISTINCT), window functions
- ORDER BY over every output column (a total order up to identical rows) with LIMIT / OFFSET
- UNION / INTERSECT / EXCEPT (ALL or not)
- CASE / COALESCE mixing char(n) and text, CAST and TRY_CAST, real columns against decimal
  literals, ``//`` and ``%``, date_trunc over timestamptz
- the billing functions: date_trunc / extract / date_part over ``AT TIME ZONE`` and
  ``timezone()`` in three zones, interval arithmetic, NULLIF, aggregates with FILTER,
  substring from any start, LIKE with backslashes and ESCAPE, ILIKE
- ``:named`` parameters as the first select item, in WHERE, in HAVING against expressions, in
  IN lists, and bound to NULL

Determinism: no random(), now(), LIMIT without a total order, ROWS frames, row_number, lag or
string_agg (all depend on the order of ties); scalar subqueries aggregate, so they return one row.
Float sums may differ in their last bits: the comparison allows for it, and LIMIT is only used
when no output column is a computed float.

Example:
    >>> from tests.support.random_data import build_random_data
    >>> q = generate_query(build_random_data(), seed=1, index=0)
    >>> q.sql.startswith(("SELECT", "WITH", "("))
    True
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.support.random_data import RandomData, RandomTable

#: family -> kind: values of one kind compare with each other.
KIND = {"int": "num", "hugeint": "num", "decimal": "num", "float": "num", "real": "num",
        "text": "text", "char": "text", "bool": "bool", "tstz": "tstz", "ts": "ts",
        "date": "date", "null": "null"}
ORDERABLE = ("num", "text", "tstz", "ts", "date", "bool")

NUM_LITERALS = ["0", "1", "7", "-7", "2", "0.1", "2.5", "-2.5", "16777217.0", "16777216", "123",
                "0.3", "100.0", "9223372036854775807", "1.5e0", "1e-38", "3.4e38", "0.2"]
TEXT_LITERALS = ["'FR'", "'FR '", "' FR'", "''", "'vip'", "'Zoë'", "'north'", "'de'", "' '",
                 "'A1'", "'web'", "'東京'"]
TSTZ_LITERALS = ["TIMESTAMPTZ '2024-03-31 03:00:00+02'", "TIMESTAMPTZ '2024-03-10 01:59:59-05'",
                 "TIMESTAMPTZ '2024-11-03 01:30:00-05'", "TIMESTAMPTZ '2025-01-01 03:00:00+02'",
                 "TIMESTAMPTZ '2024-10-27 02:30:00+01'", "TIMESTAMPTZ '2024-06-30 00:00:00+00'"]
TS_LITERALS = ["TIMESTAMP '2024-10-27 01:30:00'", "TIMESTAMP '2024-03-10 07:00:00'",
               "TIMESTAMP '2024-12-31 23:59:59.999999'"]
DATE_LITERALS = ["DATE '2024-02-29'", "DATE '2024-12-31'", "DATE '2025-01-01'"]
#: Untyped text compared with an instant or a date: the engine casts it to the column's type.
UNTYPED_LITERALS = {"tstz": ["'2024-03-10 01:59:59-05'", "'2024-06-30 00:00:00+00'",
                             "'2025-01-01 03:00:00+02'"],
                    "ts": ["'2024-03-10 07:00:00'"], "date": ["'2024-12-31'"]}
LITERALS = {"num": NUM_LITERALS, "text": TEXT_LITERALS, "tstz": TSTZ_LITERALS,
            "ts": TS_LITERALS, "date": DATE_LITERALS, "bool": ["TRUE", "FALSE"]}
PARAM_VALUES: dict[str, list[Any]] = {
    "num": [7, -1, 0, Decimal("0.1"), Decimal("2.5"), 16777217, 2**63 - 1, 123, None, 1.5],
    "text": ["FR", "FR ", "", "vip", "Zoë", None, "north"],
    "tstz": [dt.datetime(2024, 3, 31, 1, 0, tzinfo=dt.UTC), "2025-01-01 03:00:00+02",
             "2024-03-10 01:59:59-05", None],
    "ts": [dt.datetime(2024, 10, 27, 1, 30), "2024-03-10 07:00:00", None],
    "date": [dt.date(2024, 2, 29), "2024-12-31", None],
    "bool": [True, False, None],
}
CASTS = {
    "num": [("BIGINT", "int"), ("INTEGER", "int"), ("DOUBLE", "float"), ("FLOAT", "real"),
            ("DECIMAL(18,4)", "decimal"), ("VARCHAR", "text"), ("HUGEINT", "hugeint"),
            ("SMALLINT", "int")],
    "text": [("VARCHAR", "text"), ("INTEGER", "int"), ("DATE", "date"), ("DOUBLE", "float")],
    "tstz": [("DATE", "date"), ("TIMESTAMP", "ts"), ("VARCHAR", "text")],
    "ts": [("DATE", "date"), ("TIMESTAMPTZ", "tstz")],
    "date": [("TIMESTAMP", "ts"), ("VARCHAR", "text")],
    "bool": [("INTEGER", "int"), ("VARCHAR", "text")],
}
LIKE_PATTERNS = ["'FR%'", "'%r%'", "'_'", "'%'", "'a%b'", "'% '", "'%\\%'", "'\\_%'",
                 "'%!%%' ESCAPE '!'", "'_!_%' ESCAPE '!'"]
TRUNC_UNITS = ["'day'", "'month'", "'hour'", "'week'", "'year'", "'quarter'", "'minute'"]
ZONES = ["'Europe/Berlin'", "'America/New_York'", "'Asia/Kolkata'"]
EXTRACT_FIELDS = ["hour", "day", "month", "dow", "year", "isodow", "week", "doy", "quarter",
                  "minute", "second", "isoyear"]
INTERVALS = ["INTERVAL 1 MONTH", "INTERVAL 1 DAY", "INTERVAL 3 HOUR", "INTERVAL 1 YEAR",
             "INTERVAL 2 WEEK", "INTERVAL (-1) MONTH"]


def has_column(sql: str) -> bool:
    """Whether generated SQL reads a column (aliases are t<n> and w<n>)."""
    return re.search(r"\b[tw]\d+\.[a-z_]", sql) is not None


@dataclass(frozen=True)
class GeneratedQuery:
    """One random query: its SQL, its parameters, and whether rows compare in order."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    ordered: bool = False


@dataclass(frozen=True)
class Expr:
    sql: str
    family: str
    agg: bool = False  # holds an aggregate
    computed_float: bool = False  # a float computed by arithmetic or an aggregate

    @property
    def kind(self) -> str:
        return KIND[self.family]


@dataclass(frozen=True)
class Col:
    alias: str
    name: str
    family: str
    key: bool = False

    def expr(self) -> Expr:
        return Expr(f"{self.alias}.{self.name}", self.family)


@dataclass
class Relation:
    """A FROM item: its SQL, the alias it is read by, its columns and a size estimate."""

    sql: str
    alias: str
    cols: list[Col]
    rows: int
    source: str = ""


def generate_query(data: RandomData, seed: int, index: int) -> GeneratedQuery:
    """The ``index``-th query of ``seed`` (the same every run)."""
    return QueryGenerator(data, random.Random(f"{seed}:{index}")).query()


class QueryGenerator:
    """Writes one random query (``query()``); ``rng`` decides every choice."""

    def __init__(self, data: RandomData, rng: random.Random) -> None:
        self.data = data
        self.rng = rng
        self.params: dict[str, Any] = {}
        self.aliases = 0
        self.ctes: list[Relation] = []
        self.no_params = False  # DuckDB takes no parameter in GROUP BY

    # -- helpers ---------------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, items: list) -> Any:
        return items[self.rng.randrange(len(items))]

    def alias(self, prefix: str = "t") -> str:
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    def param(self, kind: str, value: Any = ...) -> str:
        if self.no_params:
            return self.literal(kind).sql
        name = f"p{len(self.params) + 1}"
        self.params[name] = self.pick(PARAM_VALUES[kind]) if value is ... else value
        return f":{name}"

    def kind_in_scope(self, scope: list[Relation]) -> str:
        """A kind some column in scope has (now and then any kind)."""
        cols = self.cols(scope)
        if not cols or self.chance(0.1):
            return self.pick(list(ORDERABLE))
        return KIND[self.pick(cols).family]

    def over_columns(self, scope: list[Relation], kind: str, depth: int) -> Expr:
        """An expression of ``kind`` that reads a column (not a constant)."""
        e = self.expr(scope, kind, depth)
        if not has_column(e.sql):
            return self.column(scope, kind) or e
        return e

    def literal(self, kind: str) -> Expr:
        if kind == "null" or self.chance(0.04):
            return Expr("NULL", "null")
        family = {"num": "decimal", "text": "text"}.get(kind, kind)
        text = self.pick(LITERALS[kind])
        if kind == "num" and text.lstrip("-").isdigit():
            family = "int"
        return Expr(text, family)

    # -- the query ---------------------------------------------------------------------------
    def query(self) -> GeneratedQuery:
        if self.chance(0.35):
            self.ctes = [self.cte(i) for i in range(self.rng.randint(1, 2))]
        if self.chance(0.15):
            sql, items = self.set_operation()
        else:
            sql, items = self.select(depth=0, allow_param_first=True)
        ordered = False
        if self.chance(0.3) and all(not i.computed_float for i in items):
            terms = [f"{n} {self.pick(['ASC', 'DESC'])} {self.pick(['NULLS FIRST', 'NULLS LAST'])}"
                     for n in range(1, len(items) + 1)]
            sql += " ORDER BY " + ", ".join(terms)
            if self.chance(0.7):
                sql += f" LIMIT {self.rng.randint(1, 12)}"
                if self.chance(0.3):
                    sql += f" OFFSET {self.rng.randint(1, 5)}"
            ordered = True
        if self.ctes:
            defs = ", ".join(f"{c.alias} AS ({c.sql})" for c in self.ctes)
            sql = f"WITH {defs} {sql}"
        used = set(re.findall(r":(p\d+)\b", sql))
        return GeneratedQuery(sql, {k: v for k, v in self.params.items() if k in used}, ordered)

    def cte(self, i: int) -> Relation:
        """A CTE over one table; maybe with a column nobody reads that fails to compute."""
        table = self.table()
        alias = self.alias("t")
        base = Relation(f"{table.name} {alias}", alias, self.table_cols(table, alias),
                        len(table.rows), table.source)
        chosen = self.rng.sample(base.cols, k=min(len(base.cols), self.rng.randint(2, 5)))
        keys = [c for c in base.cols if c.key]
        for key in keys:
            if key not in chosen:
                chosen.append(key)
        items = [f"{c.alias}.{c.name}" for c in chosen]
        text = [c for c in base.cols if c.family == "text"]
        if self.chance(0.2) and text:
            # A column no one reads, which fails on some rows if it is computed.
            unread = [f"CAST({self.pick(text).expr().sql} AS INTEGER)"]
            if table.short == "accounts":
                unread += [f"CAST({alias}.ratio AS BIGINT)", f"{alias}.big * 2"]
            items.append(f"{self.pick(unread)} AS unread")
        where = f" WHERE {self.predicate([base], depth=1)}" if self.chance(0.5) else ""
        name = f"w{i + 1}"
        cols = [Col(name, c.name, c.family, c.key) for c in chosen]
        sql = f"SELECT {', '.join(items)} FROM {base.sql}{where}"
        return Relation(sql, name, cols, base.rows, table.source)

    def table(self, source: str | None = None) -> RandomTable:
        """A table (of ``source``), the UHUGEINT one less often (most arithmetic on it
        overflows)."""
        tables = [t for t in self.data.tables if source is None or t.source == source]
        table = self.pick(tables)
        if table.source == "ducku" and source is None and self.chance(0.6):
            table = self.pick(tables)
        return table

    def table_cols(self, table: RandomTable, alias: str) -> list[Col]:
        return [Col(alias, c.name, c.family, c.key) for c in table.columns]

    def base_relation(self, depth: int, source: str | None = None) -> Relation:
        """A table, a CTE or a derived table; a table of ``source`` when given."""
        if source is not None:
            table = self.table(source)
            alias = self.alias()
            return Relation(f"{table.name} {alias}", alias, self.table_cols(table, alias),
                            len(table.rows), table.source)
        if self.ctes and self.chance(0.3):
            cte = self.pick(self.ctes)
            alias = self.alias()
            return Relation(f"{cte.alias} {alias}", alias,
                            [Col(alias, c.name, c.family, c.key) for c in cte.cols],
                            cte.rows, cte.source)
        table = self.table()
        alias = self.alias()
        if depth < 2 and self.chance(0.12):
            return self.derived(table, alias, depth)
        return Relation(f"{table.name} {alias}", alias, self.table_cols(table, alias),
                        len(table.rows), table.source)

    def derived(self, table: RandomTable, alias: str, depth: int) -> Relation:
        """``(SELECT ... FROM table WHERE ... [GROUP BY key]) alias``."""
        inner = self.alias()
        rel = Relation(f"{table.name} {inner}", inner, self.table_cols(table, inner),
                       len(table.rows), table.source)
        where = f" WHERE {self.predicate([rel], depth + 1)}" if self.chance(0.6) else ""
        keys = [c for c in rel.cols if c.key]
        if keys and self.chance(0.4):
            key = keys[0]
            agg = self.aggregate([rel], depth + 1)
            sql = (f"(SELECT {inner}.{key.name}, {agg.sql} AS a1 FROM {rel.sql}{where} "
                   f"GROUP BY {inner}.{key.name}) {alias}")
            cols = [Col(alias, key.name, key.family, True), Col(alias, "a1", agg.family)]
            return Relation(sql, alias, cols, rel.rows // 3 + 1, table.source)
        chosen = self.rng.sample(rel.cols, k=min(len(rel.cols), self.rng.randint(2, 5)))
        chosen += [k for k in keys if k not in chosen]
        items = ", ".join(f"{inner}.{c.name}" for c in chosen)
        distinct = "DISTINCT " if self.chance(0.2) else ""
        return Relation(f"(SELECT {distinct}{items} FROM {rel.sql}{where}) {alias}", alias,
                        [Col(alias, c.name, c.family, c.key) for c in chosen], rel.rows,
                        table.source)

    def from_clause(self, depth: int) -> tuple[str, list[Relation], list[str]]:
        """The FROM clause, the relations in scope after it, and WHERE conjuncts it needs.

        Joins are kept to tens of thousands of rows: a non-equi condition only between small
        inputs, else the customer keys.
        """
        first = self.base_relation(depth)
        sql, scope, where = first.sql, [first], []
        n = self.pick([1, 1, 2, 2, 2, 3]) if depth == 0 else self.pick([1, 1, 2])
        rows = first.rows
        # Now and then every table from one source: the query may then be sent whole.
        source = first.source if first.sql.startswith(first.source) and self.chance(0.3) \
            else None
        for i in range(1, n):
            right = self.base_relation(depth, source)
            if i == 1 and n == 3 and self.chance(0.25):
                # FROM a, b JOIN c ON a.x = c.y: the ON names the first relation.
                third = self.base_relation(depth, source)
                link, rows = self.join_condition(first, right, rows, equi=True)
                on, rows = self.join_condition(first, third, rows, equi=True)
                sql += f", {right.sql} JOIN {third.sql} ON {on}"
                scope += [right, third]
                where.append(link)
                break
            kind = self.pick(["JOIN", "JOIN", "LEFT JOIN", "LEFT JOIN", "RIGHT JOIN",
                              "FULL JOIN", "SEMI JOIN", "ANTI JOIN", ","])
            other = self.pick(scope)
            if kind == ",":
                cond, rows = self.join_condition(other, right, rows, equi=True)
                sql += f", {right.sql}"
                where.append(cond)
                scope.append(right)
            else:
                on, joined = self.join_condition(other, right, rows)
                sql += f" {kind} {right.sql} ON {on}"
                if kind in ("SEMI JOIN", "ANTI JOIN"):
                    continue
                rows = joined
                scope.append(right)
        return sql, scope, where

    def join_condition(self, left: Relation, right: Relation, rows: int,
                       equi: bool = False) -> tuple[str, int]:
        """An ON condition between ``left`` (``rows`` so far) and ``right``, and the rows the
        join may have."""
        product = rows * right.rows
        pairs = [(a, b) for a in left.cols for b in right.cols
                 if KIND[a.family] == KIND[b.family] and KIND[a.family] != "bool"]
        keys = [(a, b) for a, b in pairs if a.key and b.key]
        small = product < 40000
        if keys and (self.chance(0.75) or not small):
            (a, b), est = self.pick(keys), max(rows, product // 40)
        elif pairs and small:
            (a, b), est = self.pick(pairs), product // 2
        else:
            return ("TRUE", product) if small else ("FALSE", rows)
        if not equi and small and self.chance(0.12):
            op = self.pick(["<", "<=", ">", "<>"])
            return f"{a.alias}.{a.name} {op} {b.alias}.{b.name}", product // 2
        cond = f"{a.alias}.{a.name} = {b.alias}.{b.name}"
        if equi:
            return cond, est
        roll = self.rng.random()
        if roll < 0.3:
            (c, d), op = self.pick(pairs), self.pick(["<", ">=", "<>", "="])
            cond += f" AND {c.alias}.{c.name} {op} {d.alias}.{d.name}"
        elif roll < 0.45:
            cond += f" AND {self.predicate([self.pick([left, right])], depth=2)}"
        elif roll < 0.5 and small:
            c, d = self.pick(pairs)
            cond = f"({cond} OR {c.alias}.{c.name} > {d.alias}.{d.name})"
            est = product // 2
        return cond, est

    def select(self, depth: int, allow_param_first: bool = False,
               families: list[str] | None = None) -> tuple[str, list[Expr]]:
        """A SELECT; with ``families``, its output columns have those kinds (set operations)."""
        from_sql, scope, where = self.from_clause(depth)
        if self.chance(0.6):
            where.append(self.predicate(scope, depth))
        grouped = self.chance(0.35)
        items: list[Expr] = []
        group_sql: list[str] = []
        having = ""
        if grouped:
            for _ in range(self.pick([1, 1, 2])):
                self.no_params = True
                g = self.group_key(scope, depth)
                self.no_params = False
                group_sql.append(g.sql)
                items.append(g)
            for _ in range(self.rng.randint(1, 3)):
                items.append(self.aggregate(scope, depth))
            if self.chance(0.35):
                having = f" HAVING {self.having(scope, depth)}"
        else:
            for _ in range(self.rng.randint(1, 4)):
                kind = self.kind_in_scope(scope)
                items.append(self.over_columns(scope, kind, depth) if self.chance(0.85)
                             else self.expr(scope, kind, depth))
            if depth == 0 and self.chance(0.15):
                items.append(self.window(scope, depth))
        if families is not None:
            items = [self.coerce(scope, f, depth, grouped) for f in families]
        elif allow_param_first and self.chance(0.04):
            kind = self.pick(["num", "text", "tstz"])
            items.insert(0, Expr(self.param(kind), "text" if kind == "text" else "decimal"))
        distinct = "DISTINCT " if not grouped and self.chance(0.1) else ""
        select = ", ".join(f"{e.sql} AS c{i}" for i, e in enumerate(items))
        sql = f"SELECT {distinct}{select} FROM {from_sql}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if grouped:
            sql += " GROUP BY " + ", ".join(group_sql) + having
        return sql, items

    def coerce(self, scope: list[Relation], family: str, depth: int, grouped: bool) -> Expr:
        """An item of ``family``'s kind for a set operation's second arm."""
        kind = KIND[family]
        if grouped:
            if kind == "num" and self.chance(0.5):
                return Expr("count(*)", "int", agg=True)
            col = self.column(scope, kind)
            if col is not None:
                return Expr(f"{self.pick(['min', 'max'])}({col.sql})", col.family, agg=True)
            return self.literal(kind)
        return self.expr(scope, kind, depth)

    def set_operation(self) -> tuple[str, list[Expr]]:
        left_sql, items = self.select(depth=0)
        op = self.pick(["UNION", "UNION ALL", "INTERSECT", "EXCEPT", "INTERSECT ALL",
                        "EXCEPT ALL"])
        right_sql, right = self.select(depth=0, families=[i.family for i in items])
        merged = [Expr(a.sql, a.family, computed_float=a.computed_float or b.computed_float)
                  for a, b in zip(items, right, strict=True)]
        return f"({left_sql}) {op} ({right_sql})", merged

    # -- expressions -------------------------------------------------------------------------
    def cols(self, scope: list[Relation], kind: str | None = None) -> list[Col]:
        return [c for r in scope for c in r.cols if kind is None or KIND[c.family] == kind]

    def column(self, scope: list[Relation], kind: str) -> Expr | None:
        cols = self.cols(scope, kind)
        return self.pick(cols).expr() if cols else None

    def expr(self, scope: list[Relation], kind: str, depth: int, agg: bool = False) -> Expr:
        """An expression of ``kind`` over the columns in scope."""
        if kind == "null":
            return Expr("NULL", "null")
        roll = self.rng.random()
        col = self.column(scope, kind)
        if col is not None and (roll < 0.45 or depth >= 3):
            return col
        if depth >= 3:
            return self.literal(kind)
        if roll < 0.5 or col is None and roll < 0.6:
            return self.literal(kind)
        if roll < 0.53 and kind in ("num", "text", "tstz", "date"):
            return Expr(self.param(kind), "text" if kind == "text" else (
                "decimal" if kind == "num" else kind))
        sub = depth + 1
        if kind == "num":
            return self.num_expr(scope, sub, col)
        if kind == "text":
            return self.text_expr(scope, sub, col)
        if kind in ("tstz", "ts"):
            if col is not None and self.chance(0.4):
                return Expr(f"date_trunc({self.pick(TRUNC_UNITS)}, {col.sql})", col.family)
            instant = self.column(scope, "tstz")
            if kind == "ts" and instant is not None and self.chance(0.4):
                # a wall-clock time in a zone: the billing calendar
                zone = self.pick(ZONES)
                wall = self.pick([f"{instant.sql} AT TIME ZONE {zone}",
                                  f"timezone({zone}, {instant.sql})"])
                if self.chance(0.6):
                    wall = f"date_trunc({self.pick(TRUNC_UNITS)}, {wall})"
                return Expr(wall, "ts")
            if kind == "tstz" and instant is not None and self.chance(0.25):
                # the instant a zone's period starts at (the wall clock back to an instant)
                zone = self.pick(ZONES)
                return Expr(f"(date_trunc({self.pick(TRUNC_UNITS)}, {instant.sql} AT TIME ZONE "
                            f"{zone}) AT TIME ZONE {zone})", "tstz")
            if col is not None and self.chance(0.3):
                return Expr(f"({col.sql} {self.pick(['+', '-'])} {self.pick(INTERVALS)})",
                            col.family)
            return self.common(scope, kind, sub)
        if kind == "bool":
            return Expr(f"({self.predicate(scope, sub)})", "bool")
        return self.common(scope, kind, sub)

    def common(self, scope: list[Relation], kind: str, depth: int) -> Expr:
        """CASE, COALESCE, a cast or a scalar subquery of ``kind``."""
        roll = self.rng.random()
        if roll < 0.3:
            a, b = self.expr(scope, kind, depth), self.expr(scope, kind, depth)
            return Expr(f"CASE WHEN {self.predicate(scope, depth)} THEN {a.sql} ELSE {b.sql} END",
                        a.family, computed_float=a.computed_float or b.computed_float)
        if roll < 0.55:
            a, b = self.expr(scope, kind, depth), self.expr(scope, kind, depth)
            return Expr(f"COALESCE({a.sql}, {b.sql})", a.family,
                        computed_float=a.computed_float or b.computed_float)
        if roll < 0.72 and depth < 3:
            return self.scalar_subquery(scope, kind, depth)
        if roll < 0.8 and kind in ("num", "text"):
            a, b = self.expr(scope, kind, depth), self.expr(scope, kind, depth)
            return Expr(f"NULLIF({a.sql}, {b.sql})", a.family,
                        computed_float=a.computed_float or b.computed_float)
        sources = [k for k, casts in CASTS.items() if any(KIND[f] == kind for _, f in casts)]
        src_kind = self.pick(sources)
        target, family = self.pick([c for c in CASTS[src_kind] if KIND[c[1]] == kind])
        inner = self.expr(scope, src_kind, depth)
        cast = "TRY_CAST" if src_kind == "text" or self.chance(0.3) else "CAST"
        return Expr(f"{cast}({inner.sql} AS {target})", family,
                    computed_float=family in ("float", "real") and inner.kind != "num")

    def num_expr(self, scope: list[Relation], depth: int, col: Expr | None) -> Expr:
        roll = self.rng.random()
        if roll < 0.2:
            a, b = self.integer(scope, depth), self.integer(scope, depth)
            op = self.pick(["//", "%", "//", "%", "+", "*"])
            return Expr(f"({a.sql} {op} {b.sql})", "hugeint" if "hugeint" in (
                a.family, b.family) else "int")
        if roll < 0.35:
            a, b = self.expr(scope, "num", depth), self.expr(scope, "num", depth)
            op = self.pick(["+", "-", "*", "/"])
            fam = a.family if a.family != "null" else b.family
            flt = op == "/" or "float" in (a.family, b.family) or "real" in (a.family, b.family)
            return Expr(f"({a.sql} {op} {b.sql})", "float" if op == "/" else fam,
                        computed_float=flt)
        if roll < 0.45:
            a = self.expr(scope, "num", depth)
            fn = self.pick(["abs({})", "-({})", "round({}, 1)", "sign({})"])
            return Expr(fn.format(a.sql), a.family, computed_float=a.computed_float)
        if roll < 0.55:
            text = self.expr(scope, "text", depth)
            return Expr(f"length({text.sql})", "int")
        if roll < 0.62:
            ts = self.column(scope, "tstz") or self.column(scope, "ts")
            if ts is not None:
                unit = self.pick(EXTRACT_FIELDS)
                value = ts.sql
                if ts.family == "tstz" and self.chance(0.4):
                    value = f"{value} AT TIME ZONE {self.pick(ZONES)}"
                if self.chance(0.15):
                    return Expr(f"date_part('epoch', {value})", "float", computed_float=True)
                if self.chance(0.4):
                    return Expr(f"date_part('{unit}', {value})", "int")
                return Expr(f"extract({unit} FROM {value})", "int")
        return self.common(scope, "num", depth)

    def integer(self, scope: list[Relation], depth: int) -> Expr:
        """An integer column (sometimes a HUGEINT one), or an integer literal."""
        cols = [c for c in self.cols(scope) if c.family in ("int", "hugeint")]
        if cols and self.chance(0.8):
            return self.pick(cols).expr()
        if depth < 3 and self.chance(0.3):
            return self.scalar_subquery(scope, "num", depth + 1)
        return Expr(self.pick(["2", "7", "-3", "0", "123"]), "int")

    def text_expr(self, scope: list[Relation], depth: int, col: Expr | None) -> Expr:
        roll = self.rng.random()
        if roll < 0.25:
            # char(n) and text side by side: CASE / COALESCE over both, or a concatenation.
            a, b = self.expr(scope, "text", depth), self.expr(scope, "text", depth)
            form = self.pick(["COALESCE({a}, {b})", "CASE WHEN {p} THEN {a} ELSE {b} END",
                              "{a} || {b}", "concat({a}, {b})"])
            return Expr(form.format(a=a.sql, b=b.sql, p=self.predicate(scope, depth)), "text")
        if roll < 0.45:
            a = self.expr(scope, "text", depth)
            fn = self.pick(["upper({})", "lower({})", "trim({})", "rtrim({})", "substr({}, 1, 2)",
                            "substring({}, 2)", "substring({}, 0, 2)", "substring({}, -2, 2)",
                            "substring({}, 3, 4)", "concat({}, '|', 7)"])
            return Expr(fn.format(a.sql), "text")
        return self.common(scope, "text", depth)

    def scalar_subquery(self, scope: list[Relation], kind: str, depth: int) -> Expr:
        """``(SELECT agg(x.col) FROM t x [WHERE x.k = outer.k AND ...])``: one row always."""
        table = self.table()
        alias = self.alias()
        rel = Relation(f"{table.name} {alias}", alias, self.table_cols(table, alias),
                       len(table.rows), table.source)
        conds = []
        if self.chance(0.6):
            conds.append(self.correlation(scope, rel))
        if self.chance(0.4):
            conds.append(self.predicate([rel], depth + 1))
        where = f" WHERE {' AND '.join(c for c in conds if c)}" if any(conds) else ""
        if kind == "num" and self.chance(0.3):
            agg = Expr("count(*)", "int", agg=True)
        else:
            col = self.column([rel], kind)
            if col is None:
                return self.literal(kind)
            fns = ["min", "max"] + (["sum", "avg"] if kind == "num" else [])
            fn = self.pick(fns)
            agg = Expr(f"{fn}({col.sql})", "float" if fn == "avg" else col.family,
                       computed_float=fn in ("sum", "avg") or col.family in ("float", "real"))
        return Expr(f"(SELECT {agg.sql} FROM {rel.sql}{where})", agg.family,
                    computed_float=agg.computed_float)

    def correlation(self, scope: list[Relation], inner: Relation) -> str:
        keys = [c for c in self.cols(scope) if c.key]
        inner_keys = [c for c in inner.cols if c.key]
        if keys and inner_keys:
            a, b = self.pick(keys), self.pick(inner_keys)
            return f"{b.alias}.{b.name} {self.pick(['=', '=', '<', '<>'])} {a.alias}.{a.name}"
        return ""

    def predicate(self, scope: list[Relation], depth: int) -> str:
        """A boolean condition over the scope (three-valued: NULLs are everywhere)."""
        roll = self.rng.random()
        if depth < 3 and roll < 0.12:
            a, b = self.predicate(scope, depth + 1), self.predicate(scope, depth + 1)
            return f"({a} {self.pick(['AND', 'OR', 'OR'])} {b})"
        if depth < 3 and roll < 0.16:
            return f"NOT ({self.predicate(scope, depth + 1)})"
        if depth < 2 and roll < 0.26:
            return self.subquery_predicate(scope, depth + 1)
        kind = self.kind_in_scope(scope)
        left = self.over_columns(scope, kind, depth + 1)
        if roll < 0.32:
            return f"{left.sql} IS {self.pick(['', 'NOT '])}NULL"
        if roll < 0.4:
            values = [self.literal(kind).sql if self.chance(0.7) else self.param(kind)
                      for _ in range(self.rng.randint(1, 4))]
            return f"{left.sql} {self.pick(['IN', 'NOT IN'])} ({', '.join(values)})"
        if roll < 0.45 and kind in ("num", "tstz", "date"):
            lo, hi = self.literal(kind), self.literal(kind)
            return f"{left.sql} BETWEEN {lo.sql} AND {hi.sql}"
        if roll < 0.49:
            right = self.expr(scope, kind, depth + 1)
            return f"{left.sql} IS {self.pick(['', 'NOT '])}DISTINCT FROM {right.sql}"
        if roll < 0.55 and kind == "text":
            op = self.pick(["LIKE", "LIKE", "NOT LIKE", "ILIKE"])
            pattern = self.pick(LIKE_PATTERNS)
            if op == "ILIKE" and "ESCAPE" in pattern:
                op = "LIKE"
            return f"{left.sql} {op} {pattern}"
        if kind == "bool":
            return left.sql if left.sql not in ("NULL",) else "TRUE"
        if roll < 0.7:
            if kind in UNTYPED_LITERALS and self.chance(0.3):
                right = Expr(self.pick(UNTYPED_LITERALS[kind]), "text")
            else:
                right = self.literal(kind) if self.chance(0.8) else Expr(self.param(kind), kind)
        else:
            right = self.expr(scope, kind, depth + 1)
        op = self.pick(["=", "<>", "<", "<=", ">", ">="])
        return f"{left.sql} {op} {right.sql}"

    def subquery_predicate(self, scope: list[Relation], depth: int) -> str:
        table = self.table()
        alias = self.alias()
        rel = Relation(f"{table.name} {alias}", alias, self.table_cols(table, alias),
                       len(table.rows), table.source)
        extra = self.predicate([rel], depth + 1) if self.chance(0.4) else ""
        if self.chance(0.45):
            corr = self.correlation(scope, rel) if self.chance(0.75) else ""
            conds = " AND ".join(c for c in (corr, extra) if c)
            where = f" WHERE {conds}" if conds else ""
            return f"{self.pick(['EXISTS', 'NOT EXISTS'])} (SELECT 1 FROM {rel.sql}{where})"
        keys = [c for c in self.cols(scope) if c.key]
        inner_keys = [c for c in rel.cols if c.key]
        if keys and inner_keys and self.chance(0.7):
            outer, inner = self.pick(keys).expr(), self.pick(inner_keys).expr()
        else:
            kind = self.pick(["num", "text", "date"])
            outer, inner = self.expr(scope, kind, depth + 1), self.column([rel], kind)
            if inner is None:
                return self.predicate(scope, depth + 1)
        where = f" WHERE {extra}" if extra else ""
        op = self.pick(["IN", "NOT IN"])
        return f"{outer.sql} {op} (SELECT {inner.sql} FROM {rel.sql}{where})"

    def aggregate(self, scope: list[Relation], depth: int) -> Expr:
        roll = self.rng.random()
        if roll < 0.15:
            return Expr("count(*)", "int", agg=True)
        kind = self.pick(["num", "num", "num", "text", "tstz", "date", "bool"])
        if not self.cols(scope, kind):
            kind = self.kind_in_scope(scope)
        arg = self.over_columns(scope, kind, depth + 2)
        if roll < 0.3:
            distinct = "DISTINCT " if self.chance(0.5) else ""
            return Expr(f"count({distinct}{arg.sql})", "int", agg=True)
        if kind == "num" and roll < 0.7:
            fn = self.pick(["sum", "avg", "sum"])
            flt = fn == "avg" or arg.family in ("float", "real") or arg.computed_float
            where = (f" FILTER (WHERE {self.predicate(scope, depth + 2)})"
                     if self.chance(0.25) else "")
            return Expr(f"{fn}({arg.sql}){where}", "float" if fn == "avg" else arg.family,
                        agg=True, computed_float=flt)
        fn = self.pick(["min", "max"])
        return Expr(f"{fn}({arg.sql})", arg.family, agg=True, computed_float=arg.computed_float)

    def group_key(self, scope: list[Relation], depth: int) -> Expr:
        roll = self.rng.random()
        if roll < 0.03:
            # An expression holding a subquery (DuckDB groups by it).
            col = self.column(scope, "num")
            if col is not None:
                sub = self.scalar_subquery([], "num", depth + 1)  # uncorrelated
                return Expr(f"COALESCE({col.sql}, {sub.sql})", col.family)
        if roll < 0.06:
            key = self.pick([c for c in self.cols(scope) if c.key] or self.cols(scope)).expr()
            table = self.table()
            inner = self.alias()
            keycol = next((c for c in table.columns if c.key), None)
            if keycol is not None:
                return Expr(f"({key.sql} IN (SELECT {inner}.{keycol.name} FROM "
                            f"{table.name} {inner}))", "bool")
        return self.over_columns(scope, self.kind_in_scope(scope), depth + 2)

    def having(self, scope: list[Relation], depth: int) -> str:
        roll = self.rng.random()
        if roll < 0.3:
            ts = self.column(scope, "tstz")
            if ts is not None:
                return f"max({ts.sql}) <= {self.param('tstz')}"
        agg = self.aggregate(scope, depth)
        kind = agg.kind if agg.kind != "null" else "num"
        if kind == "bool":
            return agg.sql
        right = self.param(kind) if self.chance(0.3) else self.literal(kind).sql
        return f"{agg.sql} {self.pick(['>', '<=', '=', '<>'])} {right}"

    def window(self, scope: list[Relation], depth: int) -> Expr:
        """A window function whose value does not depend on the order of ties."""
        part = self.expr(scope, self.pick(["num", "text", "date"]), depth + 2)
        order = self.expr(scope, self.pick(["num", "text", "tstz"]), depth + 2)
        over_part = f"PARTITION BY {part.sql}" if self.chance(0.8) else ""
        over_order = f"ORDER BY {order.sql} {self.pick(['ASC', 'DESC'])}"
        roll = self.rng.random()
        if roll < 0.35:
            fn = self.pick(["rank()", "dense_rank()", "percent_rank()", "cume_dist()"])
            family = "float" if fn in ("percent_rank()", "cume_dist()") else "int"
            return Expr(f"{fn} OVER ({over_part} {over_order})", family,
                        computed_float=family == "float")
        num = self.column(scope, "num") or Expr("1", "int")
        fn = self.pick(["sum", "count", "min", "max", "avg"])
        order_part = over_order if self.chance(0.5) else ""
        flt = fn in ("sum", "avg") and num.family in ("float", "real", "decimal")
        return Expr(f"{fn}({num.sql}) OVER ({over_part} {order_part})",
                    "float" if fn == "avg" else num.family, computed_float=flt or fn == "avg")
