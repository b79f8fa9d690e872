"""What may be pushed to a source with exactly DuckDB's meaning.

The rule is "when in doubt, do not push": a node type not in the source's profile (its
dialect's ``Capabilities.whole_query_nodes`` and ``filter_nodes``, and the functions of
``Capabilities.functions`` whose check passes), a comparison whose result depends on the
source's collation, or arithmetic whose result type differs keeps the work local.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from meterql.dialects import Capabilities, SourceDialect

_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)
_ORDER_SENSITIVE = (exp.Ordered, exp.Min, exp.Max)
_TEXT = {exp.DType.TEXT, exp.DType.VARCHAR, exp.DType.CHAR, exp.DType.UNKNOWN, exp.DType.JSON}
#: Integers with the same range in DuckDB and PostgreSQL (DuckDB's TINYINT has none there).
_INTEGERS = {exp.DType.SMALLINT, exp.DType.INT, exp.DType.BIGINT}
#: Exact numbers: converting between them rounds the same way (half away from zero) everywhere.
_EXACT = _INTEGERS | {exp.DType.TINYINT, exp.DType.INT128, exp.DType.DECIMAL}
#: Floats convert to integers alike (half to even), but not to decimals: PostgreSQL keeps 15
#: significant digits where DuckDB keeps the binary value.
_FLOAT = {exp.DType.FLOAT, exp.DType.DOUBLE}
#: Dates and timestamps convert alike: every session runs in UTC.
_TEMPORAL = {
    exp.DType.DATE, exp.DType.TIMESTAMP, exp.DType.TIMESTAMPNTZ, exp.DType.DATETIME,
    exp.DType.TIMESTAMPTZ,
}
#: Types a literal converts to alike (TINYINT overflows differently; FLOAT is REAL's name).
_LITERAL_TARGETS = (
    _INTEGERS | _TEMPORAL
    | {exp.DType.DECIMAL, exp.DType.DOUBLE, exp.DType.TEXT, exp.DType.VARCHAR, exp.DType.BOOLEAN}
)


def _type_of(node: exp.Expr) -> exp.DType:
    dtype = node.type
    return dtype.this if dtype is not None else exp.DType.UNKNOWN


def whole_query_blocker(tree: exp.Expression, dialect: SourceDialect) -> str | None:
    """Why ``tree`` (qualified and type-annotated) cannot be sent whole, or ``None``."""
    if not dialect.capabilities.whole_query:
        return f"{dialect.kind} sources do not run whole queries (weak typing); scans only"
    if dialect.capabilities.same_engine:
        return None  # the same engine: every construct keeps its meaning
    reason = function_blocker(tree, dialect.capabilities)
    if reason is not None:
        return reason
    for node in tree.walk():
        # (the exact class: a subclass such as TryCast of Cast means something else)
        if type(node) not in dialect.capabilities.whole_query_nodes and not (
                dialect.capabilities.function_check(node)[0]):
            return f"{_node_name(node)} is not in {dialect.kind}'s pushdown profile"
        if isinstance(node, exp.Cast) and not _safe_cast(node, _type_of(node.this)):
            return f"cast to {node.to.sql('duckdb')} may differ on {dialect.kind}"
        if _float_literal(node):
            return f"{node.sql('duckdb')} is a DOUBLE in DuckDB but exact on {dialect.kind}"
        if isinstance(node, (exp.Sum, exp.Min, exp.Max)) and (
            _type_of(node.this) == exp.DType.BOOLEAN
        ):
            return f"{node.key}() of a boolean is not defined on {dialect.kind}"
        if isinstance(node, _RANGE + _ORDER_SENSITIVE) and _any_text(node):
            return "ordering or comparing text depends on the source's collation"
        if isinstance(node, (exp.Add, exp.Sub, exp.Mul)) and _any_text(node, strict=False):
            return "arithmetic on values of unknown type"
        if isinstance(node, exp.Select) and len(node.args.get("joins") or []) > 1 and any(
                (j.kind or "").upper() in ("SEMI", "ANTI") for j in node.args["joins"]):
            return (f"a SEMI or ANTI JOIN beside other joins: {dialect.kind} has none, and "
                    "written as EXISTS it would also filter the rows the other joins add")
        if isinstance(node, exp.Join) and node.side == "FULL" and not _equalities_only(node):
            return (f"a FULL JOIN whose ON is not only equalities: {dialect.kind} cannot "
                    "hash or merge it")
        if isinstance(node, exp.SetOperation) and _set_operation_types(node) is None:
            return (
                f"the arms of a {node.key.upper()} have different column types: DuckDB casts "
                f"them to a common type, {dialect.kind} may refuse or choose another"
            )
    return None


def function_blocker(tree: exp.Expr, caps: Capabilities) -> str | None:
    """The first reason a function in ``tree`` (type-annotated) keeps the work local, checking
    operands before what holds them (a check may type a node sqlglot leaves unknown)."""
    for node in reversed(list(tree.walk(bfs=False))):
        known, check = caps.function_check(node)
        if known and check is not None:
            reason = check(node)
            if reason is not None:
                return reason
    return None


def _node_name(node: exp.Expr) -> str:
    """A node's class, or an unknown function's name."""
    if isinstance(node, exp.Anonymous):
        return f"{node.name}()"
    return type(node).__name__


def _equalities_only(join: exp.Join) -> bool:
    """Whether a join's ON is a conjunction of equalities (or it has USING)."""
    on = join.args.get("on")
    if on is None:
        return bool(join.args.get("using"))
    parts = [on]
    while parts:
        part = parts.pop()
        if isinstance(part, exp.Paren):
            parts.append(part.this)
        elif isinstance(part, exp.And):
            parts += [part.this, part.expression]
        elif not isinstance(part, exp.EQ):
            return False
    return True


