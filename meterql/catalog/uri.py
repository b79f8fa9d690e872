"""Source URIs: parsing, validation, secrets by reference, and redaction.

A password may be written in the URI (stored only in the workspace, shown as ``***``) or given
by reference as ``env:VAR`` (read from the environment at connect time, never stored)::

    postgresql://billing:env:PGPASSWORD@db.internal:5432/usage

libpq also takes the password as a query parameter (``?password=...``); it is treated the same.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from meterql.dialects import dialect_for, kind_for_scheme
from meterql.errors import InvalidSourceError

ENV_PREFIX = "env:"
_URI_PASSWORD = re.compile(r"(?P<head>://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)")
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<secret>[^&#\s'\"]*)", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedURI:
    """The parts of a source URI meterql needs."""

    scheme: str
    user: str | None
    password: str | None
    host: str | None
    port: int | None
    path: str
    query: str


def parse_uri(uri: str) -> ParsedURI:
    """Split a source URI, raising :class:`InvalidSourceError` with the expected shape."""
    parts = urlsplit(uri)
    if uri.lower().rsplit("?", 1)[0].endswith((".csv", ".csv.gz", ".tsv")):
        raise InvalidSourceError(
            f"'{redact_uri(uri)}' is a CSV file, which is loaded rather than registered as a "
            "source",
            hint=f"load it into a table instead: meterql load "
            f"{shlex.quote(redact_uri(uri))} --table NAME, then query local.uploads.NAME; "
            "in Python ws.uploads.load, over HTTP "
            "POST /v1/tables/NAME/upload",
        )
    if not parts.scheme:
        raise InvalidSourceError(
            f"'{redact_uri(uri)}' is not a source URI",
            hint="write e.g. postgresql://user:env:PGPASSWORD@host:5432/db, "
            "sqlite:///path/file.db or duckdb:///path/file.duckdb",
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidSourceError(
            f"bad port in '{redact_uri(uri)}'", hint="the port must be a number"
        ) from exc
    password = unquote(parts.password) if parts.password is not None else None
    if password is None:
        password = _query_password(parts.query)
    # urlsplit takes the text after the first ':' as the password, so 'env:VAR' survives whole.
    return ParsedURI(
        scheme=parts.scheme.lower(),
        user=unquote(parts.username) if parts.username else None,
        password=password,
        host=parts.hostname,
        port=port,
        path=parts.path,
        query=parts.query,
    )


def file_path(uri: str) -> str:
    """The file path of a ``sqlite:`` or ``duckdb:`` URI: everything after ``scheme://``.

    ``sqlite:///data/usage.db`` is the absolute path ``/data/usage.db``; ``sqlite://usage.db``
    and ``sqlite:usage.db`` are relative to the current folder.

    >>> file_path("sqlite:///data/usage.db"), file_path("duckdb://rel/x.duckdb")
    ('/data/usage.db', 'rel/x.duckdb')
    """
    rest = uri.split(":", 1)[1]
    if rest.startswith("//"):
        rest = rest[2:]
    return unquote(rest.split("?", 1)[0])


def file_exists(path: str | os.PathLike[str]) -> bool:
    """Whether a file source's path names a file: a regular file or a link to one, not a folder.

    The one rule, checked when the source is added and again each time it is opened.

    >>> file_exists("/nonexistent/usage.db"), file_exists("/")
    (False, False)
    """
    return os.path.isfile(path)


def resolve_password(password: str | None, source: str) -> str | None:
    """Turn ``env:VAR`` into the variable's value at connect time."""
    if password is None or not password.startswith(ENV_PREFIX):
        return password
    var = password[len(ENV_PREFIX) :]
    value = os.environ.get(var)
    if value is None:
        raise InvalidSourceError(
            f"source '{source}' takes its password from the environment variable {var}, "
            "which is not set",
            source=source,
            hint=f"export {var}=... before running meterql",
        )
    return value


def _query_password(query: str) -> str | None:
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() == "password":
            return value
    return None


def with_password(uri: str, password: str | None) -> str:
    """The URI with its password replaced (for handing to a driver; never for display)."""
    parts = urlsplit(uri)
    if parts.password is None:
        if _query_password(parts.query) is None:
            return uri
        pairs = [
            (k, password if k.lower() == "password" else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k.lower() != "password" or password is not None
        ]
        return urlunsplit(parts._replace(query=urlencode(pairs, quote_via=quote)))
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    secret = "" if password is None else ":" + quote(password, safe="")
    netloc = f"{quote(unquote(user), safe='')}{secret}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_uri(uri: str) -> str:
    """Show a written password as ``***``; an ``env:VAR`` reference is not a secret and stays.

    >>> redact_uri("postgresql://u:hunter2@h/db")
    'postgresql://u:***@h/db'
    >>> redact_uri("postgresql://u:env:PGPASSWORD@h/db")
    'postgresql://u:env:PGPASSWORD@h/db'
    >>> redact_uri("postgresql://u@h/db?sslmode=require&password=hunter2")
    'postgresql://u@h/db?sslmode=require&password=***'
    """

    def _mask(match: re.Match[str]) -> str:
        secret = match.group("secret")
        if unquote(secret).startswith(ENV_PREFIX):
            return match.group(0)
        tail = match.group("tail") if "tail" in match.re.groupindex else ""
        return f"{match.group('head')}***{tail}"

    return _QUERY_PASSWORD.sub(_mask, _URI_PASSWORD.sub(_mask, uri))


def redact_text(text: str, secrets: list[str]) -> str:
    """Remove every secret (and its URL-quoted form) from a message before it is shown."""
    for secret in secrets:
        if secret and len(secret) >= 1:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return redact_uri(text)


#: libpq URI parameters a source added over the network may carry: none of them reads a file
#: of the server or picks a local socket.
REMOTE_PARAMETERS = frozenset({
    "sslmode", "connect_timeout", "application_name", "options", "target_session_attrs",
    "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "password",
    "gssencmode", "channel_binding", "tcp_user_timeout",
})


def server_local_reference(uri: str) -> str | None:
    """What in ``uri`` would make the server read its own environment, files or local
    sockets on behalf of a network caller (None: nothing).

    >>> server_local_reference("sqlite:///srv/data/usage.db")
    'a file of the server'

    >>> server_local_reference("postgresql://u:env:PGPASSWORD@db:5432/x")
    "an env: password (the server's environment variable PGPASSWORD)"
    >>> server_local_reference("postgresql://u@db/x?sslmode=require&passfile=/etc/p")
    "the connection parameter 'passfile'"
    >>> server_local_reference("postgresql://u@%2Fvar%2Frun%2Fpostgresql/x")
    'a local socket folder as the host'
    >>> server_local_reference("postgresql://u:secret@db:5432/x?sslmode=require")
    """
    parsed = parse_uri(uri)
    kind = kind_for_scheme(parsed.scheme)
    if kind is not None and dialect_for(kind).file_uri:
        return "a file of the server"
    if parsed.password is not None and parsed.password.startswith(ENV_PREFIX):
        var = parsed.password[len(ENV_PREFIX):]
        return f"an env: password (the server's environment variable {var})"
    host = unquote(urlsplit(uri).netloc.rsplit("@", 1)[-1])
    if host.startswith("/") or (parsed.host or "").startswith("/"):
        return "a local socket folder as the host"
    for key, _ in parse_qsl(parsed.query, keep_blank_values=True):
        if key.lower() not in REMOTE_PARAMETERS:
            return f"the connection parameter '{key}'"
    return None
