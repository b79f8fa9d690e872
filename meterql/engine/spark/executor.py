"""The spark engine: the residual of a plan runs in Spark SQL through Spark Connect.

The plan is the one the embedded engine runs; only where its residual runs changes. Direct
sources' fragments are read by meterql as today and handed to Spark as Arrow; the tables
DuckDB holds (replicas, ``local``) are read by Spark from their Parquet snapshots
(``lake.py``); the residual is transpiled by sqlglot to Spark SQL, run, and its rows come back
as Arrow in the types DuckDB gives the same query: a value that would change on the way (a
decimal that does not fit, an instant in another zone) fails the query instead.

A query that is sent whole to one source, or that reads no table, runs as on the embedded
engine: Spark adds nothing there.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.schema import Schema

from meterql.connectors.spark_connect import SparkConnection
from meterql.dialects.arrow_types import sql_type_name
from meterql.engine.execute import Executor, QueryControl, read_capped, register_typed
from meterql.engine.hybrid import Deltas
from meterql.engine.planner.plan import Plan, fragment_table
from meterql.engine.result import FragmentStats
from meterql.engine.spark import jdbc
from meterql.engine.spark.lake import KEPT, Lake, Snapshot
from meterql.engine.spark.zones import ZoneRules, in_checked_years
from meterql.errors import QueryError

#: The names of snapshot views start so (then the snapshot's name).
_SNAPSHOT_VIEW = "__meterql_snapshot_"


class SparkExecutor(Executor):
    """Runs plans whose residual combines tables in Spark (see the module's docstring)."""

    def __init__(self, duck: duckdb.DuckDBPyConnection, connector: Any, spark: SparkConnection,
                 lake: Lake, deltas: Deltas | None = None,
                 statistics: jdbc.Statistics | None = None) -> None:
        super().__init__(duck, connector, deltas)
        self.spark = spark
        self.lake = lake
        #: the sources' table statistics: which fragments Spark reads itself, over JDBC
        self.statistics: jdbc.Statistics = statistics or (lambda name: None)
        self.zones = ZoneRules()
        #: each table's snapshot views in this session, the newest last
        self._views: dict[str, list[str]] = {}
        self._views_lock = threading.Lock()

    def _run_split(
        self, plan: Plan, params: Mapping[str, Any], control: QueryControl, max_rows: int | None
    ) -> tuple[pa.Table, bool, list[FragmentStats]]:
        if plan.hybrid:
            raise QueryError(
                "the spark engine does not read a replica plus its source's delta (the hybrid "
                "route) yet", hint="give the query a freshness bound the replica meets, or "
                "set engine to duckdb")
        with contextlib.ExitStack() as held:  # the sources' snapshots the JDBC reads import
            return self._run_with(plan, params, control, max_rows, held)

    def _run_with(self, plan: Plan, params: Mapping[str, Any], control: QueryControl,
                  max_rows: int | None, held: contextlib.ExitStack,
                  ) -> tuple[pa.Table, bool, list[FragmentStats]]:
        reads = self._jdbc_reads(plan, params, held)
        by_arrow = [f for f in plan.fragments if f.id not in reads]
        tables, stats = self._load_fragments(by_arrow, params, control)
        control.check()
        values = {name: params[name] for name in plan.residual_params}
        empty = {frag_id: schema.empty_table() for frag_id, (_, schema) in reads.items()}
        expected = self._duckdb_schema(plan, {**tables, **empty}, values)
        names: dict[str, str] = {}
        types: dict[str, dict[str, str]] = {}
        views: list[str] = []
        tag = self.spark.view_name("query")
        handle = control.handle()
        handle.bind(lambda: self.spark.interrupt(tag))
        try:
            for frag in plan.fragments:
                if frag.id not in reads:
                    continue
                read, schema = reads[frag.id]
                view = self.spark.view_name(frag.id)
                self.spark.register_jdbc(view, read.options, read.columns, read.casts)
                views.append(view)
                names[fragment_table(frag.id)] = view
                types[view] = _column_types(schema)
                done = FragmentStats(frag.id, frag.source)
                done.note = (f"read by Spark over JDBC in {read.partitions} partition(s)"
                             + (f" on {read.partition_column}" if read.partition_column else ""))
                stats.append(done)
            for frag_id, table in tables.items():
                view = self.spark.view_name(frag_id)
                self.spark.register_arrow(view, table)
                views.append(view)
                names[fragment_table(frag_id)] = view
                types[view] = _column_types(table.schema)
            snapshots = []
            for table_name in plan.local_tables:
                snapshot = self.lake.snapshot(self._duck, table_name)
                snapshots.append(snapshot)
                view = self._snapshot_view(snapshot)
                names[table_name] = view
                types[view] = _column_types(snapshot.schema)
                done = FragmentStats(f"snapshot of {table_name}", table_name.split(".", 1)[0])
                done.rows, done.note = snapshot.rows, snapshot.describe()
                stats.append(done)
            sql = spark_sql(plan.residual, names, types, values)
            for zone in sorted(zones_converted_to(plan.residual)):
                self.zones.check(zone, self._duck, self.spark)
            try:
                got = self.spark.run(sql, values, max_rows, tag)
            except QueryError as exc:
                if "TABLE_OR_VIEW_NOT_FOUND" not in str(exc) or _SNAPSHOT_VIEW not in str(exc):
                    raise
                # a new session on the server (it restarted): its snapshot views, once more
                for snapshot in snapshots:
                    self._snapshot_view(snapshot, again=True)
                got = self.spark.run(sql, values, max_rows, tag)
        finally:
            handle.bind(None)
            self.spark.drop_views(views)
        control.check()
        table, truncated = read_capped(got.to_reader(), max_rows)
        return conform(table, expected), truncated, stats

    def _jdbc_reads(self, plan: Plan, params: Mapping[str, Any], held: contextlib.ExitStack
                    ) -> dict[str, tuple[jdbc.JdbcRead, pa.Schema]]:
        """The fragments Spark reads itself over JDBC (:mod:`.jdbc`: large PostgreSQL ones),
        by id, with their Arrow schemas; each source's snapshot is exported and held in
        ``held`` so that every partition reads the same state of it."""
        schemas: dict[str, pa.Schema | None] = {}
        for frag in plan.fragments:
            if frag.kind == "postgres" and frag.dynamic is None:
                schemas[frag.id] = frag.schema if frag.schema is not None or \
                    frag.typing is None else self._duckdb_types(
                        frag.typing, {n: params[n] for n in frag.params})
        chosen = jdbc.jdbc_fragments(plan.fragments, self.statistics, schemas)
        reads: dict[str, tuple[jdbc.JdbcRead, pa.Schema]] = {}
        snapshots: dict[str, str] = {}
        for frag in plan.fragments:
            schema = schemas.get(frag.id)
            if frag.id not in chosen or schema is None:
                continue
            connector = self._connector(frag.source)
            if frag.source not in snapshots:
                snapshots[frag.source] = held.enter_context(jdbc.exported_snapshot(connector))
            read = jdbc.jdbc_read(frag, connector.source, self._bind(frag, frag.params, params),
                                  self.statistics, schema=schema,
                                  snapshot=snapshots[frag.source])
            if read is not None:  # else meterql reads it, as Arrow
                reads[frag.id] = (read, schema)
        return reads

    def _snapshot_view(self, snapshot: Snapshot, again: bool = False) -> str:
        """The session's view of a snapshot, registered on its first query (Spark reads the
        files' footers then) and kept: a snapshot's files never change. The views of a
        table's older snapshots are dropped as the lake drops their files."""
        view = _SNAPSHOT_VIEW + snapshot.name.replace("-", "_")  # (a name is never reused)
        with self._views_lock:
            known = self._views.setdefault(snapshot.table, [])
            if view in known and not again:
                return view
        self.spark.register_parquet(view, snapshot.files, snapshot.schema)
        with self._views_lock:
            if view not in known:
                known.append(view)
            old, known[:] = known[:-KEPT], known[-KEPT:]
        self.spark.drop_views(old)
        return view

    def _duckdb_schema(self, plan: Plan, tables: dict[str, pa.Table],
                       values: Mapping[str, Any]) -> pa.Schema:
        """The names and types DuckDB gives the residual (run over no rows)."""
        cur = self._duck.cursor()
        try:
            for frag_id, table in tables.items():
                register_typed(cur, fragment_table(frag_id), table.slice(0, 0))
            return cur.sql(plan.residual_sql or "", params=dict(values) or None) \
                .limit(0).to_arrow_table().schema
        except duckdb.Error as exc:
            raise QueryError(f"the query cannot run: {str(exc).splitlines()[0]}",
                             sql=plan.sql) from exc
        finally:
            cur.close()


def spark_sql(residual: exp.Expression | None, names: Mapping[str, str],
              columns: Mapping[str, Mapping[str, str]] | None = None,
              params: Mapping[str, Any] | None = None) -> str:
    """The residual in Spark SQL, every table it reads replaced by its view in ``names``
    (keyed by ``fragment_table(id)`` or ``source.schema.table``). ``columns``: each view's
    column types (DuckDB's names), with which what Spark would compute differently is made
    exact or refused (:func:`check_meaning`); ``params``: the values bound to the query.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT a // 2 AS h FROM pg.public.t AS x ORDER BY a",
    ...                          read="duckdb")
    >>> spark_sql(tree, {"pg.public.t": "v1"})
    'SELECT a DIV 2 AS h FROM v1 AS x ORDER BY a NULLS LAST'
    """
    if residual is None:
        raise RuntimeError("a plan without a residual reached the spark engine")
    tree = residual.copy()
    for node in list(tree.find_all(exp.Table)):
        key = ".".join(p.name for p in node.parts)
        view = names.get(key)
        if view is None:
            continue
        alias = node.args.get("alias")
        if alias is None:  # the columns stay qualified by the table's own name
            alias = exp.TableAlias(this=exp.to_identifier(node.name))
        node.replace(exp.Table(this=exp.to_identifier(view), alias=alias))
    tree = check_meaning(tree, columns or {}, params or {})
    for division in reversed(list(tree.find_all(exp.Div, bfs=False))):  # innermost first
        replaced = _ieee_division(division)
        if division is tree:
            tree = replaced
        else:
            division.replace(replaced)
    return tree.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)


