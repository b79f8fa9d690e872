"""The event log: ``<workspace>/events.log``, where accepted events are made durable first.

A push is answered once its events are in this file (written with ``O_DSYNC``: on disk when the
write returns), not once DuckDB has them: a write here costs one system call, where a DuckDB
transaction costs several statements. The events writer applies logged records to
``local.events`` in large transactions, each storing the last record's sequence number
(``local.__meterql__.event_log``) with the rows, and before any query reads an event stream.
After a crash, records past that number are applied again when the workspace opens; once
everything is applied the file is emptied.

A record: a header (magic, sequence number, payload length, CRC-32 of the payload) and the
payload, an Arrow IPC stream of the rows with the stream's name in the schema metadata. A
record cut short by a crash, or one whose checksum fails, ends the log: it was never
acknowledged (its write had not returned), and it is cut off when the log is opened.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

_HEADER = struct.Struct("<4sQII")  # magic, sequence number, payload length, CRC-32
_MAGIC = b"MQE1"
_STREAM_KEY = b"meterql.stream"


@dataclass(frozen=True)
class Record:
    seq: int
    stream: str
    rows: pa.Table


class EventLog:
    """Append-only, checksummed, synchronous. Thread-safe: appends and resets take a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_DSYNC, 0o600)
        self._size = 0
        self._next = 1
        self.broken: str | None = None  # why appends are refused (a write failed half-way)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def recover(self, applied: int) -> list[Record]:
        """The records after sequence number ``applied``, read at opening. A torn or corrupt
        tail is cut off; numbering continues after the larger of ``applied`` and the last
        record."""
        with self._lock:
            data = os.pread(self._fd, os.fstat(self._fd).st_size, 0)
            records, end, last = [], 0, applied
            while end + _HEADER.size <= len(data):
                magic, seq, length, crc = _HEADER.unpack_from(data, end)
                start = end + _HEADER.size
                payload = data[start:start + length]
                if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
                    break
                if seq > applied:
                    records.append(_decode(seq, payload))
                last = max(last, seq)
                end = start + length
            if end != len(data):
                os.ftruncate(self._fd, end)
            self._size, self._next = end, last + 1
            return records

    def append(self, batches: list[tuple[str, pa.Table]]) -> list[Record]:
        """Write ``(stream, rows)`` batches as records, durably and in one write. On an error
        nothing of them stays in the file (or, if even that fails, the log refuses further
        appends: the caller takes the transactional way instead)."""
        with self._lock:
            if self.broken:
                raise OSError(self.broken)
            records, parts = [], []
            for stream, rows in batches:
                payload = _encode(stream, rows)
                parts += [_HEADER.pack(_MAGIC, self._next, len(payload), zlib.crc32(payload)),
                          payload]
                records.append(Record(self._next, stream, rows))
                self._next += 1
            data = b"".join(parts)
            try:
                written = os.write(self._fd, data)
                if written != len(data):
                    raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            except OSError:
                self._next -= len(records)
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError as exc:
                    self.broken = f"{self.path} could not be cut back after a failed write: {exc}"
                raise
            self._size += len(data)
            return records

    def last_seq(self) -> int:
        with self._lock:
            return self._next - 1

    def reset(self, applied: int) -> bool:
        """Empty the file if every record in it is applied (``applied`` is the last)."""
        with self._lock:
            if self._next - 1 != applied or self._size == 0:
                return False
            os.ftruncate(self._fd, 0)
            self._size = 0
            return True


def _encode(stream: str, rows: pa.Table) -> bytes:
    metadata = dict(rows.schema.metadata or {})
    metadata[_STREAM_KEY] = stream.encode()
    rows = rows.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return sink.getvalue().to_pybytes()


def _decode(seq: int, payload: bytes) -> Record:
    rows = pa.ipc.open_stream(payload).read_all()
    metadata = dict(rows.schema.metadata or {})
    stream = metadata.pop(_STREAM_KEY).decode()
    return Record(seq, stream, rows.replace_schema_metadata(metadata or None))
