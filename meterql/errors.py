"""The one exception tree of meterql.

Every error meterql raises is a :class:`MeterqlError`. Each carries data (the source, the table,
the SQL and a position) and a ``hint`` saying what to do next. ``retryable`` tells a caller (sync,
the API) whether trying again may help.

::

    MeterqlError
    ├── WorkspaceError            the workspace folder cannot be opened or is in use
    ├── CatalogError              registering or looking up sources and tables
    │   ├── SourceExistsError     a source with that name is already registered
    │   ├── UnknownSourceError    no source with that name ("did you mean ...")
    │   ├── InvalidSourceError    a bad name, URI, kind, mode or option
    │   ├── InvalidSettingError   no such setting, or a value it does not take
    │   ├── UnknownTableError     no table with that name ("did you mean ...")
    │   ├── AmbiguousNameError    a short table name matches several tables (lists them)
    │   └── UnknownAggregateError no aggregate (or version) with that name ("did you mean ...")
    ├── QueryError                the SQL itself is wrong, found before any source is asked
    │   ├── SqlParseError         the SQL does not parse (line and column)
    │   ├── StatementNotAllowedError  not a SELECT / WITH / EXPLAIN
    │   ├── UnknownColumnError    a column that no table in scope has
    │   ├── ParameterError        a named parameter is missing or unknown
    │   └── InvalidAggregateError an aggregate definition that cannot be saved (names the problem)
    ├── SourceError               talking to a source failed
    │   ├── SourceUnavailableError   cannot connect (down, wrong host or port)   [retryable]
    │   │   └── StaleReplicaError    unreachable, and the replica is past the freshness bound
    │   ├── SourceAuthError          the source refused the credentials
    │   └── SourceQueryError         the source rejected or failed the query
    ├── LimitError                a limit was hit
    │   ├── QueryTimeoutError     the query ran longer than its time limit
    │   ├── RowLimitError         the result has more rows than the row cap allows
    │   └── InputLimitError       a request or the data in it is over a limit (size, fields,
    │                             nesting, digits), refused before anything is stored
    ├── QueryCancelledError       the query was cancelled by its caller
    ├── UnknownQueryError         no running query of this API key has that id
    ├── IngestError               data sent to the workspace (events, CSV uploads, manual rows)
    │   │                         refused as a whole, before anything of it is stored
    │   ├── UnknownStreamError    no event stream with that name
    │   ├── UnknownBackfillError  no backfill with that id (or none of that stream)
    │   └── InvalidBodyError      a request body that cannot be read (not UTF-8, not JSON, gzip)
    │       └── UnsupportedMediaTypeError  of a media type the route does not read (HTTP 415)
    ├── DataError                 data pushed to meterql does not fit its table (rows named)
    │   └── ConflictError         it conflicts with what is stored (a key that exists)
    └── AccessError               the HTTP API refused a request
        ├── AuthenticationError   no API key, or one that is unknown or revoked
        ├── ScopeError            the API key's scope does not allow this request
        └── CsrfError             a signed-in browser's change without its session's CSRF token

Example:
    >>> try:
    ...     raise UnknownTableError("no table 'evnts'", hint="did you mean 'pg.public.events'?")
    ... except CatalogError as e:
    ...     print(e)
    no table 'evnts' (did you mean 'pg.public.events'?)
"""

from __future__ import annotations

from typing import Any


