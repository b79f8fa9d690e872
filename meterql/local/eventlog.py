"""The event log: ``<workspace>/events.log``, where accepted events are made durable first.

A push is answered once its events are in this file (written with ``O_DSYNC``: on disk when the
write returns), not once DuckDB has them: a write here costs one system call, where a DuckDB
transaction costs several statements. The events writer applies logged records to
``local.events`` in large transactions, each storing the last record's sequence number
(``local.__meterql__.event_log``) with the rows, and before any query reads an event stream.
After a crash, records past that number are applied again when the workspace opens. Once
everything is applied the file is emptied; under a steady load (when that moment never comes)
the applied records are cut from its head once it passes 64 MB.

A record: a header (magic, sequence number, time of the write, payload length, CRC-32 of the
payload) and the payload: the stream's name and either the rows as an Arrow IPC stream (a batch
read and checked as columns) or the request body as it came (JSON, read again when applied).
A record cut short by a crash, or one whose checksum fails, ends the log: it was never
acknowledged (its write had not returned), and it is cut off when the log is opened.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

_HEADER = struct.Struct("<4sQqII")  # magic, seq, written at (µs since 1970), length, CRC-32
_MAGIC = b"MQE2"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COMPACT_AT = 64 << 20  # bytes: past this, applied records are cut from the file's head
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_DSYNC


@dataclass(frozen=True)
class Record:
    seq: int
    stream: str
    at: datetime  # when it was written: the events' _ingested_at
    rows: pa.Table | None = None  # the rows as columns, or
    body: bytes | None = None  # the request body as it came (JSON)
    content_type: str = ""

    @property
    def size(self) -> int:
        """Rows (for a body: an estimate, one per 200 bytes) for the writer's thresholds."""
        return self.rows.num_rows if self.rows is not None else 1 + len(self.body or b"") // 200


def rows_payload(stream: str, rows: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, rows.schema) as writer:
        writer.write_table(rows)
    return _head(b"A", stream, "") + sink.getvalue().to_pybytes()


def body_payload(stream: str, content_type: str, body: bytes) -> bytes:
    return _head(b"J", stream, content_type) + body


def payload_of(record: Record) -> bytes:
    if record.rows is not None:
        return rows_payload(record.stream, record.rows)
    return body_payload(record.stream, record.content_type, record.body or b"")


def _head(kind: bytes, stream: str, content_type: str) -> bytes:
    # Only the media type, which is all a body is read by (parse_body): ASCII, short.
    media = content_type.split(";")[0].strip().lower()
    name, ctype = stream.encode(), media.encode("ascii", "replace")[:255]
    return kind + bytes([len(name)]) + name + bytes([len(ctype)]) + ctype


def _decode(seq: int, at: datetime, payload: bytes) -> Record:
    kind, n = payload[:1], payload[1]
    stream = payload[2:2 + n].decode()
    m = payload[2 + n]
    content_type = payload[3 + n:3 + n + m].decode("ascii", "replace")
    data = payload[3 + n + m:]
    if kind == b"A":
        return Record(seq, stream, at, rows=pa.ipc.open_stream(data).read_all())
    return Record(seq, stream, at, body=data, content_type=content_type)


class EventLog:
    """Append-only, checksummed, synchronous. Thread-safe: appends and resets take a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        created = not path.exists()
        self._fd = os.open(path, _FLAGS, 0o600)
        if created:
            _sync_dir(path.parent)  # (the file's name must survive a power cut too)
        self._size = 0
        self._next = 1
        self._ends: list[tuple[int, int]] = []  # (seq, end offset) of records in the file
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
                magic, seq, micros, length, crc = _HEADER.unpack_from(data, end)
                start = end + _HEADER.size
                payload = data[start:start + length]
                if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
                    break
                if seq > applied:
                    at = _EPOCH + timedelta(microseconds=micros)
                    records.append(_decode(seq, at, payload))
                last = max(last, seq)
                end = start + length
                self._ends.append((seq, end))
            if end != len(data):
                os.ftruncate(self._fd, end)
            self._size, self._next = end, last + 1
            return records

    def append(self, payloads: list[bytes], at: datetime) -> list[int]:
        """Write payloads (see :func:`rows_payload`, :func:`body_payload`) as records stamped
        ``at``, durably and in one write; their sequence numbers. On an error nothing of them
        stays in the file (or, if even that fails, the log refuses further appends: the
        caller takes the transactional way instead)."""
        micros = (at - _EPOCH) // timedelta(microseconds=1)
        with self._lock:
            if self.broken:
                raise OSError(self.broken)
            first = self._next
            parts = []
            for payload in payloads:
                parts += [_HEADER.pack(_MAGIC, self._next, micros, len(payload),
                                       zlib.crc32(payload)), payload]
                self._next += 1
            data = b"".join(parts)
            try:
                written = os.write(self._fd, data)
                if written != len(data):
                    raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            except OSError:
                self._next = first
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError as exc:
                    self.broken = f"{self.path} could not be cut back after a failed write: {exc}"
                raise
            self._size += len(data)
            self._ends.append((self._next - 1, self._size))
            return list(range(first, self._next))

    def last_seq(self) -> int:
        with self._lock:
            return self._next - 1

    def reset(self, applied: int) -> bool:
        """Records up to ``applied`` are in DuckDB: empty the file if that is all of them, or
        cut them from its head once it passes 64 MB. The rest is copied to a new file that
        replaces it (copied unlocked, but for what was appended meanwhile, so appends hardly
        wait; a crash leaves one file or the other). True if the file shrank."""
        with self._lock:
            if self._size == 0:
                return False
            if self._next - 1 == applied:
                os.ftruncate(self._fd, 0)
                self._size, self._ends = 0, []
                return True
            cut = 0
            while self._ends and self._ends[0][0] <= applied:
                cut = self._ends.pop(0)[1]
            if cut:
                self._ends.insert(0, (applied, cut))  # (the cut point, kept for next time)
            if self._size < _COMPACT_AT or not cut:
                return False
            upto = self._size
        fresh = self.path.with_name(self.path.name + ".new")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        swapped = False
        try:
            _write_all(fd, os.pread(self._fd, upto - cut, cut))  # (only reset swaps _fd)
            with self._lock:
                _write_all(fd, os.pread(self._fd, self._size - upto, upto))
                os.fsync(fd)
                new_fd = os.open(fresh, _FLAGS)  # (the same file once renamed)
                try:
                    os.replace(fresh, self.path)
                except OSError:
                    os.close(new_fd)
                    raise
                os.close(self._fd)
                self._fd, swapped = new_fd, True
                self._size -= cut
                self._ends = [(seq, end - cut) for seq, end in self._ends if end > cut]
                try:
                    _sync_dir(self.path.parent)
                except OSError as exc:  # the rename may not survive a crash: answer nothing more
                    self.broken = f"{self.path} was replaced but not synced: {exc}"
            return True
        finally:
            os.close(fd)
            if not swapped:
                with contextlib.suppress(OSError):
                    os.unlink(fresh)


def set_aside(path: Path, records: list[Record]) -> None:
    """Keep records that could not be applied in ``path`` (same format as the log), durably."""
    data = b"".join(_HEADER.pack(_MAGIC, r.seq, (r.at - _EPOCH) // timedelta(microseconds=1),
                                 len(p), zlib.crc32(p)) + p
                    for r in records for p in [payload_of(r)])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


