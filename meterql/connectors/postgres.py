"""PostgreSQL over ADBC: read-only sessions with a statement timeout, pooled, Arrow out."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pyarrow as pa

from meterql.catalog.model import ColumnStats, IndexInfo, Source, Table
from meterql.catalog.uri import parse_uri, redact_text, resolve_password, with_password
from meterql.connectors.adbc import AdbcConnector, cursor_stream, driver_message
from meterql.connectors.base import DEFAULT_STATEMENT_TIMEOUT_MS, CancelHandle
from meterql.connectors.introspection import ColumnRow
from meterql.errors import (
    MeterqlError,
    SourceAuthError,
    SourceQueryError,
    SourceUnavailableError,
)

_INTROSPECT = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind AS relkind,
       a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS source_type,
       NOT a.attnotnull AS nullable,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS reltuples,
       (SELECT k.position FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
        WHERE k.attnum = a.attnum) AS key_position
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON a.attrelid = c.oid
JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname, a.attnum
"""
_COLUMN_STATS = """
SELECT DISTINCT ON (s.schemaname, s.tablename, s.attname)
       s.schemaname::text AS schema, s.tablename::text AS table_name,
       s.attname::text AS column_name, s.null_frac::float8 AS null_frac,
       s.n_distinct::float8 AS n_distinct, s.most_common_vals::text AS common,
       s.most_common_freqs::text AS freqs, s.histogram_bounds::text AS histogram,
       s.correlation::float8 AS correlation,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::float8 END AS reltuples
FROM pg_catalog.pg_stats s
JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
  AND s.schemaname NOT LIKE 'pg\\_%'
ORDER BY s.schemaname, s.tablename, s.attname, s.inherited DESC
"""
#: Valid B-tree indexes without a predicate (those a lookup of any row can use); key columns
#: in order, NULL for an expression.
_INDEXES = """
SELECT n.nspname::text AS schema, c.relname::text AS table_name,
       ic.relname::text AS index_name, i.indisunique AS is_unique,
       ARRAY(SELECT a.attname::text
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE k.position <= i.indnkeyatts ORDER BY k.position) AS columns
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE i.indisvalid AND i.indpred IS NULL AND am.amname = 'btree'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname, ic.relname
"""
_KINDS = {"r": "table", "p": "table", "f": "table", "v": "view", "m": "view"}


def _in_transaction(params: Sequence[Any]) -> list[Any]:
    """Parameters for a statement inside :meth:`PostgresConnector.snapshot`'s transaction.

    ADBC's PostgreSQL driver binds a time-zone-aware timestamp between its own ``BEGIN`` and
    ``COMMIT`` (it sets the session's zone around the bind), which commits the snapshot's
    transaction: the statements after it would read a later state of the database. The session's
    zone is UTC (``TimeZone=UTC`` on connect), so the same instant bound as a UTC timestamp
    without zone compares the same and leaves the transaction alone.
    """
    return [p.astimezone(UTC).replace(tzinfo=None)
            if isinstance(p, datetime) and p.tzinfo is not None else p for p in params]