_DOUBLE = exp.DataType.build("DOUBLE")
_TEXT = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR,
         exp.DataType.Type.NCHAR, exp.DataType.Type.NVARCHAR}
_NAIVE = {exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPNTZ,
          exp.DataType.Type.DATETIME}
_INSTANT = {exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPLTZ}
_OFFSET = re.compile(r"\d(Z|[+-]\d{1,2}(:?\d{2})?)\s*$")
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ,
                exp.NullSafeNEQ)


def _refuse(what: str, why: str) -> QueryError:
    return QueryError(f"the spark engine does not run {what}: {why}",
                      hint="rewrite that part of the query, or set engine to duckdb "
                           "(docs/scale-out.md lists what runs on spark)")


def check_meaning(tree: exp.Expression, columns: Mapping[str, Mapping[str, str]],
                  params: Mapping[str, Any]) -> exp.Expression:
    """The residual with DuckDB's meaning kept where Spark's differs, or ``QueryError``:

    - a text parameter compared with a typed expression is cast to that type, as DuckDB
      does (Spark would compare a decimal and a text as doubles);
    - ``grouping(a, b)`` is Spark's ``grouping_id(a, b)``;
    - a TIMESTAMPTZ AT TIME ZONE (or timezone()) a literal IANA zone is Spark's
      from_utc_timestamp as a TIMESTAMP_NTZ (the zone's rules are compared once per session,
      :mod:`.zones`);
    - refused: AT TIME ZONE of a wall-clock TIMESTAMP (in a daylight-saving overlap DuckDB
      takes the later instant, Java the earlier) or to another zone, comparing a TIMESTAMP
      with a TIMESTAMPTZ or with text carrying an offset (each engine converts them its own
      way), substring with a start that is not a positive literal
      (DuckDB counts from the end, Spark from 0), ASOF joins (Spark has none).

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT v.id FROM v WHERE v.d = $p", read="duckdb")
    >>> check_meaning(tree, {"v": {"id": "BIGINT", "d": "DECIMAL(18,6)"}}, {"p": "2.675"}).sql()
    'SELECT v.id AS id FROM v WHERE v.d = CAST(:p AS DECIMAL(18, 6))'
    """
    if tree.find(exp.ConvertTimezone) is not None:
        raise _refuse("convert_timezone()", "DuckDB has no such function to compare with")
    for join in tree.find_all(exp.Join):
        if "ASOF" in (join.text("kind") + join.text("method")).upper():
            raise _refuse("ASOF JOIN", "Spark SQL has no ASOF join")
    for sub in tree.find_all(exp.Substring):
        start = sub.args.get("start")
        if start is not None and not (start.is_int and int(start.name) > 0):
            raise _refuse("substring with a start that is not a positive number",
                          "DuckDB and Spark read a start of 0 or below differently")
    for grouping in list(tree.find_all(exp.Grouping)):
        if len(grouping.expressions) > 1:
            grouping.replace(exp.Anonymous(this="grouping_id",
                                           expressions=[e.copy() for e in grouping.expressions]))
    from sqlglot.schema import MappingSchema

    schema = MappingSchema({k: dict(v) for k, v in columns.items()}, dialect="duckdb")
    tree = _qualified(tree, schema)
    _annotate(tree, schema)
    if _zone_conversions(tree):
        _annotate(tree, schema)  # the conversions' types reach the expressions around them
    for comparison in list(tree.find_all(*_COMPARISONS, exp.Between, exp.In)):
        if isinstance(comparison, exp.Between):
            pairs = [(comparison.this, comparison.args.get("low")),
                     (comparison.this, comparison.args.get("high"))]
        elif isinstance(comparison, exp.In):
            pairs = [(comparison.this, e) for e in comparison.expressions]
        else:
            pairs = [(comparison.this, comparison.expression)]
        for left, right in pairs:
            if left is None or right is None:
                continue
            for one, other in ((left, right), (right, left)):
                _check_pair(one, other, params)
    return tree


