"""API keys: ``mq_<id>_<secret>``, stored as a SHA-256 of the whole key, scoped.

Scopes nest: ``read`` (queries, evaluations, listings) < ``ingest`` (also writes of events,
uploads and rows) < ``admin`` (everything, e.g. saving aggregates).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from meterql.catalog.records import Records
from meterql.errors import AuthenticationError, InvalidSettingError, ScopeError

SCOPES = ("read", "ingest", "admin")


def create_key(records: Records, scope: str, name: str | None = None) -> tuple[str, str]:
    """A new key; returns (its id, the key). The key is shown once and never stored."""
    if scope not in SCOPES:
        raise InvalidSettingError(f"unknown scope '{scope}'",
                                  hint="use one of: " + ", ".join(SCOPES))
    key_id = secrets.token_hex(4)
    key = f"mq_{key_id}_{secrets.token_urlsafe(32)}"
    records.add_api_key(key_id, name, scope, _hash(key))
    return key_id, key


def check_key(records: Records, authorization: str | None, needs: str) -> str:
    """The key id of a request's ``Authorization: Bearer KEY`` if its scope covers ``needs``."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthenticationError("this endpoint needs an API key",
                                  hint="send 'Authorization: Bearer KEY' (meterql apikey create)")
    key = authorization[7:].strip()
    parts = key.split("_")
    found = records.api_key(parts[1]) if len(parts) >= 3 and parts[0] == "mq" else None
    if found is None or not hmac.compare_digest(found[1], _hash(key)):
        raise AuthenticationError("the API key is not valid",
                                  hint="check the key, or create one with 'meterql apikey create'")
    scope, _, revoked = found
    if revoked is not None:
        raise AuthenticationError("the API key was revoked",
                                  hint="create a new one with 'meterql apikey create'")
    if SCOPES.index(scope) < SCOPES.index(needs):
        raise ScopeError(f"this request needs the {needs} scope; the key has {scope}",
                         hint=f"use a key created with --scope {needs}")
    return parts[1]


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
