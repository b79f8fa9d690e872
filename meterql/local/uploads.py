"""CSV uploads into ``local.uploads.<name>``.

DuckDB's CSV reader sniffs the dialect (delimiter, quoting, header) and the column types (with
exact decimals, never floats), or reads with an explicit schema, or with the existing table's
types when appending. Rows that do not fit are reported with their line and reason; by default
nothing is loaded then (all or nothing), or, with ``keep_good``, the good rows are. A file
already loaded into a table (same bytes) is recognised and not loaded twice.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from meterql.errors import DataError, InvalidSourceError, ParameterError
from meterql.local.store import LocalStore
from meterql.sql_text import is_name, quote_ident, quote_literal, sql_type

Mode = Literal["append", "replace", "upsert"]
MODES = ("append", "replace", "upsert")
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
    if not is_name(table):
        raise InvalidSourceError(f"'{table}' is not a valid table name",
                                 hint="use a lowercase identifier: letters, digits and _")
    if mode not in MODES:
        raise ParameterError(f"unknown mode '{mode}'", hint="use append, replace or upsert")
    if mode == "upsert" and not key:
        raise ParameterError("upsert needs the key column(s)", hint="pass --key COLUMN")
    digest = hashlib.sha256(data).hexdigest()
    target = f"local.uploads.{quote_ident(table)}"
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
                cols = ", ".join(quote_ident(k) for k in key)
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
                    cols = ", ".join(quote_ident(k) for k in key or [])
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
    """Read the file into a temporary table of ``cur``; returns its name and the rows that did
    not fit.

    The file is read by a DuckDB of its own: the engine's DuckDB, which runs users' SQL, has no
    file access at all (see Workspace), and this one never sees a user's SQL. The rows cross
    over as Arrow, into a table with exactly the types the reader chose."""
    tag = uuid.uuid4().hex[:8]
    staged = f"upload_{tag}"
    options = ["store_rejects = true"]
    if types:
        cols = ", ".join(f"{quote_literal(c)}: {quote_literal(sql_type(t))}"
                         for c, t in types.items())
        options.append(f"header = true, columns = {{{cols}}}")
    else:
        options.append("auto_type_candidates = ["
                       + ", ".join(quote_literal(t) for t in _CANDIDATES) + "]")
    reader = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                "autoload_known_extensions": False})
    try:
        try:
            relation = reader.sql(f"SELECT * FROM read_csv($path, {', '.join(options)})",
                                  params={"path": str(path)})
            columns = list(zip(relation.columns, relation.types, strict=True))
            rows = relation.to_arrow_table()
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0].replace(str(path), "the file")
            raise DataError(f"{origin} cannot be read as CSV: {reason}",
                            hint="check the file's delimiter, quoting and header") from None
        rejected = reader.execute("SELECT line, column_name, error_message FROM reject_errors "
                                  "ORDER BY line").fetchall()
    finally:
        reader.close()
    ddl = ", ".join(f"{quote_ident(name)} {sql_type(str(typ))}" for name, typ in columns)
    cur.execute(f"CREATE TEMP TABLE {staged} ({ddl})")
    cur.register(f"{staged}_rows", rows)
    try:
        cur.execute(f"INSERT INTO {staged} SELECT * FROM {staged}_rows")
    finally:
        cur.unregister(f"{staged}_rows")
    return staged, [{"line": line, "column": column,
                     "reason": message.splitlines()[0].replace(str(path), "the file")}
                    for line, column, message in rejected]
