"""Writing results: rich tables for people; CSV, JSON, JSON lines, Parquet, Arrow for programs."""

from __future__ import annotations

import csv
import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any, Literal, get_args

import pyarrow as pa

Format = Literal["table", "csv", "json", "jsonl", "parquet", "arrow"]
FORMATS: tuple[Format, ...] = get_args(Format)
BINARY_FORMATS = frozenset({"parquet", "arrow"})


def json_value(value: Any) -> Any:
    """A JSON-safe value: decimals as strings (exact), times in ISO 8601, bytes in hex,
    NaN and infinities as strings; lists and dicts converted throughout."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)  # UUID and other scalar objects


def decimal_text(value: Decimal) -> str:
    """A decimal in plain positional notation with its own scale, never with an exponent.

    >>> decimal_text(Decimal("0E-12")), decimal_text(Decimal("1.23456E-7"))
    ('0.000000000000', '0.000000123456')
    >>> decimal_text(Decimal("12.50")), decimal_text(Decimal("1E+3"))
    ('12.50', '1000')
    """
    return format(value, "f")


def plain_decimals(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with its decimal columns as text in positional notation (Arrow's own text
    form of a decimal uses an exponent for small values: ``1.23456E-7``)."""
    if not any(pa.types.is_decimal(f.type) for f in batch.schema):
        return batch
    columns, fields = [], []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_decimal(field.type):
            column = pa.array([None if v is None else decimal_text(v)
                               for v in column.to_pylist()], pa.string())
            field = pa.field(field.name, pa.string())
        columns.append(column)
        fields.append(field)
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))


def write_text(table: pa.Table, fmt: Format, out: IO[str]) -> None:
    """Write csv, json or jsonl."""
    rows = table.to_pylist()
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.column_names)
        for row in rows:
            writer.writerow(["" if v is None else json_value(v) for v in row.values()])
    elif fmt == "json":
        json.dump([{k: json_value(v) for k, v in r.items()} for r in rows], out,
                  ensure_ascii=False, indent=2)
        out.write("\n")
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps({k: json_value(v) for k, v in row.items()}, ensure_ascii=False))
            out.write("\n")
    else:
        raise ValueError(fmt)


def write_binary(table: pa.Table, fmt: Format, out: IO[bytes]) -> None:
    """Write parquet or an Arrow IPC stream."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, out)
    elif fmt == "arrow":
        with pa.ipc.new_stream(out, table.schema) as writer:
            writer.write_table(table)
    else:
        raise ValueError(fmt)


def render_table(table: pa.Table, title: str | None = None):
    """A rich Table with the column types in the header."""
    from rich.table import Table

    view = Table(title=title, show_lines=False, header_style="bold")
    for field in table.schema:
        justify: Literal["right", "left"] = "right" if _numeric(field.type) else "left"
        view.add_column(f"{field.name}\n[dim]{_type_label(field.type)}[/dim]", justify=justify)
    for row in table.to_pylist():
        view.add_row(*[_cell(v) for v in row.values()])
    return view


def _numeric(typ: pa.DataType) -> bool:
    return pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)


def _type_label(typ: pa.DataType) -> str:
    if pa.types.is_decimal(typ):
        return f"decimal({typ.precision},{typ.scale})"
    if pa.types.is_timestamp(typ):
        return "timestamptz" if typ.tz else "timestamp"
    return str(typ)


def _cell(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return "[dim]NULL[/dim]"
    return escape(str(json_value(value)))
