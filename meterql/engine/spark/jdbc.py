"""A PostgreSQL fragment read by the Spark cluster itself, through Spark's JDBC data source.

On the spark engine a direct source's fragment is read by meterql and handed to Spark as
Arrow. A large PostgreSQL fragment (:data:`JDBC_MIN_ROWS` estimated rows or more, no dynamic
filter) can instead be read by Spark's executors over JDBC, split into partitions read side by
side:

- :func:`reads_by_jdbc` decides, from the fragment, its source's kind and statistics
  (:func:`jdbc_fragments` for a plan's fragments);
- :func:`jdbc_read` makes the options of ``spark.read.format("jdbc")``: the fragment's SQL with
  its bound values written as literals (sqlglot literal nodes), its columns renamed ``c1..cN``
  (PostgreSQL cuts long names, Spark compares names without case) and typed by ``customSchema``
  as meterql's connector types them (``frag.schema``), partitioned on an integer or date column
  of the projection whose min/max the statistics know;
- ``SparkConnection.register_jdbc(view, read.options, read.columns)`` makes the view.

Sessions
    The URL asks pgjdbc for ``readOnly=true`` with ``readOnlyMode=transaction`` and the server
    option ``default_transaction_read_only=on``: every transaction is READ ONLY. (pgjdbc's
    ``readOnlyMode=always`` is weaker here: Spark's PostgreSQL dialect turns autocommit off to
    stream rows (fetchsize > 0), and pgjdbc then sets the session back to READ WRITE and relies
    on ``BEGIN READ ONLY`` alone, so a statement after a ``COMMIT`` could write. Measured with
    pgjdbc 42.5.5.) ``statement_timeout`` is the source's, as for meterql's own sessions. The
    time zone is set to UTC by ``sessionInitStatement``: pgjdbc sends the JVM's zone as the
    startup parameter ``TimeZone``, which wins over ``-c TimeZone=UTC`` in ``options``.
    Read-only is a guard for the SQL meterql generates, not a sandbox: SQL can reset session
    settings. What a source's user may do is bounded by its grants, as on the Arrow route.

Consistency
    Spark reads each partition on its own connection. With more than one partition meterql
    holds a transaction open at the source that exports its snapshot (:func:`exported_snapshot`,
    ``pg_export_snapshot()``), and each partition's ``sessionInitStatement`` imports it
    (``SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '...'``): all
    partitions read the one state of the database the export saw. This holds because Spark
    (4.0) calls the dialect's ``beforeFetch`` (autocommit off, fetchsize > 0, which
    :func:`jdbc_read` always sets) *before* ``sessionInitStatement``: pgjdbc's ``BEGIN READ ONLY``
    opens the transaction and the import is its first statement (a PostgreSQL session log of a
    partition: ``BEGIN READ ONLY``, the init statement, the ``SELECT``, ``COMMIT``). The export
    must stay open until the Spark query that reads the view has finished (a partition started
    later imports it then). Without a snapshot a read is one partition (one transaction).

Secrets
    The password is the option ``password`` only (never in the URL): Spark's
    ``spark.redaction.regex`` (default ``(?i)secret|password|token|access[.]?key``) masks
    options of that name wherever Spark shows them, EXPLAIN of a JDBC relation shows only its
    ``dbtable`` and partitions, ``repr`` of a :class:`JdbcRead` masks it, and errors of
    ``register_jdbc`` have it removed.

Not exact (the fragment stays on Arrow where meterql cannot make Spark's read exact):
    columns of types Spark 4.0 has no type for (TIME, INTERVAL) or that meterql carries as
    text for DuckDB; parameters that are lists or bytes; a source reached through a local
    socket. Two reads are made exact at the source: a decimal with more decimals than its
    type (a NUMERIC without precision, past the source's ``numeric_scale``), which Spark's JDBC
    reader rounds half up (``Decimal(value, p, s)``), fails the read as meterql's connector
    does; a TIMESTAMP is read as text, since pgjdbc builds its ``java.sql.Timestamp`` in the
    executor JVM's zone (2024-03-10 02:30 becomes 03:30 in America/New_York).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import pyarrow as pa
import sqlglot
from sqlglot import exp

from meterql.catalog.model import Source, TableStats
from meterql.catalog.uri import parse_uri, resolve_password
from meterql.connectors.base import DEFAULT_STATEMENT_TIMEOUT_MS
from meterql.engine.planner.plan import Fragment, ScanFragment
from meterql.sql_text import quote_literal

#: Estimated rows from which a fragment is read by Spark over JDBC (below: Arrow).
JDBC_MIN_ROWS = 1_000_000
#: Rows fetched per round trip by each partition (Spark's PostgreSQL dialect streams them in
#: a transaction when this is above 0, which the snapshot import relies on).
FETCH_SIZE = 10_000
#: Rows per partition aimed at, and the most partitions of one read.
ROWS_PER_PARTITION = 1_000_000
MAX_PARTITIONS = 64
DRIVER = "org.postgresql.Driver"

#: Arrow type of a fragment's column -> Spark's type, as customSchema names it.
_SPARK_TYPES: dict[pa.DataType, str] = {
    pa.bool_(): "BOOLEAN", pa.int16(): "SMALLINT", pa.int32(): "INT", pa.int64(): "BIGINT",
    pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.string(): "STRING",
    pa.binary(): "BINARY", pa.date32(): "DATE", pa.timestamp("us"): "TIMESTAMP_NTZ",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP",
}
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")
#: libpq parameters of a source URI carried to pgjdbc (same meaning, pgjdbc's name).
_URL_PARAMETERS = {"sslmode": "sslmode", "connect_timeout": "connectTimeout",
                   "application_name": "ApplicationName"}

Statistics = Callable[[str], TableStats | None]


def fragment_tables(frag: Fragment) -> list[str]:
    """The full names (``source.schema.table``) of the tables a fragment reads."""
    if isinstance(frag, ScanFragment):
        return [frag.table]
    if frag.aggregate is not None:
        return [frag.aggregate.table]
    tree = sqlglot.parse_one(frag.sql, read="postgres")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return sorted({f"{frag.source}.{t.db}.{t.name}" for t in tree.find_all(exp.Table)
                   if t.db and t.name not in ctes})


def estimated_rows(frag: Fragment, statistics: Statistics) -> int | None:
    """The rows of the largest table the fragment reads, from the source's statistics
    (``None``: unknown)."""
    rows = [s.rows for t in fragment_tables(frag) if (s := statistics(t)) is not None
            and s.rows is not None]
    return max(rows) if rows else None


def reads_by_jdbc(frag: Fragment, kind: str, statistics: Statistics,
                  schema: pa.Schema | None = None, threshold: int | None = None) -> bool:
    """Whether Spark should read ``frag`` over JDBC: a PostgreSQL fragment without a dynamic
    filter, whose columns Spark can type exactly (``schema``: its Arrow schema, ``frag.schema``
    by default), over a table of ``threshold`` (:data:`JDBC_MIN_ROWS`) estimated rows or more."""
    schema = schema if schema is not None else frag.schema
    if kind != "postgres" or frag.dynamic is not None or schema is None:
        return False
    if any(spark_type(f) is None for f in schema):
        return False
    rows = estimated_rows(frag, statistics)
    return rows is not None and rows >= (JDBC_MIN_ROWS if threshold is None else threshold)


def jdbc_fragments(fragments: Sequence[Fragment], statistics: Statistics,
                   schemas: Mapping[str, pa.Schema | None] | None = None,
                   threshold: int | None = None) -> set[str]:
    """The ids of the fragments of a plan to read over JDBC (:func:`reads_by_jdbc`), except
    those whose rows another fragment's dynamic filter takes its keys from (meterql needs
    them as Arrow). ``schemas``: by fragment id, a schema where ``frag.schema`` has none (a
    QueryFragment's, from its typing)."""
    builds = {key.build for f in fragments if f.dynamic is not None for key in f.dynamic.keys}
    return {f.id for f in fragments if f.id not in builds and reads_by_jdbc(
        f, f.kind, statistics, (schemas or {}).get(f.id), threshold)}


def spark_type(field: pa.Field) -> str | None:
    """Spark's name for the type of ``field`` (``None``: Spark cannot read it exactly)."""
    if field.metadata:  # carried as text for DuckDB, or read as a scaled integer
        return None
    if pa.types.is_decimal(field.type):
        return f"DECIMAL({field.type.precision},{field.type.scale})"
    return _SPARK_TYPES.get(field.type)


@dataclass(frozen=True)
class JdbcRead:
    """What ``SparkConnection.register_jdbc`` takes to read a fragment.

    Attributes:
        options: the options of ``spark.read.format("jdbc")`` (the password among them).
        columns: the fragment's column names, for the view (Spark reads ``c1..cN``).
        partitions: the partitions Spark reads.
        partition_column: the fragment's column they are split on, or ``None``.
        casts: Spark's types of the columns (``c1..cN``) read as text and cast by Spark (a
            TIMESTAMP: pgjdbc builds a ``java.sql.Timestamp`` in the executor JVM's zone,
            which moves a wall-clock time in that zone's daylight-saving gap by an hour).
    """

    options: dict[str, str] = field(repr=False)
    columns: list[str]
    partitions: int = 1
    partition_column: str | None = None
    casts: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "password" else v) for k, v in self.options.items()}
        return (f"JdbcRead(options={shown!r}, columns={self.columns!r}, "
                f"partitions={self.partitions}, partition_column={self.partition_column!r}, "
                f"casts={self.casts!r})")


