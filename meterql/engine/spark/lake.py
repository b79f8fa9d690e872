"""Parquet snapshots of the tables DuckDB holds (replicas, ``local``), for the spark engine.

Each table has a folder ``<root>/<source>/<schema>/<table>/``. A snapshot is one manifest
(``manifest.json`` names the current one; ``snapshots/`` keeps the last KEPT) listing the
Parquet files of the table's partitions; the files live under ``parts/``, one folder per
partition and content. A snapshot is named by the table's watermark, so a query reads the
rows of exactly one sync (or one state of a local table), and a snapshot is written once per
watermark: by the sync on the spark engine (Engine.export_snapshot), else by the first query
after the change; later ones read it.

Partitions. A table with a declared time column (the first of a replica's clustering key and
append cursor that is a DATE, TIMESTAMP or TIMESTAMPTZ; an event stream's timestamp field) is
split by its UTC day, or month when days would hold too few rows (PARTITION_ROWS), or not at
all when months would. Each partition is fingerprinted (its row count and summed row
hashes, in DuckDB); a new snapshot writes only the partitions whose fingerprint changed and
lists the others' files as they are. An append sync or an ingest rewrites the days it touched,
an amend or a void the day it edited; nothing is read from an older state, whatever changed.
A table with no such column is one partition, written whole when it changed. The key a
snapshot is filed under holds the table's columns and types too: a renamed or retyped column
is a new snapshot even where the values hash alike.

Consistency. A snapshot reads its rows, their fingerprints and the watermark it is filed under
in one DuckDB transaction. Files are written to temporary folders and renamed into place, then
the manifest is replaced: a crash leaves the previous snapshot current and whole. A snapshot
is kept while it is one of the KEPT newest or was replaced less than KEEP_REPLACED_S ago (a
query that started on it still finds its files); files no kept snapshot lists are removed.
Folder names are the table's name parts with every character but letters, digits, ``_`` and
``-`` escaped (``%2E``), so no name reaches outside its folder or into another table's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from meterql.catalog.catalog import SYNC_STATE_SCHEMA
from meterql.errors import QueryError
from meterql.file_modes import private_file, private_folder
from meterql.sql_text import quote_ident

#: Rows per Parquet file part (a Spark task's worth) and per row group at most.
ROWS_PER_FILE = 1_000_000
#: Snapshots kept per table, and how long a replaced one is kept at least (a query reading it
#: runs at most the longest time limit).
KEPT = 2
KEEP_REPLACED_S = 3600.0
#: The fewest rows a partition should hold on average: days when they do, else months, else
#: the table whole (a grain already chosen is kept within a factor of 4 of it, so a table
#: near the line is not rewritten back and forth).
PARTITION_ROWS = 250_000
#: Partitions written per read of the table (each has a file open while it is read).
OPEN_WRITERS = 32
#: Manifest format.
VERSION = 2

_DAY_US = 86_400_000_000
#: The day number of rows whose time column is NULL or infinite.
_NO_DAY = -(2**62)
_NO_DAY_SQL = str(_NO_DAY)  # (the day of every row of a table with no time column)
_EPOCH = dt.date(1970, 1, 1)
#: A snapshot folder of the earlier layout (removed once a snapshot of this one is written)
_EARLIER_LAYOUT = re.compile(r"\d{8}T\d{6}-[0-9a-f]{20}")
_GRAINS = ("day", "month", "whole")


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns written dictionary-encoded: text and binary ones (names, codes, keys that
    repeat). Numbers and times are written plain: a dictionary on an instant column made
    Spark's filter on it about 4x slower (its Parquet dictionary filter reads every page's
    dictionary) and the files bigger."""
    return [f.name for f in schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
            or pa.types.is_dictionary(f.type)]


@dataclass(frozen=True)
class Snapshot:
    """One table's rows as Parquet files, under the watermark they were read at."""

    table: str
    key: str
    files: list[str]
    schema: pa.Schema
    rows: int
    #: the snapshot's name (its sequence number and key): a name is never reused
    name: str = ""
    #: the partition column and grain ("day", "month" or "whole"); None: not partitioned
    column: str | None = None
    grain: str = "whole"
    partitions: int = 1
    #: partitions this call wrote (the others' files were the previous snapshot's)
    written: int = 0

    def describe(self) -> str:
        """How the snapshot is laid out, for a query's fragment notes."""
        text = f"Parquet snapshot {self.key}"
        if self.column is not None:
            text += f", by {self.grain} of {self.column}: {self.partitions} partitions"
        if self.written:
            text += f", {self.written} written now"
        return text


