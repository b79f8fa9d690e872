"""The functions PostgreSQL computes as DuckDB does, as data: each with its check, and the
rewrite that makes the SQL sent mean exactly what DuckDB means.

Every meterql session to PostgreSQL runs with ``TimeZone = 'UTC'``, and every DuckDB that reads
a table computes in UTC too (a session's zone only changes how results are shown), so
``date_trunc``, ``extract`` and interval arithmetic on a ``timestamptz`` agree. What does not
agree is kept local with its reason (EXPLAIN prints it): case folding of non-ASCII text
(``lower``, ``upper``, ``ILIKE``), division of decimals and floats, JSON values that are not
strings, a naive timestamp ``AT TIME ZONE``.

>>> import sqlglot
>>> tree = sqlglot.parse_one(
...     "SELECT extract(dow FROM ts), a / b, a // b FROM t WHERE s LIKE 'a%'", read="duckdb")
>>> print(to_postgres(tree).sql("postgres"))
SELECT CAST(EXTRACT(DOW FROM ts) AS BIGINT), CASE WHEN b = 0 THEN CAST(a AS DOUBLE PRECISION) \
* CAST('Infinity' AS DOUBLE PRECISION) ELSE CAST(a AS DOUBLE PRECISION) / b END, (a / b) FROM t \
WHERE s LIKE 'a%' ESCAPE ''
"""

from __future__ import annotations

import re

from sqlglot import exp

from meterql.dialects.base import FunctionCheck

_D = exp.DType
_INTEGERS = {_D.SMALLINT, _D.INT, _D.BIGINT}
_TEXT = {_D.TEXT, _D.VARCHAR}
_INSTANT = {_D.TIMESTAMPTZ}
_NAIVE = {_D.TIMESTAMP, _D.TIMESTAMPNTZ, _D.DATETIME}
_DATE = {_D.DATE}

#: date_trunc units that cut the same in both (``week`` starts on Monday in both).
TRUNC_UNITS = frozenset({
    "second", "minute", "hour", "day", "week", "month", "quarter", "year",
})

#: extract/date_part fields -> (PostgreSQL's name, whether a DATE has it there, the form):
#: ``int`` casts PostgreSQL's numeric to DuckDB's BIGINT, ``floor`` drops the fractions
#: PostgreSQL adds (``second`` is 59.999999 there, 59 in DuckDB), ``double`` is DuckDB's
#: DOUBLE (``epoch``: PostgreSQL's exact numeric, rounded once to the same double).
EXTRACT_FIELDS: dict[str, tuple[str, bool, str]] = {
    "year": ("YEAR", True, "int"), "isoyear": ("ISOYEAR", True, "int"),
    "quarter": ("QUARTER", True, "int"), "month": ("MONTH", True, "int"),
    "week": ("WEEK", True, "int"), "day": ("DAY", True, "int"), "doy": ("DOY", True, "int"),
    "dow": ("DOW", True, "int"), "isodow": ("ISODOW", True, "int"),
    "hour": ("HOUR", False, "int"), "minute": ("MINUTE", False, "int"),
    "second": ("SECOND", False, "floor"),
    "millisecond": ("MILLISECONDS", False, "floor"),
    "milliseconds": ("MILLISECONDS", False, "floor"),
    "microsecond": ("MICROSECONDS", False, "floor"),
    "microseconds": ("MICROSECONDS", False, "floor"),
    "epoch": ("EPOCH", True, "double"),
}

#: Interval units added the same way (months clamp to the month's end in both; days are
#: calendar days in the sessions' UTC).
INTERVAL_UNITS = frozenset({"year", "month", "week", "day", "hour", "minute", "second"})

#: IANA zone names both engines know by the same rules (no abbreviations, no POSIX offsets,
#: whose signs PostgreSQL reads inverted).
IANA_ZONE = re.compile(
    r"^(UTC|(Africa|America|Antarctica|Asia|Atlantic|Australia|Europe|Indian|Pacific)"
    r"(/[A-Z][A-Za-z_-]*)+)$")


def _type(node: exp.Expr | None) -> exp.DType:
    dtype = node.type if node is not None else None
    return dtype.this if dtype is not None else _D.UNKNOWN


def _name(node: exp.Expr | None) -> str:
    """The lower-case name of a unit or field written as a word or a string."""
    if isinstance(node, (exp.Var, exp.Literal)):
        return str(node.this).lower()
    return ""


def _temporal(value: exp.Expr, what: str, allowed: set[exp.DType]) -> str | None:
    if _type(value) not in allowed:
        return f"{what} of a {_type(value).value} value"
    return None


def _check_trunc(node: exp.Expr) -> str | None:
    unit = _name(node.args.get("unit"))
    if unit not in TRUNC_UNITS:
        return f"date_trunc to '{unit}' is not known to cut the same on postgres"
    if node.args.get("zone") is not None:
        return "date_trunc with a zone argument"
    return _temporal(node.this, "date_trunc", _INSTANT | _NAIVE | _DATE)


