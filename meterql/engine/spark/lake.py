"""Parquet snapshots of the tables DuckDB holds (replicas, ``local``), for the spark engine.

Each table has a folder ``<root>/<source>/<schema>/<table>/`` holding one folder per snapshot
and ``manifest.json`` naming the current one. A snapshot is named by the table's watermark, so
a query reads the rows of exactly one sync (or one state of a local table), and a snapshot is
written once per watermark: the first query after a sync writes it, later ones read it.

A replica's snapshot reads its rows and its sync state in one DuckDB transaction, so the
watermark it is filed under is the one of the rows it holds. A local table's is filed under
a fingerprint of its rows (count and summed row hashes), read in the same transaction as the
rows, so an edit in place is never read from an older snapshot.
Snapshots are written to a temporary folder and renamed into place, then the manifest is
replaced: a crash leaves the previous snapshot current. The two newest snapshots are kept
(a query that started on the older one still finds its files).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from meterql.catalog.catalog import SYNC_STATE_SCHEMA
from meterql.errors import QueryError
from meterql.file_modes import private_file, private_folder
from meterql.sql_text import quote_ident

#: Rows per Parquet row group (and per file part): a Spark task's worth.
ROWS_PER_FILE = 1_000_000
#: Snapshots kept per table.
KEPT = 2


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


class Lake:
    """The Parquet snapshots of one workspace's DuckDB tables, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        #: the snapshot each table was last read at (its manifest is read once)
        self._known: dict[str, Snapshot] = {}

    def _lock(self, table: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(table, threading.Lock())

    def folder(self, table: str) -> Path:
        return self.root.joinpath(*table.split(".", 2))

    def snapshot(self, duck: duckdb.DuckDBPyConnection, table: str) -> Snapshot:
        """The current snapshot of ``table`` (``source.schema.table``), written first when its
        state has none yet."""
        with self._lock(table):
            cur = duck.cursor()
            try:
                cur.begin()  # the rows and the state they are filed under: one transaction
                key = self._key(cur, table)
                current = self._known.get(table) or self._current(table)
                if current is None or current.key != key:
                    current = self._write(cur, table, key)
                self._known[table] = current
                return current
            finally:
                cur.close()

    @staticmethod
    def _key(cur: duckdb.DuckDBPyConnection, table: str) -> str:
        source, schema, name = table.split(".", 2)
        if source == "local":
            # A fingerprint of the rows: no change (an ingest, an amend, a void, a manual
            # edit) is ever read from an older snapshot.
            qualified = ".".join(quote_ident(p) for p in (source, schema, name))
            rows = cur.execute(f"SELECT count(*), sum(hash(t)) FROM {qualified} AS t").fetchall()
        else:
            rows = cur.execute(
                f"SELECT strategy, synced_at, rows, cursor_column, cursor_value "
                f"FROM {quote_ident(source)}.{SYNC_STATE_SCHEMA}.sync_state "
                f"WHERE schema_name = ? AND table_name = ?", [schema, name]).fetchall()
        state = [str(v) for v in rows[0]] if rows else None
        blob = json.dumps([table, state], sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def _current(self, table: str) -> Snapshot | None:
        manifest = self.folder(table) / "manifest.json"
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return None
        files = [str(self.folder(table) / data["snapshot"] / f) for f in data["files"]]
        if not all(os.path.exists(f) for f in files):
            return None
        schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(data["schema"])))
        return Snapshot(table, data["key"], files, schema, data["rows"])

    def _write(self, cur: duckdb.DuckDBPyConnection, table: str, key: str) -> Snapshot:
        folder = private_folder(self.folder(table))
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{key}"
        work = folder / f".{name}.writing"
        shutil.rmtree(work, ignore_errors=True)
        private_folder(work)
        source, schema_name, table_name = table.split(".", 2)
        qualified = ".".join(quote_ident(p) for p in (source, schema_name, table_name))
        try:
            reader = cur.sql(f"SELECT * FROM {qualified}").to_arrow_reader(ROWS_PER_FILE)
        except duckdb.Error as exc:
            raise QueryError(f"{table} cannot be read for the spark engine: {exc}",
                             table=table) from exc
        files, rows, part, writer_rows = [], 0, 0, 0
        writer: pq.ParquetWriter | None = None
        try:
            for batch in reader:
                if writer is None or writer_rows >= ROWS_PER_FILE:
                    if writer is not None:
                        writer.close()
                    files.append(f"part-{part:05d}.parquet")
                    path = work / files[-1]
                    writer = pq.ParquetWriter(str(path), reader.schema, compression="zstd",
                                              use_dictionary=_dictionary_columns(reader.schema))
                    private_file(path)
                    part, writer_rows = part + 1, 0
                writer.write_batch(batch)
                writer_rows += batch.num_rows
                rows += batch.num_rows
        finally:
            if writer is not None:
                writer.close()
        os.replace(work, folder / name)
        manifest = {"key": key, "snapshot": name, "files": files, "rows": rows,
                    "schema": reader.schema.serialize().to_pybytes().hex(),
                    "written_at": time.time()}
        tmp = folder / ".manifest.json.writing"
        tmp.write_text(json.dumps(manifest))
        private_file(tmp)
        os.replace(tmp, folder / "manifest.json")
        self._prune(folder, name)
        return Snapshot(table, key, [str(folder / name / f) for f in files], reader.schema, rows)

    @staticmethod
    def _prune(folder: Path, newest: str) -> None:
        snapshots = sorted(p.name for p in folder.iterdir()
                           if p.is_dir() and not p.name.startswith("."))
        for old in [n for n in snapshots if n != newest][:-(KEPT - 1) or None]:
            shutil.rmtree(folder / old, ignore_errors=True)
