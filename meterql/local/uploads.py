"""CSV uploads into ``local.uploads.<name>``.

DuckDB's CSV reader sniffs the dialect (delimiter, quoting, header) and the column types (with
exact decimals, never floats), or reads with an explicit schema, or with the existing table's
types when appending. Rows that do not fit are reported with their line and reason; by default
nothing is loaded then (all or nothing), or, with ``keep_good``, the good rows are. A file
already loaded into a table (same bytes) is recognised and not loaded twice.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from meterql.errors import DataError, InvalidSourceError, ParameterError
from meterql.local.store import LocalStore, quote

Mode = Literal["append", "replace", "upsert"]
MODES = ("append", "replace", "upsert")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Types the sniffer may choose, narrowest first: decimals stay exact.
_CANDIDATES = ["BOOLEAN", "BIGINT", "DECIMAL(38,9)", "DATE", "TIMESTAMP", "TIMESTAMPTZ",
               "VARCHAR"]
_SHOWN = 20  # rejected rows listed in an error


@dataclass
class UploadReport:
    table: str
    mode: str
    status: str  # loaded | unchanged
    rows: int = 0  # rows loaded
    rejected: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"table": self.table, "mode": self.mode, "status": self.status,
                "rows": self.rows, "rejected": self.rejected, "note": self.note}


def load_csv(store: LocalStore, data: bytes, table: str, *, mode: Mode = "append",
             key: list[str] | None = None, keep_good: bool = False,
             columns: dict[str, str] | None = None, origin: str = "upload") -> UploadReport:
    if not _NAME.match(table):
        raise InvalidSourceError(f"'{table}' is not a valid table name",
                                 hint="use a lowercase identifier: letters, digits and _")
    if mode not in MODES:
        raise ParameterError(f"unknown mode '{mode}'", hint="use append, replace or upsert")
    if mode == "upsert" and not key:
        raise ParameterError("upsert needs the key column(s)", hint="pass --key COLUMN")
    digest = hashlib.sha256(data).hexdigest()
    target = f"local.uploads.{quote(table)}"
    full = f"local.uploads.{table}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.csv"
        path.write_bytes(data)
        with store.write() as cur:
            seen = cur.execute("SELECT uploaded_at FROM local.__meterql__.uploads WHERE "
                               "table_name = ? AND file_hash = ? ORDER BY uploaded_at DESC "
                               "LIMIT 1", [full, digest]).fetchall()
            if seen and mode != "replace":
                return UploadReport(full, mode, "unchanged", note=(
                    f"this file was loaded into {full} at {seen[0][0].isoformat()}; "
                    "nothing was added"))
            existing = dict(cur.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = "
                "'local' AND schema_name = 'uploads' AND table_name = ? ORDER BY column_index",
                [table]).fetchall())
            types = columns or (existing if existing and mode != "replace" else None)
            staged, rejected = _read(cur, path, types, origin)
            if rejected and not keep_good:
                shown = rejected[:_SHOWN]
                more = f" (and {len(rejected) - _SHOWN} more)" if len(rejected) > _SHOWN else ""
                raise DataError(
                    f"{origin}: {len(rejected)} rows do not fit{more}; nothing was loaded: "
                    + "; ".join(f"line {r['line']}: {r['reason']}" for r in shown[:3]),
                    table=full, rows=shown,
                    hint="fix those rows, or load the good ones with --keep-good")
            names = [r[0] for r in cur.execute(f"DESCRIBE {staged}").fetchall()]
            for column in key or []:
                if column not in names:
                    raise ParameterError(f"key column '{column}' is not in the file",
                                         hint="the file's columns: " + ", ".join(names))
            if key:
                cols = ", ".join(quote(k) for k in key)
                dupes = cur.execute(f"SELECT {cols}, count(*) FROM {staged} GROUP BY ALL "
                                    "HAVING count(*) > 1 LIMIT 3").fetchall()
                if dupes:
                    raise DataError(f"{origin}: the key ({', '.join(key)}) repeats in the "
                                    f"file, e.g. {dupes[0][:-1]}", table=full,
                                    hint="one row per key")
            loaded = cur.execute(f"SELECT count(*) FROM {staged}").fetchall()[0][0]
            if mode == "replace" or not existing:
                cur.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {staged}")
            else:
                missing = [n for n in names if n not in existing]
                if missing:
                    raise DataError(f"{origin}: columns {', '.join(missing)} are not in {full}",
                                    table=full, hint="use --mode replace to change its columns")
                if mode == "upsert":
                    cols = ", ".join(quote(k) for k in key or [])
                    cur.execute(f"DELETE FROM {target} WHERE ({cols}) IN "
                                f"(SELECT ({cols}) FROM {staged})")
                cur.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {staged}")
            cur.execute(f"DROP TABLE {staged}")
            cur.execute("INSERT INTO local.__meterql__.uploads (table_name, file_hash, mode, "
                        "rows) VALUES (?, ?, ?, ?)", [full, digest, mode, loaded])
            store.touch(cur, f"uploads.{table}")
    store.refresh_catalog()
    return UploadReport(full, mode, "loaded", loaded, rejected)


def _read(cur: duckdb.DuckDBPyConnection, path: Path, types: dict[str, str] | None,
          origin: str) -> tuple[str, list[dict[str, Any]]]:
    """Read the file into a temporary table; returns its name and the rows that did not fit."""
    tag = uuid.uuid4().hex[:8]
    staged, rejects, scans = f"upload_{tag}", f"rejects_{tag}", f"scans_{tag}"
    options = [f"store_rejects = true, rejects_table = '{rejects}', rejects_scan = '{scans}'"]
    if types:
        cols = ", ".join(f"'{c.replace(chr(39), chr(39) * 2)}': '{t}'" for c, t in types.items())
        options.append(f"header = true, columns = {{{cols}}}")
    else:
        options.append("auto_type_candidates = [" + ", ".join(f"'{t}'" for t in _CANDIDATES)
                       + "]")
    try:
        cur.execute(f"CREATE TEMP TABLE {staged} AS SELECT * FROM read_csv(?, "
                    + ", ".join(options) + ")", [str(path)])
    except duckdb.Error as exc:
        raise DataError(f"{origin} cannot be read as CSV: {str(exc).splitlines()[0]}",
                        hint="check the file's delimiter, quoting and header") from exc
    rows = cur.execute(f"SELECT line, column_name, error_message FROM {rejects} "
                       "ORDER BY line").fetchall()
    cur.execute(f"DROP TABLE {rejects}")
    cur.execute(f"DROP TABLE {scans}")
    return staged, [{"line": line, "column": column, "reason": message.splitlines()[0]}
                    for line, column, message in rows]
