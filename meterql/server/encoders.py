"""A query's rows as the HTTP answer: JSON (the default), CSV or an Arrow IPC stream, chosen by
``Accept``; small results in one body, large ones streamed."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
from fastapi.responses import Response, StreamingResponse

from meterql.engine import Result
from meterql.output import json_value, plain_decimals

ARROW_STREAM = "application/vnd.apache.arrow.stream"

#: Results up to this many bytes (in Arrow) are sent in one piece, larger ones streamed.
_SMALL = 1 << 20


def rows_response(result: Result, accept: str) -> Response:
    """The rows of ``result`` in the format ``accept`` asks for, with the row count, the
    truncation flag and the watermarks in ``X-Meterql-*`` headers."""
    headers = {
        "X-Meterql-Rows": str(result.num_rows),
        "X-Meterql-Truncated": "true" if result.truncated else "false",
        "X-Meterql-Watermarks": json.dumps(json_value(result.watermarks)),
    }
    table = result.to_arrow()
    if ARROW_STREAM in accept:
        chunks, media = _arrow_chunks(table), ARROW_STREAM
    elif "text/csv" in accept:
        chunks, media = _csv_chunks(table), "text/csv; charset=utf-8"
    else:
        chunks, media = _json_chunks(result), "application/json"
    if table.nbytes <= _SMALL:  # one body: streaming costs a thread hop per chunk
        return Response(b"".join(chunks), media_type=media, headers=headers)
    return StreamingResponse(chunks, media_type=media, headers=headers)


def _arrow_chunks(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=65536):
            writer.write_batch(batch)
            yield _drain(sink)
    yield _drain(sink)


def _csv_chunks(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    schema = plain_decimals(pa.RecordBatch.from_pylist([], schema=table.schema)).schema
    with pacsv.CSVWriter(sink, schema) as writer:
        for batch in table.to_batches(max_chunksize=65536):
            writer.write_batch(plain_decimals(batch))
            yield _drain(sink)
    yield _drain(sink)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


def _json_chunks(result: Result) -> Iterator[bytes]:
    table = result.to_arrow()
    columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    yield b'{"columns": ' + json.dumps(columns).encode() + b', "rows": ['
    first = True
    for batch in table.to_batches(max_chunksize=16384):
        names = batch.schema.names
        values = [col.to_pylist() for col in batch.columns]
        rows = [[json_value(v) for v in row] for row in zip(*values, strict=True)] if names else []
        if rows:
            text = ", ".join(json.dumps(r) for r in rows)
            yield (b"" if first else b", ") + text.encode()
            first = False
    tail = {"row_count": result.num_rows, "truncated": result.truncated,
            "seconds": round(result.seconds, 6), "watermarks": json_value(result.watermarks)}
    yield b"], " + json.dumps(tail).encode()[1:]
