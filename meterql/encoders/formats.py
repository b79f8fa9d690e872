"""A result as bytes, chunk by chunk, in each output format: CSV, JSON, JSON lines, Parquet,
an Arrow IPC stream, and the HTTP API's JSON envelope.

The CLI and the REPL write the chunks to standard output or a file (:func:`save`), the HTTP API
sends them as the body of ``POST /v1/query``. Text formats are built column by column
(:mod:`meterql.encoders.columns`) from batches of :data:`BATCH_ROWS` rows, so every value has
one text whatever asks for it.

Example:
    >>> import pyarrow as pa
    >>> from decimal import Decimal
    >>> table = pa.table({"customer": ["acme", ""], "qty": [Decimal("1.50"), None]})
    >>> print(b"".join(encode(table, "csv")).decode(), end="")
    customer,qty
    acme,1.50
    "",
    >>> print(b"".join(encode(table, "jsonl")).decode(), end="")
    {"customer": "acme", "qty": "1.50"}
    {"customer": "", "qty": null}
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import pyarrow as pa
import pyarrow.compute as pc

from meterql.dialects.arrow_types import sql_type_name
from meterql.encoders.columns import csv_column, json_column
from meterql.encoders.values import json_value

#: The formats of ``meterql query --format``; ``table`` is for people (rich), the others are
#: files (:data:`FileFormat`).
Format = Literal["table", "csv", "json", "jsonl", "parquet", "arrow"]
FORMATS: tuple[Format, ...] = get_args(Format)
FileFormat = Literal["csv", "json", "jsonl", "parquet", "arrow"]
BINARY_FORMATS = frozenset({"parquet", "arrow"})

#: Rows per chunk of a text format or per Arrow record batch.
BATCH_ROWS = 65536
#: Rows per Parquet row group: pyarrow's own default, so a file is laid out as before.
ROW_GROUP_ROWS = 1024 * 1024


def encode(table: pa.Table, fmt: FileFormat) -> Iterator[bytes]:
    """The rows of ``table`` in ``fmt``, as byte chunks to write one after another.

    ``json`` is a list of objects, two spaces of indent; ``jsonl`` one object a line.

    Example:
        >>> import pyarrow as pa
        >>> print(b"".join(encode(pa.table({"n": [1, 2]}), "json")).decode(), end="")
        [
          {
            "n": 1
          },
          {
            "n": 2
          }
        ]
    """
    try:
        writer = _WRITERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format '{fmt}'; use one of {', '.join(_WRITERS)}") from None
    return writer(table)


def json_envelope(table: pa.Table, tail: Mapping[str, Any]) -> Iterator[bytes]:
    """The HTTP API's JSON answer: ``{"columns": [{"name", "type"}], "rows": [[...]], ...}``
    with each column's SQL type name (:func:`~meterql.dialects.arrow_types.sql_type_name`),
    the rows as lists and the fields of ``tail`` after them.

    Example:
        >>> import pyarrow as pa
        >>> body = b"".join(json_envelope(pa.table({"n": [1, None]}), {"row_count": 2}))
        >>> body.decode()
        '{"columns": [{"name": "n", "type": "BIGINT"}], "rows": [[1], [null]], "row_count": 2}'
    """
    columns = [{"name": f.name, "type": sql_type_name(f)} for f in table.schema]
    yield b'{"columns": ' + _json(columns) + b', "rows": ['
    separator = b""
    for batch in _batches(table):
        yield separator + _rows(batch, json_column, "[", ", ", "]", ", ")[:-2]
        separator = b", "
    rest = _json(json_value(dict(tail)))[1:]  # '"row_count": 2}' or '}'
    yield b"], " + rest if tail else b"]" + rest


def save(table: pa.Table, fmt: FileFormat, path: Path) -> None:
    """Write ``table`` to ``path`` in ``fmt``: to ``path.partial`` first, renamed when whole,
    so that a failure never leaves a half-written file under the name asked for."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as fh:
        for chunk in encode(table, fmt):
            fh.write(chunk)
    partial.replace(path)


def _csv(table: pa.Table) -> Iterator[bytes]:
    names = csv_column(pa.array(table.column_names, pa.string())).to_pylist()
    yield (",".join(names) + "\n").encode()
    for batch in _batches(table):
        yield _rows(batch, csv_column, "", ",", "", "\n")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _json_list(table: pa.Table) -> Iterator[bytes]:
    if table.num_rows == 0:
        yield b"[]\n"
        return
    yield b"[\n"
    keys = [f'\n    {json.dumps(name, ensure_ascii=False)}: ' for name in table.column_names]
    separator = b""
    for batch in _batches(table):
        text = _rows(batch, json_column, "  {", ",", "\n  }" if keys else "}", ",\n", keys)
        yield separator + text[:-2]
        separator = b",\n"
    yield b"\n]\n"


def _jsonl(table: pa.Table) -> Iterator[bytes]:
    keys = [f"{json.dumps(name, ensure_ascii=False)}: " for name in table.column_names]
    for batch in _batches(table):
        yield _rows(batch, json_column, "{", ", ", "}", "\n", keys)


def _arrow(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in _batches(table):
            writer.write_batch(batch)
            yield _drain(sink)
    yield _drain(sink)


def _parquet(table: pa.Table) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema) as writer:
        for start in range(0, table.num_rows, ROW_GROUP_ROWS):
            writer.write_table(table.slice(start, ROW_GROUP_ROWS))
            yield _drain(sink)
    yield _drain(sink)


_WRITERS: dict[str, Callable[[pa.Table], Iterator[bytes]]] = {
    "csv": _csv, "json": _json_list, "jsonl": _jsonl, "parquet": _parquet, "arrow": _arrow}


def _batches(table: pa.Table) -> Iterator[pa.RecordBatch]:
    return (b for b in table.to_batches(max_chunksize=BATCH_ROWS) if b.num_rows)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _rows(batch: pa.RecordBatch, column: Callable[[pa.Array], pa.Array], start: str,
          between: str, end: str, after: str, keys: list[str] | None = None) -> bytes:
    """Each row as ``start``, its fields (each after its key, if keyed) with ``between``
    between them, ``end`` and ``after``; all rows end to end."""
    parts: list[Any] = [start]
    for i, field in enumerate(batch.columns):
        if i:
            parts.append(between)
        if keys:
            parts.append(keys[i])
        parts.append(column(field))
    parts.append(end + after)
    if batch.num_columns == 0:
        return "".join(parts).encode() * batch.num_rows
    pieces = [p if isinstance(p, pa.Array) else pa.scalar(p, pa.string())
              for p in _merged(parts)]
    rows = pc.binary_join_element_wise(*pieces, "")
    # the rows end to end are the string array's data, between its first and last offset
    _, offsets, data = rows.buffers()
    if data is None:
        return b""
    ends = pa.Array.from_buffers(pa.int32(), len(rows) + 1, [None, offsets], offset=rows.offset)
    return data[ends[0].as_py():ends[-1].as_py()].to_pybytes()


def _merged(parts: list[Any]) -> list[Any]:
    """Adjacent literal strings joined, so the row join has fewer pieces."""
    merged: list[Any] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return [p for p in merged if not (isinstance(p, str) and not p)]