def _qualified(tree: exp.Expression, schema: Schema) -> exp.Expression:
    """The tree with every column named with its table, so that its type is known; the tree
    as it is when a name cannot be resolved (its type stays unknown, and the checks that
    need it refuse)."""
    from sqlglot.optimizer.qualify_columns import qualify_columns

    try:
        return qualify_columns(tree.copy(), schema, expand_stars=False, expand_alias_refs=False,
                               allow_partial_qualification=True, dialect="duckdb")
    except Exception:
        return tree


def _annotate(tree: exp.Expression, schema: Schema) -> None:
    from sqlglot.optimizer.annotate_types import annotate_types

    try:
        annotate_types(tree, schema=schema, dialect="duckdb")
    except Exception:  # a node it cannot type stays UNKNOWN, and the checks refuse it
        pass


def _zone_conversions(tree: exp.Expression) -> bool:
    """AT TIME ZONE and timezone(zone, ts) in Spark's words, innermost first (after the tree's
    types are annotated): an instant in a zone is that zone's wall-clock time, DuckDB's
    TIMESTAMP. Only a literal IANA zone is taken (Java and ICU read abbreviations and POSIX
    offsets differently). ``True`` when the tree changed."""
    from meterql.dialects.postgres_functions import IANA_ZONE

    found = list(_zone_conversion_nodes(tree))
    for node, what, value, zone in reversed(found):  # innermost first
        if not (isinstance(zone, exp.Literal) and zone.is_string and IANA_ZONE.match(zone.name)):
            raise _refuse(f"{what} with a zone that is not a literal IANA name",
                          "write the zone as a name such as 'Europe/Berlin'")
        kind = value.type.this if value.type is not None else None
        args = [in_checked_years(value), zone.copy()]
        if kind in _INSTANT:
            wall = exp.Anonymous(this="from_utc_timestamp", expressions=args)
            node.replace(exp.Cast(this=wall, to=exp.DataType.build("TIMESTAMPNTZ")))
        elif kind in _NAIVE:
            raise _refuse(f"{what} of a wall-clock TIMESTAMP", "a time in a daylight-saving "
                          "overlap is the later instant in DuckDB, the earlier in Spark")
        else:
            raise _refuse(f"{what} of a value whose type is not known to be a timestamp",
                          "cast the value to TIMESTAMP or TIMESTAMPTZ")
    return bool(found)