class PostgresConnector(AdbcConnector):
    """A PostgreSQL source. Sessions are read-only, autocommit, with ``statement_timeout``."""

    version_sql = "SELECT version()"

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self._pinned = threading.local()  # the connection of this thread's snapshot, if any

    # -- connections -------------------------------------------------------------------------
    def _driver_uri(self) -> tuple[str, list[str]]:
        parsed = parse_uri(self.source.uri)
        password = resolve_password(parsed.password, self.source.name)
        uri = with_password(self.source.uri, password)
        timeout = int(self.source.options.get("statement_timeout_ms", DEFAULT_STATEMENT_TIMEOUT_MS))
        parts = urlsplit(uri)
        query = dict(parse_qsl(parts.query))
        # libpq applies these at session start: the session refuses writes, stops runaway
        # statements, and reads timestamps in UTC as the engine does.
        options = (
            f"-c default_transaction_read_only=on -c statement_timeout={timeout} -c TimeZone=UTC"
        )
        query["options"] = (query.get("options", "") + " " + options).strip()
        query.setdefault("application_name", "meterql")
        query.setdefault("connect_timeout", "10")
        uri = urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
        return uri, [p for p in (password, parsed.password) if p]

    def _connect(self) -> Any:
        import adbc_driver_postgresql.dbapi as pg

        uri, _ = self._driver_uri()
        try:
            return pg.connect(uri, autocommit=True)
        except Exception as exc:
            raise self.translate_error(exc) from exc

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """One REPEATABLE READ, read-only transaction on one connection for this thread: every
        statement inside sees the same committed state of the database."""
        with self._pool.connection() as conn:
            cur = conn.cursor()
            cur.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
            try:
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            except Exception as exc:
                raise self.translate_error(exc) from exc
            self._pinned.conn = conn
            try:
                yield
                cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    cur.execute("ROLLBACK")
                raise
            finally:
                self._pinned.conn = None
                cur.close()

    # -- queries ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _stream(
        self, sql: str, params: Sequence[Any], cancel: CancelHandle, schema: pa.Schema | None
    ) -> Iterator[pa.RecordBatchReader]:
        pinned = getattr(self._pinned, "conn", None)
        if pinned is not None:  # inside snapshot(): no retry, the snapshot is that connection's
            with cursor_stream(pinned, sql, _in_transaction(params), cancel) as raw:
                yield raw
            return
        # A pooled connection may have been closed by the server (restart, idle timeout,
        # pg_terminate_backend); that shows only when it is used. Nothing has been read yet
        # then, so the statement is sent once more on a new connection (the pool drops the
        # closed one).
        for attempt in range(2):
            started = False
            try:
                with super()._stream(sql, params, cancel, schema) as raw:
                    started = True
                    yield raw
                return
            except Exception as exc:
                # (a connection that cannot be opened is a meterql error already: not retried)
                if (started or attempt or cancel.cancelled or isinstance(exc, MeterqlError)
                        or not _connection_lost(exc)):
                    raise

    def _column_rows(self) -> Iterator[ColumnRow]:
        with self.stream(_INTROSPECT) as reader:
            rows = reader.read_all().to_pylist()
        for row in rows:
            # reltuples is -1 (NULL here) until the table is first vacuumed or analyzed.
            estimate = row["reltuples"] if row["relkind"] in ("r", "p", "m") else None
            yield ColumnRow(row["schema"], row["name"], _KINDS.get(row["relkind"], "table"),
                            row["column_name"], row["source_type"], bool(row["nullable"]),
                            row["key_position"], estimate)

    def _column_statistics(self, tables: Sequence[Table]) -> dict[str, dict[str, ColumnStats]]:
        from meterql.connectors.statistics import pg_column_stats

        with self.stream(_COLUMN_STATS) as reader:
            return pg_column_stats(reader.read_all().to_pylist(), tables, self.source.name)

    def _indexes(self, tables: Sequence[Table]) -> dict[str, list[IndexInfo]]:
        from meterql.connectors.statistics import key_prefix

        by_name = {t.full_name: t for t in tables}
        out: dict[str, list[IndexInfo]] = {}
        with self.stream(_INDEXES) as reader:
            for row in reader.read_all().to_pylist():
                name = f"{self.source.name}.{row['schema']}.{row['table_name']}"
                columns = key_prefix(row["columns"], by_name.get(name))
                if columns:
                    out.setdefault(name, []).append(
                        IndexInfo(row["index_name"], columns, bool(row["is_unique"])))
        return out

    def column_type(self, source_type: str) -> str:
        if source_type == "numeric":  # without a precision: the option numeric_scale applies
            return "DECIMAL({}, {})".format(*self.unconstrained_decimal)
        return super().column_type(source_type)

    # -- errors --------------------------------------------------------------------------------
    def translate_error(self, exc: Exception) -> MeterqlError:
        try:
            _, secrets = self._driver_uri()
        except MeterqlError as err:
            return err
        text = redact_text(driver_message(exc), secrets)
        text = text.replace("[libpq] ", "").strip()
        name = self.source.name
        sqlstate = getattr(exc, "sqlstate", None)
        lowered = text.lower()
        if "password authentication failed" in lowered or sqlstate == "28P01" or (
            "authentication" in lowered and "failed" in lowered
        ):
            return SourceAuthError(
                f"source '{name}' refused the credentials: {_first_line(text)}",
                source=name,
                hint="check the user and password in the source URI (or its env: variable)",
            )
        if "failed to connect" in lowered or "could not connect" in lowered or (
            "connection refused" in lowered
        ) or "timeout expired" in lowered or "does not exist" in lowered and "database" in lowered:
            return SourceUnavailableError(
                f"cannot connect to source '{name}': {_first_line(text)}",
                source=name,
                hint="check that the server is running and the host, port and database are right; "
                "other sources keep working",
            )
        if _connection_lost(exc):
            return SourceUnavailableError(
                f"lost the connection to source '{name}': {_first_line(text)}",
                source=name,
                hint="the server closed the connection; try again",
            )
        if sqlstate == "57014" and "statement timeout" in lowered:
            return SourceQueryError(
                f"source '{name}' stopped the query at its statement timeout",
                source=name,
                hint="raise the source option statement_timeout_ms or narrow the query",
            )
        return SourceQueryError(
            f"source '{name}' failed the query: {_first_line(text)}", source=name
        )


_LOST = ("server closed the connection", "no connection to the server", "terminating connection",
         "connection to server was lost", "could not send data to server", "broken pipe")


def _connection_lost(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _LOST)


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    primary = lines[0] if lines else text
    return primary.removeprefix("Failed to execute query").strip()