def jdbc_read(frag: Fragment, source: Source, values: Sequence[Any], statistics: Statistics,
              *, schema: pa.Schema | None = None, snapshot: str | None = None,
              partitions: int | None = None) -> JdbcRead | None:
    """The JDBC read of ``frag`` with ``values`` bound to its markers (as ``Executor._bind``
    gives them), or ``None`` when it cannot be read exactly that way (then read it as Arrow).

    ``schema``: its Arrow schema (``frag.schema`` by default; a QueryFragment's from its
    typing). Partitioned only with ``snapshot`` (:func:`exported_snapshot`), into
    ``partitions`` (by default one per :data:`ROWS_PER_PARTITION` estimated rows, at most
    :data:`MAX_PARTITIONS`)."""
    schema = schema if schema is not None else frag.schema
    url = jdbc_url(source)
    if schema is None or url is None:
        return None
    known = [spark_type(f) for f in schema]
    sql = literal_sql(frag, values)
    types = [t for t in known if t is not None]
    if sql is None or len(types) < len(known):
        return None
    aliases = [f"c{i + 1}" for i in range(len(schema))]
    table: exp.Expr = exp.Subquery(this=sqlglot.parse_one(sql, read="postgres"),
                                   alias=exp.TableAlias(this=exp.to_identifier("f"), columns=[
                                       exp.to_identifier(a) for a in aliases]))
    casts = {a: t for a, t in zip(aliases, types, strict=True) if t == "TIMESTAMP_NTZ"}
    scales = {a: f.type.scale for a, f in zip(aliases, schema, strict=True)
              if pa.types.is_decimal(f.type)}
    if casts or scales:
        table = exp.select(*[_checked(a, casts, scales, types[i]) for i, a in enumerate(aliases)]
                           ).from_(table).subquery("g")
        types = ["STRING" if a in casts else t for a, t in zip(aliases, types, strict=True)]
    parsed = parse_uri(source.uri)
    options = {
        "url": url, "driver": DRIVER, "user": parsed.user or "",
        "password": resolve_password(parsed.password, source.name) or "",
        "dbtable": table.sql(dialect="postgres"),
        "customSchema": ", ".join(f"{a} {t}" for a, t in zip(aliases, types, strict=True)),
        "fetchsize": str(FETCH_SIZE),
        # meterql has pushed what keeps DuckDB's meaning; Spark's own pushdown would compare
        # in PostgreSQL's types (a decimal read as text, a collation) and is turned off
        "pushDownPredicate": "false", "pushDownAggregate": "false", "pushDownLimit": "false",
        "pushDownOffset": "false", "pushDownTableSample": "false", "pushDownJoin": "false",
    }
    init = ["SET TIME ZONE 'UTC'"]
    read = JdbcRead(options, schema.names, casts=casts)
    split = _partitioning(frag, schema, statistics, partitions) if snapshot else None
    if split is not None:
        position, low, high, count = split
        if not _SNAPSHOT_ID.match(snapshot or ""):
            raise ValueError(f"{snapshot!r} is not a PostgreSQL snapshot id")
        init = ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                f"SET TRANSACTION SNAPSHOT {quote_literal(snapshot or '')}", *init]
        options.update(partitionColumn=aliases[position], lowerBound=low, upperBound=high,
                       numPartitions=str(count))
        read = JdbcRead(options, schema.names, count, schema.names[position], casts)
    options["sessionInitStatement"] = "; ".join(init)
    return read