def _check_zone(zone: exp.Expr | None, value: exp.Expr) -> str | None:
    if not (isinstance(zone, exp.Literal) and zone.is_string and IANA_ZONE.match(zone.this)):
        return "AT TIME ZONE takes a literal IANA zone name (e.g. 'Europe/Berlin') to be pushed"
    if _type(value) not in _INSTANT:
        return ("AT TIME ZONE of a wall-clock timestamp: a time in a daylight-saving gap or "
                "overlap resolves by each engine's own rule, not known to agree in every zone")
    return None


def _check_at_time_zone(node: exp.Expr) -> str | None:
    return _check_zone(node.args.get("zone"), node.this)


def _check_timezone_function(node: exp.Expr) -> str | None:
    """DuckDB's ``timezone(zone, ts)``: ``ts AT TIME ZONE zone``."""
    args = node.expressions
    if len(args) != 2:
        return "timezone() takes a zone and a timestamp"
    reason = _check_zone(args[0], args[1])
    if reason is None:
        node.type = exp.DataType.build("TIMESTAMP")
    return reason


def _check_field(field: str, value: exp.Expr) -> str | None:
    entry = EXTRACT_FIELDS.get(field)
    if entry is None:
        return f"extract of '{field}' is not known to give DuckDB's value on postgres"
    allowed = _INSTANT | _NAIVE | (_DATE if entry[1] else set())
    return _temporal(value, f"extract of '{field}'", allowed)


def _check_extract(node: exp.Expr) -> str | None:
    return _check_field(_name(node.this), node.expression)


def _check_date_part(node: exp.Expr) -> str | None:
    args = node.expressions
    if len(args) != 2 or not (isinstance(args[0], exp.Literal) and args[0].is_string):
        return "date_part takes a field name as a string literal"
    field = _name(args[0])
    reason = _check_field(field, args[1])
    if reason is None:
        node.type = exp.DataType.build("DOUBLE" if field == "epoch" else "BIGINT")
    return reason


def _check_interval(node: exp.Expr) -> str | None:
    amount, unit = node.this, _name(node.args.get("unit"))
    text = str(amount.this) if isinstance(amount, exp.Literal) else ""
    if unit not in INTERVAL_UNITS or not text.lstrip("-").isdigit():
        return ("an interval other than a whole number of one unit (INTERVAL 1 MONTH) may "
                "read otherwise on postgres")
    return None


def _not_integers(node: exp.Expr) -> str | None:
    """The operands' types, when they are not all integers."""
    types = {_type(node.this), _type(node.expression)}
    return None if types <= _INTEGERS else ", ".join(sorted(t.value for t in types))


def _check_division(node: exp.Expr) -> str | None:
    shown = _not_integers(node)
    if shown is not None:
        return (f"division of {shown}: DuckDB divides in DOUBLE (and gives inf at zero), "
                "postgres keeps the type or raises")
    return None


def _check_modulo(node: exp.Expr) -> str | None:
    shown = _not_integers(node)
    return None if shown is None else f"% of {shown}: the result type differs on postgres"


def _check_substring(node: exp.Expr) -> str | None:
    start, length = node.args.get("start"), node.args.get("length")
    if _type(node.this) not in _TEXT:
        return "substring of a value that is not text"
    if not (isinstance(start, exp.Literal) and not start.is_string and start.this.isdigit()
            and int(start.this) >= 1):
        return ("substring from a start that is not a positive literal: DuckDB counts a "
                "negative start from the end, postgres before the first character")
    if length is not None and not (
            isinstance(length, exp.Literal) and not length.is_string and length.this.isdigit()):
        return "substring of a length that is not a literal count: postgres refuses negatives"
    return None


def _printable(node: exp.Expr) -> bool:
    """A concat operand both engines print alike: text, an integer, a string, NULL."""
    if isinstance(node, exp.Null) or isinstance(node, exp.Literal) and node.is_string:
        return True
    return _type(node) in _TEXT | _INTEGERS


def _check_concat(node: exp.Expr) -> str | None:
    for arg in node.expressions:
        if not _printable(arg):
            return (f"concat of a {_type(arg).value} value: postgres prints it otherwise "
                    "(decimal scale, timestamps)")
    return None


def _check_pipe(node: exp.Expr) -> str | None:
    for arg in (node.this, node.expression):
        if not (isinstance(arg, exp.Null) or isinstance(arg, exp.Literal) and arg.is_string
                or _type(arg) in _TEXT):
            return f"|| of a {_type(arg).value} value: DuckDB and postgres convert it otherwise"
    return None


def _check_like(node: exp.Expr) -> str | None:
    if _type(node.this) not in _TEXT or not (
            isinstance(node.expression, exp.Literal) and node.expression.is_string
            or _type(node.expression) in _TEXT):
        return "LIKE on a value that is not text"
    return None