@dataclass(frozen=True)
class _Part:
    """One partition's fingerprint: its rows, their summed hashes and its day numbers."""

    label: str
    rows: int
    hashed: int
    days: tuple[int, ...]

    def ident(self, schema_hex: str) -> str:
        blob = json.dumps([self.label, self.rows, str(self.hashed), schema_hex]).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _day_number_sql(column: str, type_: str) -> str | None:
    """The SQL of a row's UTC day number (days since 1970-01-01, the same in every session
    time zone; _NO_DAY for NULL and infinities) from its time column, or None when the
    column has no day."""
    col = quote_ident(column)
    if type_ == "DATE":
        day = f"CASE WHEN isfinite({col}) THEN {col} - DATE '1970-01-01' END"
    elif type_ in ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS",
                   "TIMESTAMP_NS"):
        us = f"epoch_us({col})"  # (integers: a double's floor was a day off far from 1970)
        day = (f"CASE WHEN {us} < 0 THEN ({us} - {_DAY_US - 1}) // {_DAY_US} "
               f"ELSE {us} // {_DAY_US} END")
    else:
        return None
    return f"coalesce({day}, {_NO_DAY})"


def _label(day: int, grain: str) -> str:
    """The partition a day number falls in: ``2026-03-01``, ``2026-03``, ``all``; ``none`` for
    rows with no day and ``other`` for days outside years 1-9999."""
    if grain == "whole":
        return "all"
    if day == _NO_DAY:
        return "none"
    try:
        date = _EPOCH + dt.timedelta(days=day)
    except OverflowError:
        return "other"
    return date.isoformat() if grain == "day" else date.isoformat()[:7]


def _grain(days: list[tuple[int, int, int]], previous: str | None) -> str:
    """The grain for a table whose rows per day number are ``days`` (day, rows, hash sum)."""
    total = sum(n for _, n, _ in days)
    counts = {g: len({_label(d, g) for d, _, _ in days}) or 1 for g in _GRAINS}
    per = {g: total / counts[g] for g in _GRAINS}
    finer = {"month": "day", "whole": "month"}
    if previous in _GRAINS and (previous == "whole" or per[previous] >= PARTITION_ROWS / 4) \
            and (previous == "day" or per[finer[previous]] < 4 * PARTITION_ROWS):
        return previous
    return next((g for g in ("day", "month") if per[g] >= PARTITION_ROWS), "whole")


def _parts(days: list[tuple[int, int, int]], grain: str) -> dict[str, _Part]:
    grouped: dict[str, list[tuple[int, int, int]]] = {}
    for row in days:
        grouped.setdefault(_label(row[0], grain), []).append(row)
    return {label: _Part(label, sum(n for _, n, _ in rows), sum(h for _, _, h in rows),
                         tuple(sorted(d for d, _, _ in rows)))
            for label, rows in grouped.items()}