def _checked(alias: str, casts: Mapping[str, str], scales: Mapping[str, int],
             spark: str) -> exp.Expr:
    """Column ``alias`` as the JDBC read takes it: a TIMESTAMP as PostgreSQL's text (DateStyle
    ISO, which pgjdbc sets; Spark casts it), a decimal as its text when it has at most its
    type's decimals, else an error naming the value (Spark would round it half up; meterql's
    connector refuses it)."""
    column = exp.column(alias)
    if alias in casts:
        return exp.alias_(exp.cast(column, "TEXT"), alias)
    if alias not in scales:
        return column
    number = exp.cast(column, "DECIMAL")
    exact = exp.EQ(this=exp.func("ROUND", number, exp.Literal.number(scales[alias])),
                   expression=number.copy())
    message = exp.DPipe(this=exp.DPipe(this=exp.Literal.string("value "),
                                       expression=exp.cast(column.copy(), "TEXT")),
                        expression=exp.Literal.string(f" does not fit {spark}"))
    refuse = exp.cast(exp.cast(message, "DECIMAL"), "TEXT")  # (raises, with the message)
    return exp.alias_(exp.Case().when(exact, exp.cast(column.copy(), "TEXT")).else_(refuse),
                      alias)


def jdbc_url(source: Source) -> str | None:
    """``jdbc:postgresql://host:port/db?...`` for a source, read-only and with the source's
    statement timeout (no user or password: those are options). ``None`` for a source reached
    through a local socket (Spark's executors are other machines).

    >>> jdbc_url(Source("pg", "postgres", "postgresql://u:env:PW@db.internal/usage"))
    'jdbc:postgresql://db.internal:5432/usage?readOnly=true&readOnlyMode=transaction&\
options=-c%20default_transaction_read_only%3Don%20-c%20statement_timeout%3D300000&\
ApplicationName=meterql'
    """
    parsed = parse_uri(source.uri)
    if not parsed.host or unquote(parsed.host).startswith("/"):
        return None
    timeout = int(source.options.get("statement_timeout_ms", DEFAULT_STATEMENT_TIMEOUT_MS))
    libpq = {k.lower(): v for k, v in parse_qsl(parsed.query)}
    query = {"readOnly": "true", "readOnlyMode": "transaction",
             "options": (libpq.get("options", "") + " -c default_transaction_read_only=on"
                         f" -c statement_timeout={timeout}").strip(),
             "ApplicationName": "meterql"}
    query.update({_URL_PARAMETERS[k]: v for k, v in libpq.items() if k in _URL_PARAMETERS})
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return (f"jdbc:postgresql://{host}:{parsed.port or 5432}{parsed.path or '/'}?"
            + urlencode(query, quote_via=quote))


