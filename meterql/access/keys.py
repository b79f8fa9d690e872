"""API keys: ``mq_<id>_<secret>``, stored as a SHA-256 of the whole key, scoped.

Scopes nest: ``read`` (queries, evaluations, listings) < ``ingest`` (also writes of events,
uploads and rows) < ``admin`` (everything, e.g. saving aggregates).

Keys live in catalog.duckdb's ``api_keys`` table (made by the catalog's migration chain,
``catalog/store.py``). The HTTP server checks them on every request (``server/guard.py``) and
manages them under ``/v1/keys``; ``meterql apikey`` manages them from the command line. Both
call :func:`create_key` and :class:`KeyStore`, which is why this is not a server module.

Example:
    >>> import duckdb
    >>> from meterql.catalog.store import CatalogStore
    >>> con = duckdb.connect()
    >>> _ = CatalogStore(con)  # (the catalog's migrations create the table)
    >>> keys = KeyStore(con)
    >>> key_id, key = create_key(keys, "ingest", "billing-engine")
    >>> check_key(keys, f"Bearer {key}", "read") == key_id
    True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any, Literal, get_args

import duckdb

from meterql.errors import AuthenticationError, InvalidSettingError, ScopeError

Scope = Literal["read", "ingest", "admin"]
#: Every scope, weakest first: a key's scope covers the ones before it.
SCOPES: tuple[Scope, ...] = get_args(Scope)


class KeyStore:
    """The stored keys (id, name, scope, hash, created, revoked), each call on its own cursor.

    Keys are checked on every API request; only the process holding the workspace lock writes
    them, so a copy in memory stays right and a change drops it.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._keys: dict[str, tuple[str, str, datetime | None]] | None = None
        # Bumped after every change: a copy read while a change was being written is used for
        # that one check and not kept (it may miss the change).
        self._changes = 0

    def create(self, scope: str, name: str | None = None) -> tuple[str, str]:
        """A new key: (its id, the key), see :func:`create_key`."""
        return create_key(self, scope, name)

    def add(self, key_id: str, name: str | None, scope: Scope, key_hash: str) -> None:
        with self._con.cursor() as cur:
            cur.execute("INSERT INTO api_keys (id, name, scope, key_hash) VALUES (?, ?, ?, ?)",
                        [key_id, name, scope, key_hash])
        self._changes += 1
        self._keys = None

    def get(self, key_id: str) -> tuple[str, str, datetime | None] | None:
        """(scope, hash, revoked_at) of a key, or None."""
        keys = self._keys
        if keys is None:
            changes = self._changes
            with self._con.cursor() as cur:
                rows = cur.execute("SELECT id, scope, key_hash, revoked_at FROM api_keys"
                                   ).fetchall()
            keys = {row[0]: tuple(row[1:]) for row in rows}
            if changes == self._changes:
                self._keys = keys
        return keys.get(key_id)

    def revoke(self, key_id: str) -> bool:
        """Revoke an active key; False if there is no active key with that id."""
        with self._con.cursor() as cur:
            rows = cur.execute("UPDATE api_keys SET revoked_at = now() WHERE id = ? AND "
                               "revoked_at IS NULL RETURNING id", [key_id]).fetchall()
        self._changes += 1
        self._keys = None  # the very next check reads the revocation
        return bool(rows)

    def list(self) -> list[dict[str, Any]]:
        """Every key by id, name, scope, created_at and revoked_at (never the hash)."""
        with self._con.cursor() as cur:
            rows = cur.execute("SELECT id, name, scope, created_at, revoked_at FROM api_keys "
                               "ORDER BY created_at").fetchall()
        return [dict(zip(("id", "name", "scope", "created_at", "revoked_at"), r, strict=True))
                for r in rows]


def create_key(keys: KeyStore, scope: str, name: str | None = None) -> tuple[str, str]:
    """A new key; returns (its id, the key). The key is shown once and never stored."""
    if scope not in SCOPES:
        raise InvalidSettingError(f"unknown scope '{scope}'",
                                  hint="use one of: " + ", ".join(SCOPES))
    key_id = secrets.token_hex(4)
    key = f"mq_{key_id}_{secrets.token_urlsafe(32)}"
    keys.add(key_id, name, scope, _hash(key))
    return key_id, key


def check_key(keys: KeyStore, authorization: str | None, needs: Scope) -> str:
    """The key id of a request's ``Authorization: Bearer KEY`` if its scope covers ``needs``."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthenticationError("this endpoint needs an API key",
                                  hint="send 'Authorization: Bearer KEY' (meterql apikey create)")
    key_id, scope = key_scope(keys, authorization[7:].strip())
    check_scope(scope, needs)
    return key_id


def key_scope(keys: KeyStore, key: str) -> tuple[str, Scope]:
    """The id and scope of a valid, unrevoked API key (else :class:`AuthenticationError`)."""
    parts = key.split("_")
    found = keys.get(parts[1]) if len(parts) >= 3 and parts[0] == "mq" else None
    if found is None or not hmac.compare_digest(found[1], _hash(key)):
        raise AuthenticationError("the API key is not valid",
                                  hint="check the key, or create one with 'meterql apikey create'")
    scope, _, revoked = found
    if revoked is not None:
        raise AuthenticationError("the API key was revoked",
                                  hint="create a new one with 'meterql apikey create'")
    return parts[1], scope  # type: ignore[return-value]


def check_scope(scope: str, needs: Scope) -> None:
    """Raise :class:`ScopeError` unless ``scope`` covers ``needs`` (admin > ingest > read)."""
    if SCOPES.index(scope) < SCOPES.index(needs):
        raise ScopeError(f"this request needs the {needs} scope; the key has {scope}",
                         hint=f"use a key created with --scope {needs}")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