class MeterqlError(Exception):
    """The root of every meterql error.

    Args:
        message: what failed, in one sentence.
        hint: what to do about it (shown after the message).
        source: the source involved, if any.
        table: the table involved, if any.
        sql: the SQL involved, if any.
        line: 1-based line in ``sql`` where the problem is.
        column: 1-based column in ``sql`` where the problem is.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        source: str | None = None,
        table: str | None = None,
        sql: str | None = None,
        line: int | None = None,
        column: int | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.source = source
        self.table = table
        self.sql = sql
        self.line = line
        self.column = column
        self.details = details

    def __str__(self) -> str:
        where = ""
        if self.line is not None and self.column is not None:
            where = f" at line {self.line}, column {self.column}"
        text = f"{self.message}{where}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def caret(self) -> str | None:
        """The offending SQL line with a caret under the error position, if known."""
        if not self.sql or self.line is None or self.column is None:
            return None
        lines = self.sql.splitlines() or [""]
        if not 1 <= self.line <= len(lines):
            return None
        text = lines[self.line - 1]
        return f"{text}\n{' ' * max(self.column - 1, 0)}^"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (used by the CLI's JSON output and later the HTTP API)."""
        out: dict[str, Any] = {"type": type(self).__name__, "message": self.message}
        for key in ("hint", "source", "table", "line", "column"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["retryable"] = self.retryable
        return out


class WorkspaceError(MeterqlError):
    """The workspace folder cannot be opened, created, or is owned by another process."""


class CatalogError(MeterqlError):
    """Registering or looking up sources and tables failed."""


class SourceExistsError(CatalogError):
    """A source with that name is already registered."""


class UnknownSourceError(CatalogError):
    """No source is registered under that name."""


class InvalidSourceError(CatalogError):
    """A source's name, URI, kind, mode or options are not valid."""


class InvalidSettingError(CatalogError):
    """No setting with that name, or a value the setting does not take."""


class UnknownTableError(CatalogError):
    """No table matches the name."""


class AmbiguousNameError(CatalogError):
    """A short table name matches more than one table."""


class UnknownAggregateError(CatalogError):
    """No aggregate, or no such version of it."""


class QueryError(MeterqlError):
    """The SQL is wrong; found before any source is asked."""


class SqlParseError(QueryError):
    """The SQL does not parse."""


class StatementNotAllowedError(QueryError):
    """Only SELECT, WITH and EXPLAIN statements are accepted."""


class UnknownColumnError(QueryError):
    """A column that no table in scope has."""


class ParameterError(QueryError):
    """A named parameter is missing, unknown, or of an unsupported type."""


class InvalidAggregateError(QueryError):
    """An aggregate definition that cannot be saved or evaluated: the message names the problem
    and, where it has one, its position in the SQL."""


class SourceError(MeterqlError):
    """Talking to a source failed."""


class SourceUnavailableError(SourceError):
    """The source cannot be reached."""

    retryable = True


class StaleReplicaError(SourceUnavailableError):
    """An ``auto`` source cannot be reached and its replica is older than the query's bound
    (or it has none): the message names the table, the replica's age and the bound."""


class SourceAuthError(SourceError):
    """The source refused the credentials."""


class SourceQueryError(SourceError):
    """The source rejected or failed the query."""


class LimitError(MeterqlError):
    """A limit was hit."""


class QueryTimeoutError(LimitError):
    """The query ran longer than its time limit."""

    retryable = True


class RowLimitError(LimitError):
    """The result has more rows than the row cap allows."""


class InputLimitError(LimitError):
    """A request, or the data in it, is over a limit (body size, fields per event, columns
    per stream, JSON nesting, digits of a number); nothing of it was stored. The message names
    the limit and the setting that raises it."""


class QueryCancelledError(MeterqlError):
    """The query was cancelled by its caller."""


class UnknownQueryError(MeterqlError):
    """No running query of this API key has that id (it finished, or another key sent it)."""


class IngestError(MeterqlError):
    """Data sent to the workspace (usage events, a CSV upload, a manual row) is refused as a
    whole before anything of it is stored: a stream, table or backfill that cannot take it
    (the message says why), or a request that cannot be read. A single event that is refused
    is no error: it is answered ``rejected`` with its reason, and the others are stored."""


class UnknownStreamError(IngestError):
    """No event stream with that name (a stream is created by its first event) (HTTP 404)."""


class UnknownBackfillError(IngestError):
    """No backfill with that id, or none of that stream (HTTP 404)."""


class InvalidBodyError(IngestError):
    """A request body that cannot be read: not UTF-8, not JSON (a JSON body; an NDJSON line is
    rejected alone), gzip that does not decompress, or cut short (HTTP 400)."""


class UnsupportedMediaTypeError(InvalidBodyError):
    """A request body of a media type the route does not read, e.g. a CSV upload sent as
    ``text/csv`` instead of ``multipart/form-data`` (HTTP 415)."""


class DataError(MeterqlError):
    """Uploaded or entered data that does not fit its table; ``details["rows"]`` lists the
    rejected rows (line, column, reason)."""


class ConflictError(DataError):
    """The data conflicts with what is stored: a row whose key exists already (HTTP 409)."""


class AccessError(MeterqlError):
    """The HTTP API refused the request."""


class AuthenticationError(AccessError):
    """No API key, or one that is unknown or revoked."""


class ScopeError(AccessError):
    """The API key's scope does not cover this request."""


class CsrfError(AccessError):
    """A request changing something, sent with a navigator session's cookie but without the
    session's CSRF token (a form field ``csrf`` or the ``X-CSRF-Token`` header)."""


__all__ = [name for name in dir() if name.endswith("Error")]
