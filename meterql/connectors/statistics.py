"""A source's statistics, built from the plain rows each connector reads from its system catalog
(``Connector.statistics``): per-column statistics and indexes, the same way for every kind.

- PostgreSQL: ``pg_stats`` (``n_distinct`` made absolute, null fraction, most common values and
  histogram bounds read as the column's values) and ``pg_index`` (valid, non-partial B-tree
  indexes);
- SQLite: ``PRAGMA index_list`` / ``index_info`` and, when ``ANALYZE`` made it,
  ``sqlite_stat1`` (the distinct values of each index's first column);
- DuckDB files: ``duckdb_indexes()``.

A table whose primary key no listed index covers (a SQLite rowid key, DuckDB's key) gets one
for it: the source finds rows by it all the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meterql.catalog.model import ColumnStats, IndexInfo, Table, TableStats
from meterql.catalog.stat_values import orders_values, pg_array, read_value
from meterql.dialects import type_family


def table_statistics(
    tables: Sequence[Table],
    columns: Mapping[str, dict[str, ColumnStats]],
    indexes: Mapping[str, list[IndexInfo]],
) -> list[TableStats]:
    """The statistics of each table (not views) of ``tables``, by full name in ``columns`` and
    ``indexes``.

    >>> from meterql.catalog.model import Column
    >>> t = Table("lite", "main", "t", (Column("id", "BIGINT", "INTEGER"),), rows=3,
    ...           primary_key=("id",))
    >>> (stats,) = table_statistics([t], {}, {})
    >>> stats.rows, [str(i) for i in stats.indexes]
    (3, ['unique index on (id)'])
    """
    out = []
    for table in tables:
        if table.kind != "table":
            continue
        found = list(indexes.get(table.full_name, ()))
        key = tuple(c.lower() for c in table.primary_key)
        if key and not any(tuple(c.lower() for c in i.columns[: len(key)]) == key
                           for i in found):
            found.append(IndexInfo("primary key", table.primary_key, True))
        out.append(TableStats(table.full_name, table.rows,
                              dict(columns.get(table.full_name, {})), tuple(found)))
    return out


def pg_column_stats(rows: Iterable[Mapping[str, Any]], tables: Sequence[Table],
                    source: str) -> dict[str, dict[str, ColumnStats]]:
    """Per table, per lower-case column: the statistics of ``pg_stats`` rows (as
    ``postgres.py`` reads them: text arrays, ``reltuples``).

    >>> from meterql.catalog.model import Column
    >>> t = Table("pg", "public", "e", (Column("n", "INTEGER", "integer"),))
    >>> row = {"schema": "public", "table_name": "e", "column_name": "n", "null_frac": 0.1,
    ...        "n_distinct": -0.5, "reltuples": 1000.0, "common": "{7,8}",
    ...        "freqs": "{0.2,0.1}", "histogram": "{1,50,99}"}
    >>> stats = pg_column_stats([row], [t], "pg")["pg.public.e"]["n"]
    >>> stats.distinct, stats.min, stats.max, stats.histogram, stats.common
    (500.0, 1, 99, (1, 50, 99), ((7, 0.2), (8, 0.1)))
    """
    by_name = {t.full_name: t for t in tables}
    out: dict[str, dict[str, ColumnStats]] = {}
    for row in rows:
        name = f"{source}.{row['schema']}.{row['table_name']}"
        table = by_name.get(name)
        column = table.column(row["column_name"]) if table is not None else None
        if table is None or column is None:
            continue
        distinct = row["n_distinct"]
        if distinct is not None and distinct < 0:  # a fraction of the rows
            distinct = -distinct * row["reltuples"] if row["reltuples"] is not None else None
        family = type_family(column.type)
        histogram: tuple[Any, ...] = ()
        common: tuple[tuple[Any, float], ...] = ()
        low = high = None
        if orders_values(family):
            histogram = tuple(v for t in pg_array(row["histogram"])
                              if t is not None and (v := read_value(t, family)) is not None)
            freqs = [float(f) for f in pg_array(row["freqs"]) if f is not None]
            common = tuple((v, f) for t, f in zip(pg_array(row["common"]), freqs, strict=False)
                           if t is not None and (v := read_value(t, family)) is not None)
            seen = [*histogram, *(v for v, _ in common)]
            if seen:
                low, high = min(seen), max(seen)
        out.setdefault(name, {})[column.name.lower()] = ColumnStats(
            column.name, distinct, row["null_frac"], low, high, histogram, common,
            row.get("correlation"))
    return out


def key_prefix(names: Sequence[str | None], table: Table | None) -> tuple[str, ...]:
    """An index's usable key columns: those before its first expression (a ``None`` name or
    one that is not a column of ``table``), spelt as the table spells them.

    >>> from meterql.catalog.model import Column
    >>> t = Table("d", "main", "t", (Column("A", "INTEGER", "INTEGER"),
    ...                              Column("b", "INTEGER", "INTEGER")))
    >>> key_prefix(["a", "b"], t), key_prefix(["b", None, "a"], t), key_prefix(["(a + 1)"], t)
    (('A', 'b'), ('b',), ())
    """
    out = []
    for name in names:
        column = table.column(name) if table is not None and name is not None else None
        if column is None:
            break
        out.append(column.name)
    return tuple(out)


def duckdb_index_columns(expressions: str) -> list[str]:
    """The names in ``duckdb_indexes().expressions`` (``[b, a]``); expressions stay as written,
    and are no column (``key_prefix`` stops there).

    >>> duckdb_index_columns("[b, a]"), duckdb_index_columns("['((a + 1))']")
    (['b', 'a'], ["'((a + 1))'"])
    """
    body = expressions.strip().removeprefix("[").removesuffix("]")
    return [part.strip().strip('"') for part in body.split(",") if part.strip()]


def sqlite_distinct(stat: str) -> tuple[int, float] | None:
    """From a ``sqlite_stat1`` entry (``"N a1 a2 ..."``: N rows, on average a1 rows per value
    of the index's first column): the rows and the distinct values of the first column.

    >>> sqlite_distinct("10000 1000 1"), sqlite_distinct("5")
    ((10000, 10.0), None)
    """
    parts = stat.split()
    try:
        rows, per_value = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None
    return rows, rows / max(per_value, 1)
