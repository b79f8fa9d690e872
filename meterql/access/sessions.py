"""Browser sessions of the navigator: signed in with an API key, held in a cookie.

A session stands for the key it was opened with, and nothing more: its scope is the key's, and
every request checks the key again, so a revoked key ends its sessions on their next request.
The cookie holds a random session id, never the key; the server keeps the sessions in memory
(a restart signs everyone out). Each session has a CSRF token that every request changing
something must carry (a form field or the ``X-CSRF-Token`` header).

Example:
    >>> import tempfile, meterql
    >>> from meterql.access.keys import create_key
    >>> keys = meterql.connect(tempfile.mkdtemp()).keys
    >>> _, raw = create_key(keys, "read")
    >>> sessions = SessionStore()
    >>> session = sessions.open(keys, raw)
    >>> sessions.check(keys, session.id, "read") is session
    True
    >>> try:
    ...     sessions.check(keys, session.id, "admin")
    ... except Exception as exc:
    ...     print(exc.message)
    this request needs the admin scope; the key has read
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from meterql.access.keys import KeyStore, Scope, check_scope, key_scope
from meterql.errors import AuthenticationError

#: The cookie that carries the session id.
COOKIE = "meterql_session"
#: A session unused this long is closed (seconds).
IDLE_S = 8 * 3600


@dataclass
class Session:
    """One signed-in browser: the key's id and scope, and the session's CSRF token."""

    id: str
    key_id: str
    scope: Scope
    csrf: str
    last_used: float = field(default_factory=time.monotonic)

    def csrf_ok(self, token: str | None) -> bool:
        """Whether ``token`` is this session's CSRF token (compared in constant time)."""
        return token is not None and hmac.compare_digest(token, self.csrf)


class SessionStore:
    """The open sessions of one server (thread-safe)."""

    def __init__(self, idle_s: float = IDLE_S) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.idle_s = idle_s

    def open(self, keys: KeyStore, key: str) -> Session:
        """A new session for a valid API key (else :class:`AuthenticationError`)."""
        key_id, scope = key_scope(keys, key.strip())
        session = Session(secrets.token_urlsafe(32), key_id, scope, secrets.token_urlsafe(32))
        with self._lock:
            self._sessions[session.id] = session
        return session

    def check(self, keys: KeyStore, session_id: str | None, needs: Scope) -> Session:
        """The session of ``session_id`` if it is open, its key still valid and its scope
        covers ``needs``; else :class:`AuthenticationError` (sign in) or ``ScopeError``."""
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id or "")
            if session is not None and now - session.last_used > self.idle_s:
                del self._sessions[session.id]
                session = None
        if session is None:
            raise AuthenticationError("you are not signed in, or your session has ended",
                                      hint="sign in with an API key")
        found = keys.get(session.key_id)
        if found is None or found[2] is not None:  # (revoked: every session of it ends)
            self.close(session.id)
            raise AuthenticationError("the API key of this session was revoked",
                                      hint="sign in with another key")
        check_scope(session.scope, needs)
        session.last_used = now
        return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