#: Type groups whose members a set operation combines alike in DuckDB and PostgreSQL (both
#: widen numbers; dates and timestamps become instants in the sessions' UTC).
_SET_OPERATION_GROUPS = (
    _EXACT | _FLOAT,
    {exp.DType.TEXT, exp.DType.VARCHAR, exp.DType.CHAR},
    _TEMPORAL,
)


def _set_operation_types(node: exp.Expression) -> list[exp.DType] | None:
    """The output column types of a query whose set operations combine like types only, or
    ``None`` when an arm's type is unknown or of another kind than the other arm's."""
    while isinstance(node, (exp.Subquery, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Select):
        return [_type_of(e) for e in node.selects]
    if not isinstance(node, exp.SetOperation):
        return None
    left, right = _set_operation_types(node.this), _set_operation_types(node.expression)
    if left is None or right is None or len(left) != len(right):
        return None
    out = []
    for a, b in zip(left, right, strict=True):
        if exp.DType.UNKNOWN in (a, b):
            return None
        if a == exp.DType.NULL or b == exp.DType.NULL or a == b:
            out.append(b if a == exp.DType.NULL else a)
        elif any(a in group and b in group for group in _SET_OPERATION_GROUPS):
            out.append(a)
        else:
            return None
    return out


def _safe_cast(cast: exp.Cast, source: exp.DType) -> bool:
    """Whether a cast of a value of type ``source`` converts as DuckDB's does elsewhere."""
    target = cast.to.this
    if cast.to.expressions and target != exp.DType.DECIMAL:
        return False  # e.g. TIMESTAMP(3) truncates in DuckDB but rounds in PostgreSQL
    if isinstance(cast.this, exp.Literal) and not _float_literal(cast.this):
        return target in _LITERAL_TARGETS
    if target in _INTEGERS:
        return source in _EXACT or source in _FLOAT
    if target == exp.DType.DECIMAL:
        return source in _EXACT
    return target in _TEMPORAL and source in _TEMPORAL


def _float_literal(node: exp.Expr) -> bool:
    """A number written with an exponent: DOUBLE in DuckDB, NUMERIC in PostgreSQL."""
    return isinstance(node, exp.Literal) and not node.is_string and "e" in node.this.lower()


def _any_text(node: exp.Expression, strict: bool = True) -> bool:
    operands = [node.this] if isinstance(node, exp.Ordered) else list(node.iter_expressions())
    for operand in operands:
        if isinstance(operand, (exp.Literal, exp.Placeholder)) and strict:
            continue
        if _type_of(operand) in _TEXT:
            return True
    return False


def filter_blocker(
    conjunct: exp.Expression, alias: str, column_types: dict[str, str], dialect: SourceDialect
) -> str | None:
    """Why a WHERE/ON conjunct cannot be pushed into the scan of ``alias``, or ``None``."""
    if not dialect.capabilities.filters:
        return f"{dialect.kind} takes no filters"
    if not dialect.capabilities.parameters_in_filters and conjunct.find(
        exp.Placeholder, exp.Parameter
    ):
        return f"{dialect.kind} compares bound values by their own type, not the column's"
    columns = list(conjunct.find_all(exp.Column))
    if not columns:
        return "no column of this table"
    for column in columns:
        if column.table != alias or column.name.lower() not in column_types:
            return "refers to other tables"
    caps = dialect.capabilities
    functions = False
    for node in conjunct.walk():
        known = caps.function_check(node)[0]
        functions = functions or known
        if type(node) not in caps.filter_nodes and not known:  # (the exact class, as above)
            return f"{_node_name(node)} is not pushed to {dialect.kind}"
    if functions:
        reason = function_blocker(_annotated(conjunct, alias, column_types), caps)
        if reason is not None:
            return reason
    allowed = dialect.capabilities.pushable_filter_types
    families = {_family(column_types[c.name.lower()]) for c in columns}
    if allowed is not None and not families <= allowed:
        return f"comparisons on {', '.join(sorted(families - allowed))} differ on {dialect.kind}"
    if not caps.exact_decimal:
        inexact = _inexact_number(conjunct)
        if inexact is not None:
            return f"{inexact} is exact in DuckDB but a REAL on {dialect.kind}"
    if families & {"TEXT", "VARCHAR", "JSON"} and not caps.binary_text_order:
        if any(True for _ in conjunct.find_all(*_RANGE)):
            return "text ranges depend on the source's collation"
    if caps.same_engine:
        return None
    for node in conjunct.walk():
        if _float_literal(node):
            return f"{node.sql('duckdb')} is a DOUBLE in DuckDB but not on {dialect.kind}"
        if isinstance(node, exp.Cast) and not isinstance(node.this, exp.Literal):
            if not caps.casts_in_filters:
                return f"casts differ on {dialect.kind}"
            source = node.this
            family = (
                exp.DataType.build(column_types[source.name.lower()], dialect="duckdb").this
                if isinstance(source, exp.Column)
                else exp.DType.UNKNOWN
            )
            if not _safe_cast(node, family):
                return f"cast to {node.to.sql('duckdb')} may differ on {dialect.kind}"
    return None


def _annotated(conjunct: exp.Expression, alias: str, column_types: dict[str, str]) -> exp.Expr:
    """A copy of a filter on one table, typed as DuckDB types it.

    >>> tree = exp.condition("date_trunc('month', t.ts) = TIMESTAMPTZ '2024-02-01'")
    >>> _annotated(tree, "t", {"ts": "TIMESTAMP WITH TIME ZONE"}).this.this.type.sql()
    'TIMESTAMPTZ'
    """
    select = exp.select(conjunct.copy()).from_(
        exp.Table(this=exp.to_identifier(alias, quoted=True)))
    annotate_types(select, schema={f'"{alias}"': column_types}, dialect="duckdb")
    return select.selects[0]


#: The integers a source without exact decimals still holds exactly (SQLite's 64-bit INTEGER).
_INT64 = range(-(2**63), 2**63)


def _inexact_number(tree: exp.Expression) -> str | None:
    """A number literal that a source without exact decimals would read as a float, or a
    literal cast to a decimal there (``2.99999999999999999`` is 3.0 as a REAL, so ``a > ...``
    would drop ``a = 3``); ``None`` if every number is an integer it holds exactly."""
    for node in tree.walk():
        if isinstance(node, exp.Literal) and not node.is_string:
            text: str = node.this
            if not (text.lstrip("-").isdigit() and int(text) in _INT64):
                return text
        if isinstance(node, exp.Cast) and node.to.this not in _INTEGERS | _TEMPORAL | _TEXT:
            return node.sql("duckdb")
    return None


def _family(duckdb_type: str) -> str:
    from meterql.dialects import type_family

    return type_family(duckdb_type)
