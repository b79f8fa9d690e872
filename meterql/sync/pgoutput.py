r"""Decode PostgreSQL's ``pgoutput`` logical replication messages (protocol version 1).

The messages are what ``pg_logical_slot_peek_binary_changes(slot, ..., 'proto_version', '1',
'publication_names', ...)`` returns, one per row. Their layout is PostgreSQL's documented
"Logical Replication Message Formats"; values arrive in PostgreSQL's text output form.

>>> import struct
>>> decoder = Decoder()
>>> decoder.decode(b"R" + struct.pack(">I", 7) + b"public\x00usage\x00d" + struct.pack(">H", 2)
...                + b"\x01id\x00" + struct.pack(">Ii", 23, -1)
...                + b"\x00qty\x00" + struct.pack(">Ii", 1700, -1))
>>> change = decoder.decode(b"I" + struct.pack(">I", 7) + b"N" + struct.pack(">H", 2)
...                         + b"t" + struct.pack(">I", 1) + b"7" + b"n")
>>> change.op, change.relation.name, change.new, change.relation.key
('insert', 'usage', ('7', None), ('id',))
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from meterql.errors import SourceQueryError


class _Unchanged:
    """A value the message left out because it did not change (a TOASTed column)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()

Value = str | None | _Unchanged


@dataclass(frozen=True)
class Relation:
    relid: int
    schema: str
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]  # the replica identity's columns


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int  # the position to confirm once this transaction is applied


@dataclass(frozen=True)
class Change:
    op: Literal["insert", "update", "delete"]
    relation: Relation
    new: tuple[Value, ...] | None  # insert, update
    old: tuple[Value, ...] | None  # delete; update when the key changed (or REPLICA IDENTITY FULL)


@dataclass(frozen=True)
class Truncate:
    relations: tuple[Relation, ...]


Message = Begin | Commit | Change | Truncate | None


class Decoder:
    """Turns messages into events; remembers the relations announced so far."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}

    def decode(self, data: bytes) -> Message:
        kind = data[:1]
        if kind == b"B":
            final_lsn, _ts, xid = struct.unpack_from(">QqI", data, 1)
            return Begin(final_lsn, xid)
        if kind == b"C":
            _flags, commit_lsn, end_lsn, _ts = struct.unpack_from(">BQQq", data, 1)
            return Commit(commit_lsn, end_lsn)
        if kind == b"R":
            self._relation(data)
            return None
        if kind == b"I":
            relation, pos = self._relation_of(data)
            if data[pos:pos + 1] != b"N":
                raise _malformed("insert", data[pos:pos + 1])
            new, _ = _tuple(data, pos + 1)
            return Change("insert", relation, new, None)
        if kind == b"U":
            relation, pos = self._relation_of(data)
            old = None
            if data[pos:pos + 1] in (b"K", b"O"):
                old, pos = _tuple(data, pos + 1)
            if data[pos:pos + 1] != b"N":
                raise _malformed("update", data[pos:pos + 1])
            new, _ = _tuple(data, pos + 1)
            return Change("update", relation, new, old)
        if kind == b"D":
            relation, pos = self._relation_of(data)
            if data[pos:pos + 1] not in (b"K", b"O"):
                raise _malformed("delete", data[pos:pos + 1])
            old, _ = _tuple(data, pos + 1)
            return Change("delete", relation, None, old)
        if kind == b"T":
            (count,) = struct.unpack_from(">I", data, 1)
            relids = struct.unpack_from(f">{count}I", data, 6)
            return Truncate(tuple(self._known(relid) for relid in relids))
        if kind in (b"Y", b"O", b"M"):  # types, origins, logical messages: nothing to apply
            return None
        raise _malformed("message", kind)

    def _relation(self, data: bytes) -> None:
        (relid,) = struct.unpack_from(">I", data, 1)
        schema, pos = _string(data, 5)
        name, pos = _string(data, pos)
        pos += 1  # replica identity setting
        (count,) = struct.unpack_from(">H", data, pos)
        pos += 2
        columns, key = [], []
        for _ in range(count):
            flags = data[pos]
            column, pos = _string(data, pos + 1)
            pos += 8  # type oid, typmod
            columns.append(column)
            if flags & 1:
                key.append(column)
        self.relations[relid] = Relation(relid, schema or "pg_catalog", name, tuple(columns),
                                         tuple(key))

    def _relation_of(self, data: bytes) -> tuple[Relation, int]:
        (relid,) = struct.unpack_from(">I", data, 1)
        return self._known(relid), 5

    def _known(self, relid: int) -> Relation:
        try:
            return self.relations[relid]
        except KeyError:
            raise SourceQueryError(
                f"logical replication stream used relation {relid} before describing it",
                hint="the replication slot must use the pgoutput plugin",
            ) from None


def _string(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode(), end + 1


def _tuple(data: bytes, pos: int) -> tuple[tuple[Value, ...], int]:
    (count,) = struct.unpack_from(">H", data, pos)
    pos += 2
    values: list[Value] = []
    for _ in range(count):
        kind = data[pos:pos + 1]
        pos += 1
        if kind == b"n":
            values.append(None)
        elif kind == b"u":
            values.append(UNCHANGED)
        elif kind == b"t":
            (length,) = struct.unpack_from(">I", data, pos)
            pos += 4
            values.append(data[pos:pos + length].decode())
            pos += length
        else:
            raise _malformed("column value", kind)
    return tuple(values), pos


def parse_lsn(text: str) -> int:
    """``'16/B374D848'`` -> its 64-bit position."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _malformed(what: str, kind: bytes) -> SourceQueryError:
    return SourceQueryError(
        f"unexpected {what} in the logical replication stream: {kind!r}",
        hint="the replication slot must use the pgoutput plugin with proto_version 1",
    )
