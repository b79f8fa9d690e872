"""Aggregate definitions: a named SELECT with a small header, kept in the catalog or in files.

A file holds one aggregate: header lines (``-- key: value``) and then the SELECT::

    -- name: api_calls
    -- description: Billable API calls per customer
    -- unit: call
    -- dialect: duckdb
    -- customer: customer_id
    -- freshness: 1h
    SELECT customer_id, count(*) AS quantity
    FROM pg.public.events
    WHERE ts >= :period_start AND ts < :period_end
    GROUP BY customer_id

The engine supplies ``:period_start`` and ``:period_end`` (half-open) and, when one customer is
asked for, ``:customer_id``. The output has the customer column, ``quantity`` (an exact number)
and any other columns, which are dimensions. ``-- freshness:`` is the aggregate's freshness
bound for sources in ``auto`` mode (a duration, ``0`` for live, or ``none``): an evaluation's
own ``max_staleness`` wins over it, and it wins over the workspace setting ``max_staleness``.

>>> draft = parse_definition("-- name: calls\\n-- unit: call\\nSELECT 1 AS quantity")
>>> draft.name, draft.unit, draft.customer_column, draft.sql
('calls', 'call', 'customer_id', 'SELECT 1 AS quantity')
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from datetime import datetime

from lark import Lark, LarkError, Token, Tree, UnexpectedInput

from meterql.catalog.settings import parse_staleness
from meterql.errors import InvalidAggregateError, UnknownAggregateError
from meterql.sql_text import is_name
from meterql.wording import format_duration

#: Parameters the engine supplies to an aggregate's SQL.
ENGINE_PARAMETERS = ("period_start", "period_end", "customer_id")
HEADER_KEYS = ("name", "description", "unit", "dialect", "customer", "freshness")

_HEADER = Lark(
    r"""
    start: (line | _NL)*
    line: "--" KEY ":" VALUE? _NL
    KEY: /[A-Za-z_][A-Za-z0-9_-]*/
    VALUE: /[^\n]+/
    _NL: /\r?\n/
    %ignore /[ \t]+/
    """,
    parser="lalr",
)


@dataclass(frozen=True)
class Aggregate:
    """One version of an aggregate (versions are immutable once saved)."""

    name: str
    sql: str
    description: str | None = None
    unit: str | None = None
    dialect: str = "duckdb"
    customer_column: str = "customer_id"
    version: int | None = None  # None: a draft, not saved
    created_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    #: the freshness bound of its evaluations (``-- freshness:``) as a duration (``1h``,
    #: ``0s``) or ``none``; ``None``: the workspace setting ``max_staleness``
    freshness: str | None = None

    def content(self) -> tuple:
        """What makes two versions the same definition."""
        return (self.sql.strip(), self.description, self.unit, self.dialect,
                self.customer_column, self.freshness)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "unit": self.unit,
            "dialect": self.dialect,
            "customer_column": self.customer_column,
            "freshness": self.freshness,
            "sql": self.sql,
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
        }


def one_version(name: str, versions: list[Aggregate], version: int | None) -> Aggregate:
    """``version`` of ``versions`` (one aggregate's, oldest first), or the latest if None."""
    if version is None:
        return versions[-1]
    for aggregate in versions:
        if aggregate.version == version:
            return aggregate
    raise UnknownAggregateError(
        f"aggregate '{name}' has no version {version}",
        hint=f"its versions are 1 to {versions[-1].version} (meterql aggregate show {name})")


def parse_definition(text: str, origin: str = "definition") -> Aggregate:
    """An aggregate from a file's text: the header lines, then the SQL."""
    # The header is the leading block of "--" lines; those without a colon are free comments
    # (kept out of the grammar as blank lines, so line numbers stay right).
    lines = text.splitlines(keepends=True)
    header_end = _header_end(lines)
    header = "".join(line if ":" in line else "\n" for line in lines[:header_end])
    try:
        tree = _HEADER.parse(header)
    except UnexpectedInput as exc:
        raise InvalidAggregateError(
            f"{origin}: the header line {exc.line} is not '-- key: value'",
            line=exc.line, column=exc.column, sql=header,
            hint="each header line reads like '-- name: api_calls'",
        ) from None
    except LarkError as exc:  # pragma: no cover - lark's other errors carry no position
        raise InvalidAggregateError(f"{origin}: unreadable header ({exc})") from None
    values: dict[str, str] = {}
    freshness = None
    for entry in tree.children:
        if not isinstance(entry, Tree):  # (the grammar's start holds only lines)
            raise RuntimeError(f"{origin}: the header parsed to a bare token {entry!r}")
        key = str(entry.children[0]).lower()
        value = str(entry.children[1]).strip() if len(entry.children) > 1 else ""
        if key not in HEADER_KEYS:
            close = difflib.get_close_matches(key, HEADER_KEYS, n=1)
            raise InvalidAggregateError(
                f"{origin}: unknown header key '{key}'",
                hint=f"did you mean '{close[0]}'?" if close
                else "header keys: " + ", ".join(HEADER_KEYS),
            )
        values[key] = value
        if key == "freshness":
            token = entry.children[-1]
            if not isinstance(token, Token):  # (a header line holds tokens only)
                raise RuntimeError(f"{origin}: the header line parsed to {token!r}")
            try:
                freshness = freshness_text(value)
            except ValueError:
                raise InvalidAggregateError(
                    f"{origin}: the freshness '{value}' is not a duration or none",
                    line=token.line, sql=text,
                    column=(token.column or 1) + len(token) - len(token.lstrip()),  # (the value)
                    hint="write '-- freshness: 1h' (30s, 5m, 1h30m; 0 reads live; none: a "
                    "replica of any age)") from None
    if not values.get("name"):
        raise InvalidAggregateError(
            f"{origin}: the header has no name",
            hint="start the file with a line '-- name: my_aggregate'",
        )
    sql = "".join(lines[header_end:]).strip().rstrip(";").strip()
    return new_aggregate(values["name"], sql, description=values.get("description") or None,
                         unit=values.get("unit") or None,
                         dialect=values.get("dialect") or "duckdb",
                         customer_column=values.get("customer") or "customer_id",
                         freshness=freshness)


def freshness_text(value: object) -> str | None:
    """A freshness bound as an aggregate keeps it: a duration as meterql prints it, or
    ``none``; an empty value is no bound (``None``: the workspace setting).

    >>> freshness_text("90m"), freshness_text("0"), freshness_text("NONE"), freshness_text("")
    ('1h30m', '0s', 'none', None)

    Raises:
        ValueError: neither a duration nor ``none``.
    """
    if value is None or str(value).strip() == "":
        return None
    seconds = parse_staleness(value)
    return "none" if seconds is None else format_duration(seconds)


def sql_line(text: str) -> int:
    r"""The line of a definition file's text where its SQL starts (1-based): where an error's
    line in the SQL is in the file.

    >>> sql_line("-- name: calls\n-- unit: call\n\nSELECT 1")
    4
    """
    lines = text.splitlines(keepends=True)
    header_end = _header_end(lines)
    blank = 0
    for line in lines[header_end:]:
        if line.strip():
            break
        blank += 1
    return header_end + blank + 1


def _header_end(lines: list[str]) -> int:
    """How many of the lines are the header: the leading ``--`` and blank lines."""
    header_end = 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break
        header_end = i + 1
    return header_end


def new_aggregate(name: str, sql: str, **fields) -> Aggregate:
    """A draft aggregate with its name and fields checked (the SQL is checked by
    :func:`meterql.aggregates.validate.validate`)."""
    if not is_name(name):
        raise InvalidAggregateError(
            f"'{name}' is not a valid aggregate name",
            hint="use a lowercase identifier: letters, digits and _, starting with a letter",
        )
    if not sql.strip():
        raise InvalidAggregateError(f"aggregate '{name}' has no SQL",
                                    hint="write one SELECT after the header")
    if fields.get("freshness") is not None:
        try:
            fields["freshness"] = freshness_text(fields["freshness"])
        except ValueError:
            raise InvalidAggregateError(
                f"aggregate '{name}': the freshness {fields['freshness']!r} is not a duration "
                "or none", hint="give a duration (30s, 5m, 1h; 0 reads live) or none") from None
    draft = Aggregate(name, sql.strip().rstrip(";").strip())
    return replace(draft, **{k: v for k, v in fields.items() if v is not None})