class Lake:
    """The Parquet snapshots of one workspace's DuckDB tables, under ``root``.

    ``time_columns(table)``: the columns a table may be partitioned by, in order (the first
    that is a date or a timestamp is; with none, the table is written whole)."""

    def __init__(self, root: Path,
                 time_columns: Callable[[str], Sequence[str]] = lambda table: ()) -> None:
        self.root = root
        self._time_columns = time_columns
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        #: the snapshot each table was last read at (its manifest is read once)
        self._known: dict[str, Snapshot] = {}

    def _lock(self, table: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(table, threading.Lock())

    def folder(self, table: str) -> Path:
        return self.root.joinpath(*(_component(p) for p in table.split(".", 2)))

    def _made_folder(self, table: str) -> Path:
        """The table's folder, made with every level below the root private."""
        path = self.root
        for part in table.split(".", 2):
            path = private_folder(path / _component(part))
        return path

    def snapshot(self, duck: duckdb.DuckDBPyConnection, table: str,
                 progress: Callable[[int], None] | None = None) -> Snapshot:
        """The current snapshot of ``table`` (``source.schema.table``), written first when its
        state has none yet; ``progress(rows)`` is told the rows written as they are."""
        declared = tuple(self._time_columns(table))
        with self._lock(table):
            cur = duck.cursor()
            try:
                cur.begin()  # the rows and the state they are filed under: one transaction
                shape = _shape(cur, table)
                column, day_sql = _time_column(shape, declared)
                days = None
                if table.startswith("local."):
                    # A fingerprint of the rows: no change (an ingest, an amend, a void, a
                    # manual edit) is ever read from an older snapshot.
                    days = self._days(cur, table, day_sql, shape)
                    key = self._key(table, [days, shape])
                else:
                    key = self._key(table, [self._sync_state(cur, table), shape])
                current = self._known.get(table) or self._current(table)
                if current is None or current.key != key:
                    if days is None:
                        days = self._days(cur, table, day_sql, shape)
                    current = self._write(cur, table, key, column, day_sql, days, progress)
                self._known[table] = replace(current, written=0)
                return current
            finally:
                cur.close()

    @staticmethod
    def _sync_state(cur: duckdb.DuckDBPyConnection, table: str) -> list[str] | None:
        source, schema, name = table.split(".", 2)
        rows = cur.execute(
            f"SELECT strategy, synced_at, rows, cursor_column, cursor_value "
            f"FROM {quote_ident(source)}.{SYNC_STATE_SCHEMA}.sync_state "
            f"WHERE schema_name = ? AND table_name = ?", [schema, name]).fetchall()
        return [str(v) for v in rows[0]] if rows else None

    @staticmethod
    def _key(table: str, state: object) -> str:
        blob = json.dumps([table, state], sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    @staticmethod
    def _days(cur: duckdb.DuckDBPyConnection, table: str, day_sql: str,
              shape: list[tuple[str, str]]) -> list[tuple[int, int, int]]:
        """(day number, rows, summed row hashes) per day of the table; one row (_NO_DAY)
        when it has no time column."""
        # Every column hashed by position (no alias a column of the table could shadow), and
        # the sign of each float (DuckDB hashes -0.0 as 0.0).
        signs = "".join(f", signbit({quote_ident(c)})" for c, t in shape
                        if t in ("FLOAT", "DOUBLE"))
        try:
            rows = cur.execute(f"SELECT {day_sql}, count(*), sum(hash(*COLUMNS(*){signs})) "
                               f"FROM {_qualified(table)} GROUP BY 1 ORDER BY 1").fetchall()
        except duckdb.Error as exc:
            raise _unreadable(table, exc) from exc
        return [(int(d), int(n), int(h)) for d, n, h in rows]

    def _current(self, table: str) -> Snapshot | None:
        data = self._manifest(self.folder(table) / "manifest.json")
        if data is None:
            return None
        files = [str(self.folder(table) / f) for p in data["parts"].values() for f in p["files"]]
        if not all(os.path.exists(f) for f in files):
            return None
        schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(data["schema"])))
        return Snapshot(table, data["key"], files, schema, data["rows"], data["snapshot"],
                        data["column"], data["grain"], len(data["parts"]))

    @staticmethod
    def _manifest(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("version") == VERSION else None

    def _write(self, cur: duckdb.DuckDBPyConnection, table: str, key: str,
               column: str | None, day_sql: str, days: list[tuple[int, int, int]],
               progress: Callable[[int], None] | None = None) -> Snapshot:
        """A new snapshot of ``table``: the partitions whose fingerprint changed are written
        (or found whole on disk, from a snapshot kept), the others listed as the previous
        snapshot has them. ``column``: the time column partitioning it, if any."""
        folder = self._made_folder(table)
        snapshots = private_folder(folder / "snapshots")
        previous = self._manifest(folder / "manifest.json")
        grain = "whole" if column is None else _grain(
            days, previous["grain"] if previous and previous["column"] == column else None)
        schema = cur.sql(f"SELECT * FROM {_qualified(table)} LIMIT 0").arrow().schema
        schema_hex = schema.serialize().to_pybytes().hex()
        parts = _parts(days, grain) if days else {}
        kept = previous["parts"] if previous and previous["schema"] == schema_hex else {}
        listed: dict[str, dict[str, Any]] = {}
        todo: dict[str, str] = {}
        for label, part in sorted(parts.items()):
            ident = part.ident(schema_hex)
            old = kept.get(label)
            if old is not None and old["id"] == ident and all(
                    (folder / f).exists() for f in old["files"]):
                listed[label] = old
            elif (found := _whole_part(folder / "parts", label, ident, part.rows)) is not None:
                listed[label] = found
            else:
                todo[label] = ident
        if todo:
            listed.update(self._write_parts(
                cur, table, folder, day_sql, len(todo) < len(parts), grain,
                {label: parts[label] for label in todo}, todo, schema, progress))
        sequence = 1 + max([previous["sequence"] if previous else 0]
                           + [int(p.name.split("-", 1)[0]) for p in snapshots.iterdir()
                              if p.suffix == ".json" and p.name.split("-", 1)[0].isdigit()])
        name = f"{sequence:010d}-{key}"  # (in the order written; a name is never reused)
        manifest = {"version": VERSION, "key": key, "snapshot": name, "sequence": sequence,
                    "column": column,
                    "grain": grain, "rows": sum(p["rows"] for p in listed.values()),
                    "schema": schema_hex, "written_at": time.time(),
                    "parts": dict(sorted(listed.items()))}
        _write_json(snapshots / f"{name}.json", manifest)
        _write_json(folder / "manifest.json", manifest)
        self._prune(folder, snapshots)
        files = [str(folder / f) for p in manifest["parts"].values() for f in p["files"]]
        return Snapshot(table, key, files, schema, manifest["rows"], name, column, grain,
                        len(listed), len(todo))

    @staticmethod
    def _write_parts(cur: duckdb.DuckDBPyConnection, table: str, folder: Path,
                     day_sql: str, some_days: bool, grain: str, parts: dict[str, _Part],
                     idents: dict[str, str], schema: pa.Schema,
                     progress: Callable[[int], None] | None) -> dict[str, dict[str, Any]]:
        """Write ``parts``, each to its own folder under ``parts/``; their manifest entries.
        At most OPEN_WRITERS partitions are written per read of the table (a table not in
        time order, such as one clustered by customer, would otherwise give every partition
        a small file per batch); ``some_days``: a read takes only its partitions' days (with
        one read for all of a table's partitions, every row)."""
        store = private_folder(folder / "parts")
        labels = sorted(parts)
        passes = [labels[i:i + OPEN_WRITERS] for i in range(0, len(labels), OPEN_WRITERS)]
        entries: dict[str, dict[str, Any]] = {}
        done = 0
        for group in passes:
            wanted = sorted({d for label in group for d in parts[label].days})
            sql = f"SELECT *, {day_sql} AS __meterql_day FROM {_qualified(table)}"
            params: list[object] = []
            if some_days or len(passes) > 1:
                sql += f" WHERE list_contains(?::BIGINT[], {day_sql})"
                params.append(wanted)
            try:
                reader = cur.sql(sql, params=params).to_arrow_reader(ROWS_PER_FILE)
            except duckdb.Error as exc:
                raise _unreadable(table, exc) from exc
            got = pa.schema(list(reader.schema)[:-1])
            if not got.equals(schema):
                raise RuntimeError(f"{table} was read as {got}, not as {schema}")
            label_of = {d: _label(d, grain) for d in wanted}
            writers = _PartWriters(store, schema, {label: idents[label] for label in group})
            try:
                for batch in reader:
                    writers.add(batch, label_of)
                    done += batch.num_rows
                    if progress is not None:
                        progress(done)
                entries.update(writers.finish())
            except BaseException:
                writers.abandon()
                raise
        for label, entry in entries.items():
            if entry["rows"] != parts[label].rows:  # (read in the fingerprints' transaction)
                raise RuntimeError(f"{table}: partition {label} wrote {entry['rows']} rows "
                                   f"of {parts[label].rows}")
        return entries

    @staticmethod
    def _prune(folder: Path, snapshots: Path) -> None:
        """Remove the snapshots that are neither among the KEPT newest nor replaced less than
        KEEP_REPLACED_S ago, then the part folders no remaining snapshot lists (and the
        folders of the earlier layout, one folder per snapshot)."""
        names = sorted(p.name for p in snapshots.iterdir() if p.suffix == ".json")
        manifests = {n: Lake._manifest(snapshots / n) or {"parts": {}} for n in names}
        now = time.time()
        # a snapshot was replaced when the next one was written
        replaced_at = {n: manifests[after].get("written_at", 0.0)
                       for n, after in zip(names, names[1:], strict=False)}
        keep = [n for i, n in enumerate(names)
                if i >= len(names) - KEPT or now - replaced_at[n] < KEEP_REPLACED_S]
        for old in set(names) - set(keep):
            (snapshots / old).unlink(missing_ok=True)
        listed = {f.split("/")[1] for n in keep for p in manifests[n]["parts"].values()
                  for f in p["files"]}
        store = folder / "parts"
        stale = now - KEEP_REPLACED_S
        for path in store.iterdir() if store.exists() else ():
            if path.name.startswith("."):  # another writer's work, unless it is long dead
                if path.stat().st_mtime < stale:
                    shutil.rmtree(path, ignore_errors=True)
            elif path.name not in listed:
                shutil.rmtree(path, ignore_errors=True)
        for path in folder.iterdir():
            if path.is_dir() and _EARLIER_LAYOUT.fullmatch(path.name):
                shutil.rmtree(path, ignore_errors=True)


def _whole_part(store: Path, label: str, ident: str, rows: int) -> dict[str, Any] | None:
    """The manifest entry of a partition already on disk with this content (a snapshot kept
    holds it: the table went back to a state it had), if its files are whole."""
    found = store / f"{_component(label)}.{ident}"
    files = _parquet_rows(found)
    if files is None or sum(files.values()) != rows:
        return None
    return {"id": ident, "rows": rows, "files": [f"parts/{found.name}/{f}" for f in files]}


def _parquet_rows(folder: Path) -> dict[str, int] | None:
    """The rows of each Parquet file of ``folder`` by its footer; None when the folder or a
    file cannot be read."""
    try:
        names = sorted(p.name for p in folder.iterdir() if p.suffix == ".parquet")
        return {n: pq.ParquetFile(folder / n).metadata.num_rows for n in names}
    except (OSError, pa.ArrowException):
        return None


def _shape(cur: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """The table's columns and their DuckDB types, in order."""
    try:
        rel = cur.sql(f"SELECT * FROM {_qualified(table)}")
    except duckdb.Error as exc:
        raise _unreadable(table, exc) from exc
    return [(c, str(t)) for c, t in zip(rel.columns, rel.types, strict=True)]


def _unreadable(table: str, exc: duckdb.Error) -> QueryError:
    return QueryError(f"{table} cannot be read for the spark engine: {exc}", table=table)


def _time_column(shape: list[tuple[str, str]],
                 declared: Sequence[str]) -> tuple[str | None, str]:
    """The first of the ``declared`` columns that is a date or a timestamp, as the table spells
    it, and the SQL of its day number; (None, _NO_DAY_SQL) when there is none."""
    types = {c.lower(): (c, t) for c, t in shape}
    for wanted in declared:
        name, type_ = types.get(wanted.lower(), (wanted, ""))
        day = _day_number_sql(name, type_)
        if day is not None:
            return name, day
    return None, _NO_DAY_SQL


def _component(name: str) -> str:
    """A table name part as a folder name: letters, digits, ``_`` and ``-`` as they are, every
    other character (``.``, ``/``, ``%``...) as ``%XX`` of its UTF-8 bytes.

    >>> _component("events"), _component(".."), _component("a/b")
    ('events', '%2E%2E', 'a%2Fb')
    """
    return "".join(c if (c.isascii() and c.isalnum()) or c in "_-"
                   else "".join(f"%{b:02X}" for b in c.encode()) for c in name)


def _qualified(table: str) -> str:
    return ".".join(quote_ident(p) for p in table.split(".", 2))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.writing")
    tmp.write_text(json.dumps(data))
    private_file(tmp)
    os.replace(tmp, path)


class _PartWriters:
    """The Parquet files of a few partitions (at most OPEN_WRITERS) written from one stream of
    batches in any order: each partition's rows are gathered and written a row group at a
    time to its open file, a new file every ROWS_PER_FILE rows; past 4 x ROWS_PER_FILE rows
    gathered in all, the fullest partition's are written (smaller row groups, the same
    files)."""

    def __init__(self, store: Path, schema: pa.Schema, idents: dict[str, str]) -> None:
        self.store, self.schema, self.idents = store, schema, idents
        self.work = {label: store / f".{_component(label)}.{ident}.writing"
                     for label, ident in idents.items()}
        for work in self.work.values():  # (left by a crash: its files are not ours)
            shutil.rmtree(work, ignore_errors=True)
            private_folder(work)
        self.files: dict[str, list[str]] = {label: [] for label in idents}
        self.rows: dict[str, int] = dict.fromkeys(idents, 0)
        self.pending: dict[str, list[pa.RecordBatch]] = {label: [] for label in idents}
        self.pending_rows: dict[str, int] = dict.fromkeys(idents, 0)
        self.held = 0  # rows gathered and not yet written, in all
        self.open: dict[str, tuple[pq.ParquetWriter, int]] = {}

    def add(self, batch: pa.RecordBatch, label_of: dict[int, str]) -> None:
        """Gather a batch's rows (its last column their day number) by partition."""
        days = batch.column(batch.num_columns - 1)
        rows = batch.select(range(batch.num_columns - 1))
        unique = pc.unique(days)
        labels = sorted({label_of[d] for d in unique.to_pylist()})
        if len(labels) == 1:
            self._gather(labels[0], rows)
            return
        index = {label: i for i, label in enumerate(labels)}
        per_day = pa.array([index[label_of[d]] for d in unique.to_pylist()], pa.int32())
        group = pc.take(per_day, pc.index_in(days, value_set=unique))
        order = pc.sort_indices(group)
        rows, group = rows.take(order), group.take(order)
        counts = pc.value_counts(group)  # (in order of appearance: sorted)
        start = 0
        for value, count in zip(counts.field("values").to_pylist(),
                                counts.field("counts").to_pylist(), strict=True):
            self._gather(labels[value], rows.slice(start, count))
            start += count

    def _gather(self, label: str, rows: pa.RecordBatch) -> None:
        self.pending[label].append(rows)
        self.pending_rows[label] += rows.num_rows
        self.held += rows.num_rows
        if self.pending_rows[label] >= ROWS_PER_FILE:
            self._flush(label)
        elif self.held > 4 * ROWS_PER_FILE:  # memory: the fullest partition is written
            self._flush(max(self.pending_rows, key=self.pending_rows.__getitem__))

    def _flush(self, label: str) -> None:
        if not self.pending_rows[label]:
            return
        writer, in_file = self.open.pop(label, (None, 0))
        if writer is not None and in_file >= ROWS_PER_FILE:
            writer.close()
            writer = None
        if writer is None:
            name = f"part-{len(self.files[label]):05d}.parquet"
            path = self.work[label] / name
            writer = pq.ParquetWriter(str(path), self.schema, compression="zstd",
                                      use_dictionary=_dictionary_columns(self.schema))
            private_file(path)
            self.files[label].append(name)
            in_file = 0
        table = pa.Table.from_batches(self.pending[label], self.schema)
        writer.write_table(table, row_group_size=ROWS_PER_FILE)
        self.open[label] = (writer, in_file + table.num_rows)
        self.rows[label] += table.num_rows
        self.held -= table.num_rows
        self.pending[label], self.pending_rows[label] = [], 0

    def finish(self) -> dict[str, dict[str, Any]]:
        """Close the files, check them (their footers hold the rows written) and move each
        partition's folder into place; their manifest entries."""
        for label in self.idents:
            self._flush(label)
        for writer, _ in self.open.values():
            writer.close()
        self.open.clear()
        entries = {}
        for label, ident in self.idents.items():
            written = _parquet_rows(self.work[label])
            if written is None or sorted(written) != self.files[label] \
                    or sum(written.values()) != self.rows[label]:
                raise RuntimeError(f"partition {label}: its files do not hold the "
                                   f"{self.rows[label]} rows written")
            final = self.store / f"{_component(label)}.{ident}"
            if final.exists() and _parquet_rows(final) != written:
                shutil.rmtree(final)  # (an interrupted removal's remains: not whole)
            try:
                os.replace(self.work[label], final)
            except OSError:  # the same content, whole, already there: keep it
                shutil.rmtree(self.work[label], ignore_errors=True)
                if not final.exists():
                    raise
            entries[label] = {"id": ident, "rows": self.rows[label],
                              "files": [f"parts/{final.name}/{f}" for f in self.files[label]]}
        return entries

    def abandon(self) -> None:
        for writer, _ in self.open.values():
            writer.close()
        for work in self.work.values():
            shutil.rmtree(work, ignore_errors=True)