def _check_escape(node: exp.Expr) -> str | None:
    """``LIKE p ESCAPE 'c'``: alike where every escape in a literal pattern escapes a
    wildcard or itself (what else the engines do with it differs)."""
    like, escape = node.this, node.expression
    if not isinstance(like, exp.Like):
        return "ESCAPE outside LIKE"
    pattern = like.expression
    if not (isinstance(escape, exp.Literal) and escape.is_string and len(escape.this) == 1
            and isinstance(pattern, exp.Literal) and pattern.is_string):
        return "LIKE ... ESCAPE with a pattern or escape that is not a literal"
    char, text, i = escape.this, pattern.this, 0
    while i < len(text):
        if text[i] == char:
            if i + 1 >= len(text) or text[i + 1] not in ("%", "_", char):
                return "a LIKE escape that escapes no wildcard"
            i += 1
        i += 1
    return None


def _kept(reason: str) -> FunctionCheck:
    return lambda node: reason


_CASE_FOLDING = ("{} folds the case of non-ASCII text by the database's ctype on postgres, by "
                 "DuckDB's own Unicode tables in DuckDB (upper('ß') is 'ẞ' there)")
_JSON = ("JSON ->> / json_extract_string: DuckDB prints numbers and nested values in its own "
         "form (1.50 as 1.5, objects without spaces), postgres as stored")

#: Node class -> its check (``None``: none needed).
FUNCTIONS: dict[type[exp.Expr], FunctionCheck | None] = {
    exp.TimestampTrunc: _check_trunc,
    exp.AtTimeZone: _check_at_time_zone,
    exp.Extract: _check_extract,
    exp.Interval: _check_interval,
    exp.Nullif: None,
    exp.Filter: None,
    exp.Div: _check_division,
    exp.IntDiv: _check_division,
    exp.Mod: _check_modulo,  # integers: the sign follows the dividend in both
    exp.Substring: _check_substring,
    exp.Concat: _check_concat,
    exp.ConcatWs: _check_concat,
    exp.DPipe: _check_pipe,
    exp.Like: _check_like,
    exp.Escape: _check_escape,
    exp.ILike: _kept(_CASE_FOLDING.format("ILIKE")),
    exp.Lower: _kept(_CASE_FOLDING.format("lower()")),
    exp.Upper: _kept(_CASE_FOLDING.format("upper()")),
    exp.JSONExtractScalar: _kept(_JSON),
}

#: Functions sqlglot leaves anonymous, by name.
NAMED_FUNCTIONS: dict[str, FunctionCheck] = {
    "date_part": _check_date_part,
    "timezone": _check_timezone_function,
}


def _double(value: exp.Expr) -> exp.Expr:
    return exp.cast(value, exp.DataType.build("DOUBLE PRECISION", dialect="postgres"))


def _extract(field: str, value: exp.Expr) -> exp.Expr:
    name, _, form = EXTRACT_FIELDS[field]
    extracted: exp.Expr = exp.Extract(this=exp.var(name), expression=value)
    if form == "double":
        return _double(extracted)
    if form == "floor":
        extracted = exp.Floor(this=extracted)
    return exp.cast(extracted, "BIGINT")


def _rewrite(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Extract):
        return _extract(_name(node.this), node.expression)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "date_part":
        return _extract(_name(node.expressions[0]), node.expressions[1])
    if isinstance(node, exp.Div) and not node.args.get("typed"):
        # integers (the check saw to it): DuckDB's DOUBLE quotient, +-inf or NaN at zero
        divisor = node.expression
        quotient = exp.Div(this=_double(node.this), expression=divisor, typed=True)
        infinite = exp.Mul(this=_double(node.this.copy()),
                           expression=_double(exp.Literal.string("Infinity")))
        return exp.case().when(exp.EQ(this=divisor.copy(), expression=exp.Literal.number(0)),
                               infinite).else_(quotient)
    if isinstance(node, exp.IntDiv):  # integers: PostgreSQL's integer division truncates too
        return exp.Paren(this=exp.Div(this=node.this, expression=node.expression, typed=True))
    if isinstance(node, exp.Like) and not isinstance(node.parent, exp.Escape):
        # PostgreSQL's LIKE escapes with a backslash unless told otherwise; DuckDB's does not
        return exp.Escape(this=node, expression=exp.Literal.string(""))
    return node


def to_postgres(tree: exp.Expr) -> exp.Expr:
    """``tree`` (as DuckDB means it, its functions checked) as PostgreSQL computes the same:
    extract's numeric as DuckDB's BIGINT or DOUBLE, integer ``/`` as a DOUBLE quotient,
    ``//`` as integer division, LIKE without an escape character."""
    for node in reversed(list(tree.walk(bfs=False))):  # operands before what holds them
        parent, key, index = node.parent, node.arg_key, node.index
        new = _rewrite(node)
        if new is node:
            continue
        if parent is None or key is None:
            tree = new
        else:
            parent.set(key, new, index)
    return tree
