"""CSV uploads into ``local.uploads.<name>``.

DuckDB's CSV reader sniffs the dialect (delimiter, quoting, header) and the column types (with
exact decimals, never floats), or reads with an explicit schema, or with the existing table's
types when appending. Rows that do not fit are reported with their line and reason; by default
nothing is loaded then (all or nothing), or, with ``keep_good``, the good rows are. A number
with more decimal places than its column keeps does not fit (it is not rounded unless
``round_decimals`` asks for it). An empty file is refused. A file already loaded into a table
(same bytes) is recognised and not loaded twice.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import duckdb
import pyarrow as pa

from meterql.errors import DataError, IngestError
from meterql.local.exact import exact_scale, text_check
from meterql.local.store import LocalStore
from meterql.sql_text import is_name, quote_ident, quote_literal, sql_type, sql_types
from meterql.wording import count

Mode = Literal["append", "replace", "upsert"]
MODES: tuple[Mode, ...] = get_args(Mode)
#: Types the sniffer may choose, narrowest first: decimals stay exact.
_CANDIDATES = ["BOOLEAN", "BIGINT", "DECIMAL(38,9)", "DATE", "TIMESTAMP", "TIMESTAMPTZ",
               "VARCHAR"]
_SHOWN = 20  # rejected rows listed in an error
_PROBE = "meterql_line_probe"  # an ENUM with no members (see _lines)


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
             columns: dict[str, str] | None = None, origin: str = "upload",
             round_decimals: bool = False) -> UploadReport:
    """Load CSV ``data`` into ``local.uploads.<table>`` (see the module's docstring).

    Example:
        >>> load_csv(store, b"plan,price\\nstarter,10.50\\n", "prices").rows  # doctest: +SKIP
        1

    Raises:
        DataError: the file is empty or cannot be read, or rows do not fit (each listed with
            its line, column, value and reason; a number with more decimal places than its
            column keeps is one, unless ``round_decimals``), and ``keep_good`` is not set.
    """
    if not is_name(table):
        raise IngestError(f"'{table}' is not a valid table name",
                                 hint="use a lowercase identifier: letters, digits and _")
    if mode not in MODES:
        raise IngestError(f"unknown mode '{mode}'", hint="use append, replace or upsert")
    if mode == "upsert" and not key:
        raise IngestError("upsert needs the key column(s)", hint="pass --key COLUMN")
    digest = hashlib.sha256(data).hexdigest()
    target = f"local.uploads.{quote_ident(table)}"
    full = f"local.uploads.{table}"
    if not data.removeprefix(b"\xef\xbb\xbf").strip():
        raise DataError(f"{origin} is empty: no header, no columns; nothing was loaded",
                        table=full, hint="send a CSV file with a header line")
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
            staged, rejected, roundable = _read(cur, path, types, origin, round_decimals)
            if rejected and not keep_good:
                shown = rejected[:_SHOWN]
                more = f" (and {len(rejected) - _SHOWN} more)" if len(rejected) > _SHOWN else ""
                raise DataError(
                    f"{origin}: {count(len(rejected), 'row')} "
                    f"{'does' if len(rejected) == 1 else 'do'} not fit{more}; nothing was loaded: "
                    + "; ".join(f"line {r['line']}: {r['reason']}" for r in shown[:3]),
                    table=full, rows=shown,
                    hint="fix those rows, " + ("round the numbers with --round (round=true), "
                                               if roundable else "")
                    + "or load the good ones with --keep-good")
            names = [r[0] for r in cur.execute(f"DESCRIBE {staged}").fetchall()]
            for column in key or []:
                if column not in names:
                    raise IngestError(f"key column '{column}' is not in the file",
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


def preview_csv(store: LocalStore, data: bytes, table: str, *, mode: Mode = "append",
                columns: dict[str, str] | None = None, round_decimals: bool = False,
                origin: str = "upload", shown: int = 20) -> dict[str, Any]:
    """What :func:`load_csv` would read from ``data`` into ``local.uploads.<table>``, without
    storing anything: the columns and their types (declared, the existing table's when
    appending, or sniffed, as the load would choose them), the first ``shown`` rows that fit,
    how many fit, and every row that does not (line, column, value, reason). The file is read
    by the same reader as the load (:func:`_parse`).

    Raises:
        DataError: the file is empty or cannot be read as CSV.
    """
    if not is_name(table):
        raise IngestError(f"'{table}' is not a valid table name",
                          hint="use a lowercase identifier: letters, digits and _")
    if mode not in MODES:
        raise IngestError(f"unknown mode '{mode}'", hint="use append, replace or upsert")
    full = f"local.uploads.{table}"
    if not data.removeprefix(b"\xef\xbb\xbf").strip():
        raise DataError(f"{origin} is empty: no header, no columns; nothing was loaded",
                        table=full, hint="send a CSV file with a header line")
    cur = store.read()
    try:
        existing = dict(cur.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = "
            "'local' AND schema_name = 'uploads' AND table_name = ? ORDER BY column_index",
            [table]).fetchall())
    finally:
        cur.close()
    types = columns or (existing if existing and mode != "replace" else None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.csv"
        path.write_bytes(data)
        chosen, rows, rejected, _ = _parse(path, types, origin, round_decimals)
    return {"table": full, "mode": mode, "exists": bool(existing), "columns": chosen,
            "rows": rows.slice(0, shown).to_pylist(), "good": rows.num_rows,
            "rejected": rejected}


def _read(cur: duckdb.DuckDBPyConnection, path: Path, types: dict[str, str] | None,
          origin: str, round_decimals: bool) -> tuple[str, list[dict[str, Any]], bool]:
    """Read the file (:func:`_parse`) into a temporary table of ``cur``; returns its name, the
    rows that did not fit, and whether rounding would take some of them."""
    staged = f"upload_{uuid.uuid4().hex[:8]}"
    chosen, rows, rejected, roundable = _parse(path, types, origin, round_decimals)
    ddl = ", ".join(f"{quote_ident(name)} {sql_type(typ)}" for name, typ in chosen.items())
    cur.execute(f"CREATE TEMP TABLE {staged} ({ddl})")
    cur.register(f"{staged}_rows", rows)
    try:
        cur.execute(f"INSERT INTO {staged} SELECT * FROM {staged}_rows")
    finally:
        cur.unregister(f"{staged}_rows")
    return staged, rejected, roundable


def _parse(path: Path, types: dict[str, str] | None, origin: str, round_decimals: bool
           ) -> tuple[dict[str, str], pa.Table, list[dict[str, Any]], bool]:
    """Read the file: its columns and types (``types``, or sniffed), the rows that fit (as
    Arrow), the rows that did not, and whether rounding would take some of them.

    The file is read by a DuckDB of its own: the engine's DuckDB, which runs users' SQL, has no
    file access at all (see Workspace), and this one never sees a user's SQL. The rows cross
    over as Arrow, into a table with exactly the types the reader chose.

    Integer and DECIMAL columns are read as text and cast here, with a check: DuckDB's reader
    casts by rounding (``1.005`` is ``1.01`` in a ``DECIMAL(18,2)``, ``2.5`` is ``3`` in a
    ``BIGINT``), and a billing table must not take a rounded amount unasked. A cell with more
    decimal places than its column keeps is rejected, or rounded with ``round_decimals`` (see
    :mod:`meterql.local.exact`). The check is SQL over whole columns (no Python per cell);
    the file is read a second time only when it rejects cells, to find their lines (see
    :func:`_lines`)."""
    reader = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False,
                                                "autoload_known_extensions": False})
    try:
        try:
            chosen = (sql_types(types, f"the {origin}", IngestError) if types
                      else _sniffed(reader, path))
            if any("\x00" in c for c in chosen):
                raise DataError(f"{origin}: a column name holds a NUL character; nothing was "
                                "loaded", hint="is it a CSV file? Its first line names the "
                                "columns")
            exact = [c for c, t in chosen.items() if exact_scale(t) is not None]
            as_text = dict.fromkeys(exact, "VARCHAR")
            # (the file's columns by position: a header can say anything, "rowid" too)
            slot = {c: f"c{i}" for i, c in enumerate(chosen)}
            reader.execute("CREATE TABLE raw (" + ", ".join(
                f"{quote_ident(slot[c])} {sql_type(t)}" for c, t in (chosen | as_text).items())
                + ")")
            reader.execute("INSERT INTO raw SELECT * FROM read_csv($path, "
                           f"{_options(chosen if types else None, as_text)})",
                           {"path": str(path)})
        except duckdb.Error as exc:
            raise DataError(f"{origin} cannot be read as CSV: {_reason(exc, path)}",
                            hint="check the file's delimiter, quoting and header") from None
        rejected = [{"line": line, "column": column, "value": None,
                     "reason": _reason(message, path)}
                    for line, column, message in reader.execute(
                        "SELECT line, column_name, error_message FROM reject_errors "
                        "ORDER BY line").fetchall()]
        # the cells refused (``roundable``: those that rounding would take); a WHERE is
        # evaluated before the SELECT list, so the reasons are worked out again for those only
        reader.execute("CREATE TABLE bad (k BIGINT, column_name VARCHAR, value VARCHAR, "
                       "reason VARCHAR, roundable BOOLEAN)")
        checks = {c: text_check(slot[c], chosen[c], round_decimals) for c in exact}
        for column, (_, reason) in checks.items():
            rounded = text_check(slot[column], chosen[column], True)[1]
            reader.execute(f"INSERT INTO bad SELECT rowid, $column, {quote_ident(slot[column])}, "
                           f"{reason}, "
                           f"{rounded} IS NULL FROM raw WHERE {reason} IS NOT NULL",
                           {"column": column})
        count, roundable = reader.execute("SELECT count(*), coalesce(bool_or(roundable), false) "
                                          "FROM bad").fetchall()[0]
        if count:
            rejected = sorted(rejected + _lines(reader, path, chosen if types else None,
                                                as_text, slot),
                              key=lambda r: (r["line"] is None, r["line"] or 0))
        cols = ", ".join(f"{checks[c][0] if c in checks else quote_ident(slot[c])} AS "
                         f"{quote_ident(c)}" for c in chosen)
        rows = reader.sql(f"SELECT {cols} FROM raw WHERE rowid NOT IN (SELECT k FROM bad) "
                          "ORDER BY rowid").to_arrow_table()
    finally:
        reader.close()
    return chosen, rows, rejected, roundable


def _sniffed(reader: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """The columns and types DuckDB's sniffer finds (binding the read samples the file)."""
    relation = reader.sql(f"SELECT * FROM read_csv($path, {_options(None, {})})",
                          params={"path": str(path)})
    return {name: sql_type(str(typ)) for name, typ in zip(relation.columns, relation.types,
                                                          strict=True)}


def _options(declared: dict[str, str] | None, override: dict[str, str]) -> str:
    """``read_csv``'s options: the declared columns, or the sniffer's type candidates; and
    the types that ``override`` gives some columns instead."""
    if declared:
        cols = ", ".join(f"{quote_literal(c)}: {quote_literal(override.get(c, t))}"
                         for c, t in declared.items())
        return f"store_rejects = true, header = true, columns = {{{cols}}}"
    options = ("store_rejects = true, auto_type_candidates = ["
               + ", ".join(quote_literal(t) for t in _CANDIDATES) + "]")
    if override:
        options += ", types = {" + ", ".join(f"{quote_literal(c)}: {quote_literal(t)}"
                                             for c, t in override.items()) + "}"
    return options


def _lines(reader: duckdb.DuckDBPyConnection, path: Path, declared: dict[str, str] | None,
           as_text: dict[str, str], slot: dict[str, str]) -> list[dict[str, Any]]:
    """The cells of table ``bad`` with their lines, as DuckDB's reader numbers them.

    DuckDB gives no line for a row it reads, only for a row it rejects. So the file is read
    again with the columns of the bad cells typed as an ENUM with no members, which every
    text fails to cast to: each of their non-empty cells is then rejected with its line. The
    n-th such line (less the rows the first read rejected) is the line of the n-th non-empty
    cell of that column. Should the two reads not line up, the cells are listed without a
    line rather than with a wrong one. (A rejected cell costs DuckDB about 5 microseconds
    here: a file of a million rows is read again in about 5 s, only when it has bad cells.)"""
    bad = [c for (c,) in reader.execute("SELECT DISTINCT column_name FROM bad").fetchall()]
    reader.execute(f"CREATE TYPE {_PROBE} AS ENUM ()")
    options = (_options(declared, as_text | dict.fromkeys(bad, _PROBE))
               + ", rejects_table = 'probe_errors', rejects_scan = 'probe_scans'")
    try:
        # (every column is read: with some left out, DuckDB names the wrong column in rejects)
        reader.execute(f"SELECT count(COLUMNS(*)) FROM read_csv($path, {options})",
                       {"path": str(path)}).fetchall()
    except duckdb.Error as exc:
        raise DataError(f"the file cannot be read again: {_reason(exc, path)}") from None
    out = []
    for column in bad:
        found = reader.execute(f"""
            WITH probe AS (
                SELECT line, row_number() OVER (ORDER BY line_byte_position) AS n
                FROM probe_errors WHERE error_type = 'CAST' AND column_name = $column
                  AND line_byte_position NOT IN (SELECT line_byte_position FROM reject_errors)),
            cells AS (SELECT rowid AS k, row_number() OVER (ORDER BY rowid) AS n
                      FROM raw WHERE {quote_ident(slot[column])} IS NOT NULL)
            SELECT CASE WHEN (SELECT count(*) FROM probe) = (SELECT count(*) FROM cells)
                        THEN probe.line END, bad.value, bad.reason
            FROM bad JOIN cells USING (k) LEFT JOIN probe USING (n)
            WHERE bad.column_name = $column ORDER BY bad.k""", {"column": column}).fetchall()
        out += [{"line": line, "column": column, "value": value, "reason": reason}
                for line, value, reason in found]
    return out


def _reason(error: duckdb.Error | str, path: Path) -> str:
    """The first line of a reader's message, naming the file as "the file" (a temporary path
    on the server says nothing to the sender and should not be shown to them)."""
    text = str(error).splitlines()[0] if str(error) else ""
    return text.replace(str(path), "the file").replace(str(path.parent), "the upload folder")