def _zone_conversion_nodes(
        tree: exp.Expression) -> Iterator[tuple[exp.Expression, str, exp.Expression, Any]]:
    """Each AT TIME ZONE or timezone(zone, ts): (node, what, value, zone), outermost first."""
    for node in tree.find_all(exp.AtTimeZone, exp.Anonymous, bfs=False):
        if isinstance(node, exp.AtTimeZone):
            yield node, "AT TIME ZONE", node.this, node.args.get("zone")
        elif node.name.lower() == "timezone":
            if len(node.expressions) != 2:
                raise _refuse("timezone()", "it takes a zone and a timestamp")
            yield node, "timezone()", node.expressions[1], node.expressions[0]


def zones_converted_to(tree: exp.Expression | None) -> set[str]:
    """The literal zones a residual converts instants to (checked by :mod:`.zones`)."""
    if tree is None:
        return set()
    return {zone.name for _, _, _, zone in _zone_conversion_nodes(tree)
            if isinstance(zone, exp.Literal) and zone.is_string}


def _check_pair(one: exp.Expression, other: exp.Expression, params: Mapping[str, Any]) -> None:
    kinds = (one.type.this if one.type else None, other.type.this if other.type else None)
    if kinds[0] in _NAIVE and kinds[1] in _INSTANT:
        raise _refuse("a comparison of a TIMESTAMP with a TIMESTAMPTZ",
                      "DuckDB and Spark convert between them differently; cast one side")
    if kinds[0] in _NAIVE and isinstance(other, exp.Literal) and other.is_string \
            and _OFFSET.search(other.name):
        raise _refuse("a comparison of a TIMESTAMP with text holding a time zone offset",
                      "DuckDB and Spark read the offset differently; write TIMESTAMPTZ '...'")
    if isinstance(other, exp.Placeholder) and isinstance(params.get(other.name), str):
        if kinds[0] in _TEXT:
            return
        if one.type is None or kinds[0] in (exp.DataType.Type.UNKNOWN, None):
            raise _refuse(f"the text parameter :{other.name} here",
                          "the type it is compared with is unknown to it; pass a typed value")
        other.replace(exp.Cast(this=other.copy(), to=one.type.copy()))


