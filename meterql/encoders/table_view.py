"""A result as a rich table for people: the column types in the header, numbers to the right,
NULL dimmed, every other cell the text the CSV has (:func:`~meterql.encoders.columns.column_text`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from meterql.encoders.columns import column_text

if TYPE_CHECKING:
    from rich.table import Table


def render_table(table: pa.Table, title: str | None = None) -> Table:
    """A rich Table with the column types in the header."""
    from rich.markup import escape
    from rich.table import Table

    view = Table(title=title, show_lines=False, header_style="bold")
    for field in table.schema:
        justify: Literal["right", "left"] = "right" if _numeric(field.type) else "left"
        view.add_column(f"{field.name}\n[dim]{type_label(field.type)}[/dim]", justify=justify)
    for row in row_texts(table):
        view.add_row(*["[dim]NULL[/dim]" if v is None else escape(v) for v in row])
    return view


def render_expanded(table: pa.Table, null: str = "NULL") -> Iterator[str]:
    """The rows as psql's expanded display (``\\x``): a ``-[ RECORD n ]-`` line, then one
    ``column | value`` line per field (NULL written as ``null``, as a table cell shows it, so
    that it differs from an empty string); a value's further lines continue under its first.

    Example:
        >>> import pyarrow as pa
        >>> print("\\n".join(render_expanded(pa.table({"id": [1, 2], "name": ["a", None]}))))
        -[ RECORD 1 ]
        id   | 1
        name | a
        -[ RECORD 2 ]
        id   | 2
        name | NULL
    """
    width = max((len(name) for name in table.column_names), default=0)
    values = max((len(line) for row in row_texts(table) for v in row
                  for line in (null if v is None else v).split("\n")), default=0)
    for number, row in enumerate(row_texts(table), 1):
        head = f"-[ RECORD {number} ]"
        yield head + "-" * (width + 3 + values - len(head))
        for name, value in zip(table.column_names, row, strict=True):
            first, *rest = (null if value is None else value).split("\n")
            yield f"{name.ljust(width)} | {first}".rstrip()
            yield from (f"{'':{width}} | {line}".rstrip() for line in rest)


def row_texts(table: pa.Table) -> Iterator[tuple[str | None, ...]]:
    """Each row's values as text (None for NULL), as a table cell or a vertical row shows them.

    Example:
        >>> import pyarrow as pa
        >>> list(row_texts(pa.table({"n": [1, None], "ok": [True, False]})))
        [('1', 'true'), (None, 'false')]
    """
    for batch in table.to_batches():
        yield from zip(*[column_text(c).to_pylist() for c in batch.columns], strict=True)


def type_label(typ: pa.DataType) -> str:
    """A column type as a table header shows it.

    Example:
        >>> import pyarrow as pa
        >>> type_label(pa.decimal128(18, 6)), type_label(pa.timestamp("us", tz="UTC"))
        ('decimal(18,6)', 'timestamptz')
    """
    if pa.types.is_decimal(typ):
        return f"decimal({typ.precision},{typ.scale})"
    if pa.types.is_timestamp(typ):
        return "timestamptz" if typ.tz else "timestamp"
    return str(typ)


def _numeric(typ: pa.DataType) -> bool:
    return pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)
