"""What every source kind declares: its sqlglot dialect, what it can run, and its type mapping.

A dialect module is data, not I/O: the planner asks a :class:`SourceDialect` what may be pushed
down and how a source's column type reads in DuckDB, and never checks the kind itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp

#: The DuckDB type meterql gives an exact decimal whose precision the source leaves open
#: (PostgreSQL ``NUMERIC`` without a typmod, SQLite ``DECIMAL``). Values that do not fit it
#: exactly raise an error instead of being rounded; a source option ``numeric_scale`` changes it.
UNCONSTRAINED_DECIMAL = (38, 10)

#: Nodes a filter pushed into a single-table scan may hold (by exact class: a subclass such as
#: TryCast of Cast means something else): columns compared with literals and parameters,
#: combined with AND, OR and NOT. Every source kind so far takes the same.
SCAN_FILTER_NODES: frozenset[type[exp.Expression]] = frozenset({
    exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Boolean, exp.And, exp.Or, exp.Not,
    exp.Paren, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between,
    exp.Placeholder, exp.Cast, exp.DataType, exp.Tuple, exp.Var,
})

#: A function's check at a source: given the node (its tree type-annotated as DuckDB types
#: it), why the source would not compute it with DuckDB's meaning, or ``None``. A check may
#: set the type of a node sqlglot leaves unknown (``date_part``) to the type DuckDB gives it.
FunctionCheck = Callable[[exp.Expr], "str | None"]


@dataclass(frozen=True)
class Capabilities:
    """What a source can run with exactly DuckDB's meaning.

    Attributes:
        whole_query: a query touching only this source may be sent to it whole.
        filters: WHERE conjuncts on a single table may be pushed into its scan.
        pushable_filter_types: DuckDB type families whose comparisons keep their meaning at
            the source (``None`` means every type).
        exact_decimal: the source computes on decimals exactly.
        same_engine: the source is DuckDB itself, so every construct keeps its meaning.
        binary_text_order: text compares and sorts bytewise, as in DuckDB (no collation).
        casts_in_filters: casts of columns in filters convert as DuckDB's do.
        key_sets: how a scan takes a run-time set of join keys (dynamic filtering): ``array``
            (``col = ANY(CAST($n AS type[]))``, the keys bound as one array literal), ``json``
            (``col IN (SELECT value FROM json_each(?n))``, bound as JSON text), ``list``
            (``list_contains($n, col)``, bound as a list), or ``None`` for no dynamic filters.
        typed_parameters: the source types a parameter from the bound value (PostgreSQL), so a
            text value compared with a column is first converted to the column's type, with
            DuckDB's cast: ``--param id=42`` compares as the integer 42, as in DuckDB.
        parameters_in_filters: filters holding parameters may be pushed. SQLite compares a
            bound value by the value's own type (a decimal binds as a float), so it may not.
        whole_query_nodes: the sqlglot node classes (exact classes) a query sent whole may
            hold, each meaning at the source what it means in DuckDB when the types agree;
            the checks on casts, text order and types apply on top. Empty: no construct is
            known to, so nothing is sent whole (the same engine needs no list).
        filter_nodes: the node classes a filter pushed into a scan may hold.
        change_log: the source keeps a change log a replica can follow, so its tables may
            use the ``cdc`` sync strategy (sync/cdc.py reads PostgreSQL's through a logical
            replication slot).
        functions: the functions and operators a query sent whole or a filter pushed into a
            scan may hold besides the nodes above, by exact node class, each with its check
            (``None``: no check). A function listed with a check that always answers keeps
            the work local with that reason. ``SourceDialect.translate`` writes them as the
            source must run them.
        named_functions: the same for functions sqlglot does not know (``exp.Anonymous``),
            by lower-case name (DuckDB's ``date_part``, ``timezone``).
    """

    whole_query: bool = True
    filters: bool = True
    pushable_filter_types: frozenset[str] | None = None
    exact_decimal: bool = True
    same_engine: bool = False
    binary_text_order: bool = False
    casts_in_filters: bool = True
    typed_parameters: bool = False
    parameters_in_filters: bool = True
    key_sets: str | None = None
    whole_query_nodes: frozenset[type[exp.Expression]] = frozenset()
    filter_nodes: frozenset[type[exp.Expression]] = SCAN_FILTER_NODES
    change_log: bool = False
    functions: Mapping[type[exp.Expr], FunctionCheck | None] = field(
        default_factory=dict, hash=False, compare=False)
    named_functions: Mapping[str, FunctionCheck] = field(
        default_factory=dict, hash=False, compare=False)

    def function_check(self, node: exp.Expr) -> tuple[bool, FunctionCheck | None]:
        """Whether ``node`` is a function of this profile, and its check.

        >>> from meterql.dialects import dialect_for
        >>> caps = dialect_for("postgres").capabilities
        >>> caps.function_check(exp.Nullif(this=exp.column("a"), expression=exp.Literal.number(0)))
        (True, None)
        >>> caps.function_check(exp.Anonymous(this="soundex"))
        (False, None)
        """
        if isinstance(node, exp.Anonymous):
            check = self.named_functions.get(str(node.name).lower())
            return check is not None, check
        if type(node) in self.functions:
            return True, self.functions[type(node)]
        return False, None


@dataclass(frozen=True)
class SourceDialect:
    """One source kind: names, URI schemes, sqlglot dialect, capabilities, type mapping.

    Attributes:
        kind: the source kind, e.g. ``"postgres"``.
        uri_schemes: URI schemes that select this kind.
        sqlglot_dialect: the sqlglot dialect used to write SQL for the source.
        capabilities: what may be pushed down.
        map_type: maps a source column type (as the source spells it) to a DuckDB type.
        connector: the source's connector class as ``module:Class``, imported when a source
            of this kind is first used (so its driver loads only then).
        fetch_as_text: DuckDB type families that the scan reads as text at the source and
            converts exactly on the meterql side (SQLite keeps decimals and dates as text or float).
        text_collation: the collation named on every text column of a pushed filter, so that
            it compares bytewise as DuckDB does whatever the column declares (SQLite's NOCASE).
        fetch_as_integer: type families read as integers and converted on our side (SQLite's
            booleans are 0/1).
        parameter_marker: the prefix of a numbered bound parameter (``$1``, ``?1``).
        read_as_text: source types (as the source spells them) that the scan reads as the
            source's text form because meterql carries them as VARCHAR (PostgreSQL arrays).
        text_function: for a source type whose cast to text is not the text the source prints
            for it, the function that gives that text (PostgreSQL's ``inet``: ``abbrev``);
            ``None`` for the others (see :meth:`text_form`).
        computes_differently: why the source compares or computes a source type otherwise
            than DuckDB does on the values as read (``None`` when it does not): no filter, key
            set or whole query using such a column is sent; its scan reads it as it is and
            DuckDB does the rest (PostgreSQL's char(n), real, and types carried as text).
        file_uri: the URI names a local file (``sqlite:///data/usage.db``): the file must
            exist when the source is added, and the catalog stores its absolute path.
        translate: rewrites a query or filter (as DuckDB means it, functions checked by
            ``Capabilities.functions``) into the form the source computes the same way
            (PostgreSQL's ``LIKE`` needs ``ESCAPE ''``); applied to the copy that is sent.
        scaled_integer: for a source type whose values are exact decimals with a declared
            scale ``s`` that fit a BIGINT once multiplied by ``10^s`` (PostgreSQL's
            ``numeric(p,s)`` with ``p <= 18``), that scale: scans read the value times
            ``10^s`` as a BIGINT, which meterql turns back into the same decimal exactly
            (cheaper at both ends than text); ``None`` for the other types.
    """

    kind: str
    uri_schemes: tuple[str, ...]
    sqlglot_dialect: str
    capabilities: Capabilities
    map_type: Callable[[str], str]
    connector: str
    fetch_as_text: frozenset[str] = field(default_factory=frozenset)
    text_collation: str | None = None
    fetch_as_integer: frozenset[str] = field(default_factory=frozenset)
    parameter_marker: str = "$"
    read_as_text: Callable[[str], bool] = lambda source_type: False
    computes_differently: Callable[[str], str | None] = lambda source_type: None
    file_uri: bool = False
    text_function: Callable[[str], str | None] = lambda source_type: None
    translate: Callable[[exp.Expr], exp.Expr] = lambda tree: tree
    scaled_integer: Callable[[str], int | None] = lambda source_type: None

    def fetches_as_text(self, duckdb_type: str, source_type: str | None = None) -> bool:
        """Whether a value of this type is read as the source's text form: the one decision for
        every read of a source (a table's scan, a query or subquery sent whole), so that no path
        gets the driver's raw form of a type that only its text converts exactly (PostgreSQL's
        uuid arrives as 16 raw bytes). ``source_type`` is the column's type at the source, when
        the value is a column as stored.

        >>> from meterql.dialects import dialect_for
        >>> pg = dialect_for("postgres")
        >>> pg.fetches_as_text("UUID"), pg.fetches_as_text("DECIMAL(38, 10)")
        (True, True)
        >>> pg.fetches_as_text("VARCHAR", "inet"), pg.fetches_as_text("VARCHAR", "text")
        (True, False)
        """
        if source_type is not None and self.read_as_text(source_type):
            return True
        return type_family(duckdb_type) in self.fetch_as_text

    def text_form(self, value: exp.Expr, source_type: str | None = None) -> exp.Expr:
        """``value`` as the source prints it: ``CAST(value AS TEXT)``, or the function
        ``text_function`` names for a source type whose cast to text prints otherwise.

        >>> from meterql.dialects import dialect_for
        >>> pg = dialect_for("postgres")
        >>> pg.text_form(exp.column("v"), "inet").sql("postgres")
        'ABBREV(v)'
        >>> pg.text_form(exp.column("v"), "uuid").sql("postgres")
        'CAST(v AS TEXT)'
        """
        function = self.text_function(source_type) if source_type is not None else None
        if function is not None:
            return exp.Anonymous(this=function, expressions=[value])
        return exp.cast(value, "TEXT")


@functools.lru_cache(maxsize=1024)
def type_family(duckdb_type: str) -> str:
    """The family of a DuckDB type: ``DECIMAL(18,6)`` -> ``DECIMAL``, ``TIMESTAMP WITH TIME ZONE``
    -> ``TIMESTAMPTZ``.

    >>> type_family("DECIMAL(18, 6)")
    'DECIMAL'
    """
    family: str = exp.DataType.build(duckdb_type, dialect="duckdb").this.value
    return family


def via_sqlglot(source_type: str, dialect: str, numeric_default: tuple[int, int]) -> str:
    """Map a source type with sqlglot's type parser, fixing the cases that would lose meaning.

    Unknown or exotic types read as VARCHAR: nothing is dropped, and the text is exact.
    """
    try:
        dtype = exp.DataType.build(source_type, dialect=dialect)
    except Exception:  # sqlglot raises ParseError or ValueError for types it does not know
        return "VARCHAR"
    family = dtype.this
    if family in (exp.DType.DECIMAL, exp.DType.BIGDECIMAL):
        params = dtype.expressions
        if not params:
            return "DECIMAL({}, {})".format(*numeric_default)
        precision = int(params[0].name)
        scale = int(params[1].name) if len(params) > 1 else 0
        if precision > 38:
            return f"DECIMAL(38, {min(scale, 38)})"
        return f"DECIMAL({precision}, {scale})"
    return NATIVE_TYPES.get(family, "VARCHAR")


#: sqlglot type families and the DuckDB type that carries them with the same meaning.
NATIVE_TYPES: dict[exp.DType, str] = {
    exp.DType.BOOLEAN: "BOOLEAN",
    exp.DType.TINYINT: "TINYINT",
    exp.DType.SMALLINT: "SMALLINT",
    exp.DType.INT: "INTEGER",
    exp.DType.BIGINT: "BIGINT",
    exp.DType.FLOAT: "FLOAT",
    exp.DType.DOUBLE: "DOUBLE",
    exp.DType.TEXT: "VARCHAR",
    exp.DType.VARCHAR: "VARCHAR",
    exp.DType.CHAR: "VARCHAR",
    exp.DType.NCHAR: "VARCHAR",
    exp.DType.NVARCHAR: "VARCHAR",
    exp.DType.DATE: "DATE",
    exp.DType.TIME: "TIME",
    exp.DType.TIMESTAMP: "TIMESTAMP",
    exp.DType.DATETIME: "TIMESTAMP",
    exp.DType.TIMESTAMPTZ: "TIMESTAMP WITH TIME ZONE",
    exp.DType.INTERVAL: "INTERVAL",
    exp.DType.VARBINARY: "BLOB",
    exp.DType.BINARY: "BLOB",
    exp.DType.BLOB: "BLOB",
    exp.DType.UUID: "UUID",
    exp.DType.JSON: "JSON",
    exp.DType.JSONB: "JSON",
    exp.DType.INT128: "HUGEINT",
    exp.DType.UBIGINT: "UBIGINT",
    exp.DType.UINT: "UINTEGER",
    exp.DType.USMALLINT: "USMALLINT",
    exp.DType.UTINYINT: "UTINYINT",
}
