"""What every connector provides: introspection, Arrow streams, cancellation, a connection pool;
and ``connector_for``, which makes the connector a source's kind names.

Connectors do I/O only: they never parse SQL. They hand out Arrow conformed to the types the
catalog promised (``conform``) and translate driver errors into meterql's at this one boundary.
"""

from __future__ import annotations

import contextlib
import importlib
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import pyarrow as pa

from meterql.catalog.model import ColumnStats, IndexInfo, Source, Table, TableStats
from meterql.catalog.uri import file_exists
from meterql.connectors.arrow import conform_reader
from meterql.connectors.introspection import ColumnRow, build_tables
from meterql.dialects import DIALECTS, UNCONSTRAINED_DECIMAL, dialect_for
from meterql.errors import MeterqlError, QueryCancelledError, SourceUnavailableError

Conn = TypeVar("Conn")

#: Default per-statement time limit at the source (milliseconds); a source option overrides it.
DEFAULT_STATEMENT_TIMEOUT_MS = 300_000
#: Idle connections kept per source.
POOL_SIZE = 4


class ConnectionPool(Generic[Conn]):
    """A small pool: connections are reused across queries, never reopened per query."""

    def __init__(
        self, open_connection: Callable[[], Conn], close_connection: Callable[[Conn], None]
    ):
        self._open = open_connection
        self._close = close_connection
        self._idle: queue.LifoQueue[Conn] = queue.LifoQueue(maxsize=POOL_SIZE)
        self.opened = 0

    @contextlib.contextmanager
    def connection(self) -> Iterator[Conn]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._open()
            self.opened += 1
        healthy = False
        try:
            yield conn
            healthy = True
        finally:
            if healthy:
                try:
                    self._idle.put_nowait(conn)
                except queue.Full:
                    self._close(conn)
            else:
                # After an error the session state is unknown: drop it rather than reuse it.
                with contextlib.suppress(Exception):
                    self._close(conn)

    def close(self) -> None:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):
                self._close(conn)


class CancelHandle:
    """Lets another thread stop a running statement. ``cancel`` is safe to call at any time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancel: Callable[[], None] | None = None
        self.cancelled = False

    def bind(self, cancel: Callable[[], None] | None) -> None:
        with self._lock:
            self._cancel = cancel
            run_now = self.cancelled and cancel is not None
        if run_now and cancel is not None:
            with contextlib.suppress(Exception):
                cancel()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            action = self._cancel
        if action is not None:
            with contextlib.suppress(Exception):
                action()


@contextlib.contextmanager
def bound_cursor(cur: Any, cancel: CancelHandle, interrupt: Callable[[], None]) -> Iterator[None]:
    """While one statement runs on ``cur`` and is read, ``cancel`` calls ``interrupt``; the
    cursor is closed after (a failure to close it is not the statement's)."""
    try:
        cancel.bind(interrupt)
        yield
    finally:
        cancel.bind(None)
        with contextlib.suppress(Exception):
            cur.close()


def require_file(source: Source, path: str, what: str) -> None:
    """Raise when a file source's file (a ``what`` file) is gone; it was there when the source
    was added, so this is the source being unavailable, not a wrong definition."""
    if not file_exists(path):
        raise SourceUnavailableError(
            f"source '{source.name}': {what} file {path} does not exist",
            source=source.name,
            hint="check the path in the source URI",
        )


class Connector(ABC):
    """I/O with one source."""

    #: A statement whose one value says what the source is.
    version_sql: ClassVar[str]

    def __init__(self, source: Source) -> None:
        self.source = source

    def introspect(self) -> list[Table]:
        """Every table and view with its columns and types (DuckDB types via the dialect)."""
        return build_tables(self.source.name, self._column_rows(), self.column_type)

    def statistics(self, tables: Sequence[Table]) -> list[TableStats]:
        """The source's statistics of ``tables`` (as :meth:`introspect` returned them): rows,
        per-column statistics where the source keeps them, and indexes."""
        from meterql.connectors.statistics import table_statistics

        return table_statistics(tables, self._column_statistics(tables), self._indexes(tables))

    def _column_statistics(self, tables: Sequence[Table]) -> dict[str, dict[str, ColumnStats]]:
        """Per table full name, per lower-case column: what the source knows of its values."""
        return {}

    def _indexes(self, tables: Sequence[Table]) -> dict[str, list[IndexInfo]]:
        """Per table full name: its indexes."""
        return {}

    @abstractmethod
    def _column_rows(self) -> Iterable[ColumnRow]:
        """One row per column of every table and view meterql may read, in column order."""

    def column_type(self, source_type: str) -> str:
        """The DuckDB type that carries a column of this source type exactly."""
        return dialect_for(self.source.kind).map_type(source_type)

    def server_version(self) -> str:
        """Connect and ask the source what it is (``meterql source test``)."""
        with self.stream(self.version_sql) as reader:
            return str(reader.read_all().column(0)[0])

    @abstractmethod
    def _stream(
        self, sql: str, params: Sequence[Any], cancel: CancelHandle, schema: pa.Schema | None
    ) -> contextlib.AbstractContextManager[pa.RecordBatchReader]:
        """Run ``sql`` with bound ``params`` and stream the raw Arrow result; ``schema`` is what
        its rows are then conformed to (a driver that infers types from values may need it)."""

    @abstractmethod
    def translate_error(self, exc: Exception) -> MeterqlError:
        """The meterql error for a driver error (secrets removed)."""

    @property
    def unconstrained_decimal(self) -> tuple[int, int]:
        """Precision and scale for decimals the source leaves open (option ``numeric_scale``)."""
        scale = self.source.options.get("numeric_scale")
        return (38, int(scale)) if scale is not None else UNCONSTRAINED_DECIMAL

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Statements this thread runs inside see one consistent state of the source (a sync
        run reads all tables of a source in one snapshot). File sources do not change while
        meterql reads them in one run, so the default does nothing."""
        yield

    def close(self) -> None:  # noqa: B027 - optional for connectors without a pool
        """Release pooled connections."""

    @contextlib.contextmanager
    def stream(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        schema: pa.Schema | None = None,
        cancel: CancelHandle | None = None,
    ) -> Iterator[pa.RecordBatchReader]:
        """Run a statement and yield its result as Arrow, conformed to ``schema`` when given.

        Driver errors raised while running or reading come out as meterql errors.
        """
        handle = cancel or CancelHandle()
        try:
            with self._stream(sql, params, handle, schema) as raw:
                yield conform_reader(raw, schema, self.source.name, self.unconstrained_decimal)
        except MeterqlError:
            raise
        except Exception as exc:  # drivers raise their own trees; translate them here only
            if handle.cancelled:
                raise QueryCancelledError(
                    f"query on source '{self.source.name}' was cancelled", source=self.source.name
                ) from exc
            raise self.translate_error(exc) from exc


def connector_for(source: Source) -> Connector:
    """A new connector for a source, of the class its kind's dialect names (``module:Class``).

    The module, and with it the driver, is imported here on first use, not when meterql is.
    """
    dialect = DIALECTS.get(source.kind)
    if dialect is None:
        raise ValueError(f"no connector for kind {source.kind!r}")  # kinds are validated on add
    module, _, name = dialect.connector.partition(":")
    connector: type[Connector] = getattr(importlib.import_module(module), name)
    return connector(source)