def literal_sql(frag: Fragment, values: Sequence[Any]) -> str | None:
    """The fragment's SQL with each ``$n`` marker replaced by ``values[n-1]`` as a typed
    literal node (``None`` when a value has no literal form here).

    >>> from meterql.engine.planner.plan import QueryFragment
    >>> frag = QueryFragment("f1", "pg", "postgres", "SELECT a FROM t WHERE b = $1", ["p"])
    >>> literal_sql(frag, ["it's"])
    "SELECT a FROM t WHERE b = 'it''s'"
    """
    tree = sqlglot.parse_one(frag.sql, read="postgres")
    for node in list(tree.find_all(exp.Parameter)):
        index = int(node.name) - 1
        if not (0 <= index < len(values)):
            return None
        types = frag.param_types
        literal = _literal(values[index], types[index] if index < len(types) else None)
        if literal is None:
            return None
        node.replace(literal)
    return tree.sql(dialect="postgres")


def _literal(value: Any, duckdb_type: str | None) -> exp.Expr | None:
    if isinstance(value, pa.Scalar):
        value = value.as_py()
    if value is None:
        typed = exp.DataType.build(duckdb_type, dialect="duckdb") if duckdb_type else None
        return exp.cast(exp.null(), typed) if typed is not None else exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.cast(exp.Literal.string(str(value)), "BIGINT")
    if isinstance(value, float):
        text = repr(value) if math.isfinite(value) else \
            {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(value)]
        return exp.cast(exp.Literal.string(text), "DOUBLE")
    if isinstance(value, Decimal):
        return exp.cast(exp.Literal.string(str(value)), "DECIMAL")
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), kind)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    return None