def _ieee_division(node: exp.Div) -> exp.Expression:
    """DuckDB's ``/`` as Spark SQL: a DOUBLE quotient whatever the operands (DuckDB 2.0), and
    IEEE's answer for a zero divisor (+-inf, NaN for 0/0, the divisor's sign kept for -0.0)
    where ANSI Spark raises an error."""
    left = exp.Cast(this=node.left.copy(), to=_DOUBLE.copy())
    right = exp.Cast(this=node.right.copy(), to=_DOUBLE.copy())
    negative_zero = exp.Like(this=exp.Cast(this=right.copy(), to=exp.DataType.build("TEXT")),
                             expression=exp.Literal.string("-%"))
    signed = exp.Case(ifs=[exp.If(this=negative_zero,
                                  true=exp.Neg(this=exp.Paren(this=left.copy())))],
                      default=left.copy())
    infinity = exp.Cast(this=exp.Literal.string("Infinity"), to=_DOUBLE.copy())
    return exp.Paren(this=exp.Case(
        ifs=[exp.If(this=exp.EQ(this=right.copy(), expression=exp.Literal.number(0)),
                    true=exp.Mul(this=exp.Paren(this=signed), expression=infinity))],
        default=exp.Div(this=left, expression=right)))


def _column_types(schema: pa.Schema) -> dict[str, str]:
    return {field.name: sql_type_name(field) for field in schema}


def conform(table: pa.Table, expected: pa.Schema) -> pa.Table:
    """Spark's result in DuckDB's names and types. Each cast is checked: a value that does
    not survive it fails the query (never a silently different number)."""
    if table.num_columns != len(expected):
        raise QueryError(f"Spark returned {table.num_columns} columns where DuckDB's plan has "
                         f"{len(expected)}", hint="set engine to duckdb and report the query")
    columns = []
    for column, field in zip(table.columns, expected, strict=True):
        if column.type == field.type:
            columns.append(column)
            continue
        try:
            columns.append(_cast(column, field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise QueryError(
                f"column {field.name}: Spark computed {column.type}, which does not convert "
                f"exactly to DuckDB's {field.type} ({exc})",
                hint="cast the column in the query, or set engine to duckdb") from None
    return pa.Table.from_arrays(columns, schema=expected)


def _cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_timestamp(column.type) and pa.types.is_timestamp(target):
        # Spark's instants are in UTC (the session's zone); a naive DuckDB TIMESTAMP is that
        # wall-clock time, and an instant keeps its value in any zone.
        if column.type.unit != target.unit:
            column = pc.cast(column, pa.timestamp(target.unit, column.type.tz), safe=True)
        return column.cast(target, safe=True)
    return pc.cast(column, target, safe=True)

