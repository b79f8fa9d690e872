"""What the ADBC connectors share: a pool of driver connections, the cursor a statement runs
on, and the text of a driver error.

A subclass opens a connection (``_connect``, importing its driver there so the package imports
without it) and translates errors; it may wrap ``_stream`` to change the statement or its rows.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from meterql.catalog.model import Source
from meterql.connectors.base import CancelHandle, ConnectionPool, Connector, bound_cursor

#: The status ADBC puts before a driver's message (``INVALID_ARGUMENT: ...``).
_STATUS_PREFIXES = ("IO: ", "INVALID_STATE: ", "CANCELLED: ", "INVALID_ARGUMENT: ")


class AdbcConnector(Connector):
    """A source read through an ADBC driver, over a pool of autocommit connections."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self._pool: ConnectionPool[Any] = ConnectionPool(self._connect, lambda c: c.close())

    @abstractmethod
    def _connect(self) -> Any:
        """A new driver connection (a meterql error when it cannot be opened)."""

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def _stream(
        self, sql: str, params: Sequence[Any], cancel: CancelHandle, schema: pa.Schema | None
    ) -> Iterator[pa.RecordBatchReader]:
        with self._pool.connection() as conn, cursor_stream(conn, sql, params, cancel) as raw:
            yield raw


@contextlib.contextmanager
def cursor_stream(
    conn: Any, sql: str, params: Sequence[Any], cancel: CancelHandle
) -> Iterator[pa.RecordBatchReader]:
    """Run ``sql`` on a new cursor of ``conn`` and yield its Arrow result; ``cancel`` stops the
    statement while it runs or is read."""
    cur = conn.cursor()
    with bound_cursor(cur, cancel, cur.adbc_cancel):
        cur.execute(sql, parameters=tuple(params) if params else None)
        yield cur.fetch_record_batch()


def driver_message(exc: Exception) -> str:
    """A driver error's text without ADBC's status prefix.

    >>> driver_message(RuntimeError("INVALID_ARGUMENT: no such table: t"))
    'no such table: t'
    """
    text = str(exc)
    for prefix in _STATUS_PREFIXES:
        text = text.removeprefix(prefix)
    return text