def _partitioning(frag: Fragment, schema: pa.Schema, statistics: Statistics,
                  partitions: int | None) -> tuple[int, str, str, int] | None:
    """(column position, lower bound, upper bound, partitions) of a scan: on an integer or
    date column of its projection with a known min < max, the leading column of an index
    first, then the one with the most distinct values."""
    if not isinstance(frag, ScanFragment) or (stats := statistics(frag.table)) is None:
        return None
    count = partitions or min(MAX_PARTITIONS, math.ceil((stats.rows or 0) / ROWS_PER_PARTITION))
    if count < 2:
        return None
    indexed = {i.columns[0].lower() for i in stats.indexes if i.columns}
    best: tuple[tuple[bool, float], int, str, str] | None = None
    for position, fld in enumerate(schema):
        column = stats.column(fld.name)
        if column is None or column.min is None or column.max is None \
                or not column.min < column.max:
            continue
        if pa.types.is_integer(fld.type):
            low, high = str(int(column.min)), str(int(column.max))
        elif pa.types.is_date32(fld.type):
            low, high = column.min.isoformat(), column.max.isoformat()
        else:
            continue
        rank = (fld.name.lower() in indexed, column.distinct or 0.0)
        if best is None or rank > best[0]:
            best = (rank, position, low, high)
    return None if best is None else (best[1], best[2], best[3], count)


@contextlib.contextmanager
def exported_snapshot(connector: Any) -> Iterator[str]:
    """A snapshot of a PostgreSQL source held open by this thread (``pg_export_snapshot()`` in
    the connector's read-only REPEATABLE READ transaction), for :func:`jdbc_read`. Keep it open
    until the Spark query reading the view has finished."""
    with connector.snapshot():
        with connector.stream("SELECT pg_export_snapshot() AS id") as reader:
            snapshot = str(reader.read_all().column(0)[0].as_py())
        yield snapshot


def statistics_of(tables: Mapping[str, TableStats]) -> Statistics:
    """A :data:`Statistics` lookup over a mapping of full names to statistics."""
    return tables.get

