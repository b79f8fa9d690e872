"""Every DuckDB that can run a user's SQL is locked down here, the same way.

A user's SQL may read catalog tables and nothing else. The binder (engine/bind.py) refuses
every other name, and DuckDB itself refuses the rest, so a mistake in one does not open the
server's files:

- ``enable_external_access = false``: no file is read or written (no ``read_csv``, ``glob``,
  ``COPY``, ``'/path/file.csv'`` or ``"/path/file.parquet"`` replacement scans, no ``ATTACH``),
  except the workspace files named when the database is opened (``allowed_paths`` /
  ``allowed_directories``): ``local.duckdb`` and the ``replicas/`` folder;
- no extension is installed or loaded on demand (``autoinstall_known_extensions`` and
  ``autoload_known_extensions`` off; community and unsigned extensions off);
- no Python variable is scanned as a table (``python_enable_replacements = false``);
- ``lock_configuration = true`` last, so no statement can undo any of this.

Connections are the embedded engine's (the residual, the typing stand-ins, replicas and the
local store: one in-memory database, see Engine) and the read-only ones of DuckDB-file
sources (connectors/duckdb_file.py). CSV files are read by a separate DuckDB that never sees a
user's SQL (local/uploads.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from meterql.sql_text import quote_literal

#: DuckDB errors that blame the query or its parameters (a cast, a type, a range), not the
#: database: the caller's mistake (HTTP 400), wherever DuckDB runs the query.
QUERY_FAULTS = (duckdb.ConversionException, duckdb.BinderException, duckdb.InvalidInputException,
                duckdb.OutOfRangeException, duckdb.InvalidTypeException,
                duckdb.TypeMismatchException, duckdb.NotImplementedException)

#: The name a DuckDB-file source's file is attached under.
FILE_ALIAS = "source"

#: Set when a database is opened (and, for an existing file, right after).
_AT_OPEN = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "python_enable_replacements": False,
}


def open_embedded(*, files: Sequence[Path] = (), folders: Sequence[Path] = (),
                  settings: dict[str, str] | None = None,
                  time_zone: str = "UTC") -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB in ``time_zone`` (UTC unless told; a name checked by the caller)
    that may open only ``files`` and what is inside ``folders`` (for ATTACH), with ``settings``
    applied before the configuration is locked.

    >>> con = open_embedded()
    >>> con.execute("SELECT current_setting('enable_external_access')").fetchone()
    (False,)
    """
    con = duckdb.connect(":memory:", config=dict(_AT_OPEN))
    try:
        lock_down(con, files=files, folders=folders, settings=settings, time_zone=time_zone)
    except BaseException:
        con.close()
        raise
    return con


def open_file_read_only(path: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB file, read-only, in a locked-down in-memory DuckDB (a DuckDB-file source),
    attached as :data:`FILE_ALIAS`; a cursor reads it with :func:`file_cursor`.

    The file is attached rather than opened directly: DuckDB shares one instance per file
    within a process, so opening it directly would lock down any connection the application
    itself holds to the same file, or fail beside it.
    """
    con = open_embedded(files=[Path(path)])
    try:
        con.execute(f"ATTACH {quote_literal(path)} AS {FILE_ALIAS} (READ_ONLY)")
    except BaseException:
        con.close()
        raise
    return con


def file_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of :func:`open_file_read_only`'s connection whose default database is the
    file (each cursor is a connection of its own, with its own default)."""
    cur = con.cursor()
    cur.execute(f"USE {FILE_ALIAS}")
    return cur


def lock_down(con: duckdb.DuckDBPyConnection, *, files: Sequence[Path] = (),
              folders: Sequence[Path] = (), settings: dict[str, str] | None = None,
              time_zone: str = "UTC") -> None:
    """Turn file access off (but for ``files`` and ``folders``) and lock the configuration."""
    # GLOBAL: statements run on cursors, which a plain SET would miss.
    con.execute(f"SET GLOBAL TimeZone = {quote_literal(time_zone)}")
    for name, value in (settings or {}).items():
        con.execute(f"SET GLOBAL {_setting(name)} = {quote_literal(value)}")
    if files:
        # a DuckDB file comes with its write-ahead log, and the log with a checkpoint file
        paths = [str(f.with_name(f.name + suffix))
                 for f in files for suffix in ("", ".wal", ".wal.checkpoint")]
        con.execute("SET allowed_paths = $paths", {"paths": paths})
    if folders:
        con.execute("SET allowed_directories = $dirs",
                    {"dirs": [str(f).rstrip("/") + "/" for f in folders]})
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


#: Settings a caller may give (a closed list: the name is part of the statement's text).
_SETTINGS = frozenset({"checkpoint_threshold", "memory_limit", "temp_directory", "threads"})


def _setting(name: str) -> str:
    if name not in _SETTINGS:
        raise ValueError(f"unknown DuckDB setting {name!r}")
    return name
