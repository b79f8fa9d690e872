"""Every request's key, scope and body size, checked before a byte of its body is read.

FastAPI reads and parses a JSON body before it runs a route's dependencies, so a key check in a
dependency comes too late: a 300 MB body sent without a key grew the server by 900 MB before
its 401. :class:`RequestGuard` is a plain ASGI middleware in front of FastAPI's routing (and in
front of the event push path, push.py) that answers from the request line and headers alone:

- the key and its scope (401 / 403), for the scope the route declares with :class:`Access`;
- the body's size: a ``Content-Length`` over the route's limit is refused at once (413), and a
  body without one (chunked) is counted as it streams in, so no more than the limit is ever
  buffered.

Each route's scope and limit are read off ``app.routes`` once, when the app is made
(:func:`route_policies`, called by ``create_app``): a ``/v1`` route without :class:`Access` or
:data:`PUBLIC` stops the server from starting, so a new route cannot be left open. A route's
limit is the workspace setting named by its ``openapi_extra`` entry ``x-meterql-body-limit``
(default ``http_max_body_mb``).

Example:
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> @app.get("/v1/tables/{name}", dependencies=[Depends(Access("read"))])
    ... def table(name: str): ...
    >>> guard = RequestGuard(app, ws=None)
    >>> guard.load(app.routes)[-1]
    RoutePolicy(method='GET', path='/v1/tables/{name}', needs='read', body_limit='http_max_body_mb')
    >>> guard.policy("GET", "/v1/tables/pg.public.events").needs
    'read'
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Route

import meterql
from meterql.access.keys import Scope, check_key
from meterql.access.sessions import COOKIE, SessionStore
from meterql.errors import AuthenticationError, CsrfError, InputLimitError, MeterqlError
from meterql.server import problems

#: ``openapi_extra`` key naming the setting (in MB) that bounds a route's body.
BODY_LIMIT = "x-meterql-body-limit"
#: The limit of every route that does not name one: JSON control requests.
DEFAULT_BODY_LIMIT = "http_max_body_mb"

_bearer = HTTPBearer(auto_error=False, description="an API key from 'meterql apikey create' "
                     "or POST /v1/keys")


class Access:
    """A route's scope, declared as a dependency (``dependencies=[Depends(Access("read"))]``).

    :class:`RequestGuard` reads it off the routes and checks the key before the body is read;
    the dependency itself only hands the checked key's id to the route, and puts the bearer
    scheme into OpenAPI. Reached without the guard's check (a route added after the server
    started), it fails the request rather than let it through.
    """

    def __init__(self, needs: Scope) -> None:
        self.needs = needs

    async def __call__(self, request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None,
                                              Depends(_bearer)]) -> str:
        state = request.scope.get("state", {})
        if state.get("access") != self.needs:
            raise RuntimeError(f"{request.method} {request.url.path} reached its handler "
                               "without the key check of RequestGuard")
        return state["key"]

    def __repr__(self) -> str:
        return f"Access({self.needs!r})"


class _Public:
    """Marks a route that needs no key (``/v1/health``)."""

    async def __call__(self) -> None:
        return None

    def __repr__(self) -> str:
        return "PUBLIC"


PUBLIC = _Public()

#: The key id of requests through the owner's Unix socket (real key ids are 8 hex digits).
OWNER_KEY = "owner"


@dataclass(frozen=True)
class RoutePolicy:
    """What :class:`RequestGuard` checks for one route: the scope (None: no key) and the
    setting that bounds the body, in MB."""

    method: str
    path: str
    needs: Scope | None
    body_limit: str
    pattern: str = field(default="", repr=False, compare=False)  # Starlette's, for the path


def route_policies(routes: Iterable[Any]) -> list[RoutePolicy]:
    """The policy of every HTTP route; raises if a ``/v1`` route declares no scope.

    FastAPI's own pages (``/openapi.json``, ``/docs``) and mounted static files are public.
    """
    out = []
    for route in iter_route_contexts(list(routes)):  # (with the routes of included routers)
        if not isinstance(route.original_route, Route):
            continue  # (mounts: the files of /docs, answered without reading a body)
        path = route.path
        if path is None:  # (a Route always has one)
            raise RuntimeError(f"route {route.original_route!r} has no path")
        marks = list(_marks(route.dependant)) if isinstance(route.original_route, APIRoute) \
            else []
        if path.startswith("/v1/") and len(marks) != 1:
            raise RuntimeError(
                f"route {path} declares {len(marks)} scopes; give it exactly one: "
                "dependencies=[Depends(Access('read'|'ingest'|'admin'))], or PUBLIC")
        needs = marks[0].needs if marks and isinstance(marks[0], Access) else None
        extra = getattr(route, "openapi_extra", None) or {}
        limit = extra.get(BODY_LIMIT, DEFAULT_BODY_LIMIT)
        for method in sorted(route.methods or ()):
            out.append(RoutePolicy(method, path, needs, limit, route.path_regex.pattern))
    return out


def _marks(dependant: Dependant) -> Iterator[Access | _Public]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, Access | _Public):
            yield dep.call
        yield from _marks(dep)


class RequestGuard:
    """ASGI layer: the key, the scope and the body size of every request, before the body.

    Per request it costs a dict lookup (paths without parameters) or one regular expression
    (one alternation per method), a scan of the headers, and the key check; a body with a
    ``Content-Length`` is passed on untouched (the server never delivers more than that).
    """

    def __init__(self, app: Any, ws: meterql.Workspace,
                 policies: Iterable[RoutePolicy] = (), owner_socket: str | None = None,
                 sessions: SessionStore | None = None) -> None:
        """``policies``: every route's, from :func:`route_policies` (or see :meth:`load`).
        ``owner_socket``: the path of the server's Unix socket inside the workspace (0600 in
        a 0700 folder: only the workspace's owner can connect), whose requests stand for
        the admin scope without a key (key id :data:`OWNER_KEY`). ``sessions``: the
        navigator's signed-in browsers, whose session cookie stands for their key (see
        :meth:`_session`)."""
        self.app, self.ws = app, ws
        self.sessions = sessions
        self._owner_socket = owner_socket
        self._fixed: dict[tuple[str, str], RoutePolicy] = {}
        self._patterns: dict[str, tuple[re.Pattern[str], dict[str, RoutePolicy]]] = {}
        self._use(policies)

    def load(self, routes: Iterable[Any]) -> list[RoutePolicy]:
        """Read every route's policy (once the routes are defined)."""
        policies = route_policies(routes)
        self._use(policies)
        return policies

    def _use(self, policies: Iterable[RoutePolicy]) -> None:
        fixed: dict[tuple[str, str], RoutePolicy] = {}
        templated: dict[str, list[RoutePolicy]] = {}
        for policy in policies:
            if "{" in policy.path:
                templated.setdefault(policy.method, []).append(policy)
            else:
                fixed.setdefault((policy.method, policy.path), policy)
        self._fixed = fixed
        self._patterns = {method: _alternation(items) for method, items in templated.items()}

    def policy(self, method: str, path: str) -> RoutePolicy | None:
        """The policy of the route FastAPI will route this request to (None: no route)."""
        found = self._fixed.get((method, path))
        if found is None and method in self._patterns:
            pattern, by_group = self._patterns[method]
            match = pattern.match(path)
            if match is not None and match.lastgroup is not None:
                found = by_group[match.lastgroup]
        return found

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        policy = self.policy(scope["method"], path)
        authorization = length = cookie = csrf = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                length = value
            elif name == b"cookie":
                cookie = value.decode("latin-1")
            elif name == b"x-csrf-token":
                csrf = value.decode("latin-1")
        try:
            if policy is not None and policy.needs is not None:
                state = scope.setdefault("state", {})
                if self._from_owner(scope):
                    key = OWNER_KEY
                elif authorization is None and self.sessions is not None and (
                        cookie is not None or not path.startswith("/v1/")):
                    key = self._session(scope, state, policy, cookie, csrf)
                else:
                    key = check_key(self.ws.keys, authorization, policy.needs)
                state["key"], state["access"] = key, policy.needs
            setting = DEFAULT_BODY_LIMIT if policy is None else policy.body_limit
            limit = self.ws.catalog.settings[setting] << 20
            if length is not None and (not length.isdigit() or int(length) > limit):
                raise _too_large(setting, limit)
        except AuthenticationError as exc:
            if scope["method"] == "GET" and not path.startswith("/v1/"):
                # (a navigator page: to the sign-in form, and back here after it)
                target = "/signin?" + urlencode({"next": path})
                await RedirectResponse(target, status_code=303)(scope, receive, send)
            else:
                await problems.meterql_problem(exc, path)(scope, receive, send)
            return
        except MeterqlError as exc:
            await problems.meterql_problem(exc, path)(scope, receive, send)
            return
        if scope.get("state", {}).pop("csrf_pending", False):
            try:
                receive = await _form_with_token(scope, receive, setting, limit)
            except MeterqlError as exc:
                await problems.meterql_problem(exc, path)(scope, receive, send)
                return
        if length is not None:
            await self.app(scope, receive, send)
            return
        await _CountedBody(self.app, setting, limit)(scope, receive, send)


    def _session(self, scope: dict[str, Any], state: dict[str, Any], policy: RoutePolicy,
                 cookie: str | None, csrf: str | None) -> str:
        """The key id of a navigator session's cookie, checked as a key is. A request that
        changes something (not GET or HEAD) must carry the session's CSRF token: the
        ``X-CSRF-Token`` header, checked here, or (a navigator form, not ``/v1``) the form
        field ``csrf``, checked before the page runs (:func:`_form_with_token`)."""
        assert self.sessions is not None and policy.needs is not None
        jar = SimpleCookie()
        with contextlib.suppress(CookieError):
            jar.load(cookie or "")
        morsel = jar.get(COOKIE)
        session = self.sessions.check(self.ws.keys, morsel.value if morsel else None,
                                      policy.needs)
        state["session"] = session
        if scope["method"] not in ("GET", "HEAD") and not session.csrf_ok(csrf):
            if csrf is not None or scope["path"].startswith("/v1/"):
                raise CsrfError("this request lacks the session's CSRF token",
                                hint="reload the page and try again")
            state["csrf_pending"] = True
        return session.key_id

    def _from_owner(self, scope: dict[str, Any]) -> bool:
        """Whether the request came through the owner's Unix socket (the listening socket's
        own address: a client cannot choose it)."""
        server = scope.get("server")
        return (self._owner_socket is not None and server is not None and server[1] is None
                and server[0] == self._owner_socket)


async def _form_with_token(scope: dict[str, Any], receive: Any, setting: str,
                           limit: int) -> Any:
    """A navigator form's body, read (up to ``limit``) before the page runs, once its ``csrf``
    field is the session's token; returns a ``receive`` that hands the page the same body.
    Anything but a URL-encoded form must carry the ``X-CSRF-Token`` header instead."""
    kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
    if kind != b"application/x-www-form-urlencoded":
        raise CsrfError("this request lacks the session's CSRF token",
                        hint="send the X-CSRF-Token header the page carries")
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            raise _too_large(setting, limit)
    token = parse_qs(body.decode("latin-1")).get("csrf", [None])[0]
    if not scope["state"]["session"].csrf_ok(token):
        raise CsrfError("this form lacks the session's CSRF token",
                        hint="reload the page and send the form again")
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()  # (the client's disconnect, if it comes)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class _CountedBody:
    """A body without ``Content-Length``, counted as it arrives: past the limit the reader
    gets :class:`InputLimitError`, and the client the 413, whatever the app then answers."""

    def __init__(self, app: Any, setting: str, limit: int) -> None:
        self.app, self.setting, self.limit = app, setting, limit
        self.received = 0
        self.over: InputLimitError | None = None
        self.answered = False

    async def __call__(self, scope, receive, send) -> None:
        async def counted() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit:
                    self.over = _too_large(self.setting, self.limit)
                    raise self.over
            return message

        async def answer(message: dict[str, Any]) -> None:
            if self.over is None:
                await send(message)
            else:  # (FastAPI turns a failed body read into a 400: the 413 is sent instead)
                await refuse(self.over)

        async def refuse(over: InputLimitError) -> None:
            if not self.answered:
                self.answered = True
                await problems.meterql_problem(over, scope["path"])(scope, receive, send)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            if self.over is None:
                raise
            await refuse(self.over)  # (the error was the limit: nothing to log)


def _too_large(setting: str, limit: int) -> InputLimitError:
    return InputLimitError(
        f"the request body is larger than {limit >> 20} MB, the limit of this endpoint",
        hint=f"send less per request, or raise the workspace setting {setting} "
             f"(meterql settings set {setting} N)")


def _alternation(items: list[RoutePolicy]) -> tuple[re.Pattern[str], dict[str, RoutePolicy]]:
    """One regular expression for the routes with path parameters, made of Starlette's own
    patterns and tried in route order as Starlette does: a group per route, named ``r<i>``, so
    ``match.lastgroup`` names the route."""
    parts, by_group = [], {}
    for i, policy in enumerate(items):
        body = re.sub(r"\(\?P<\w+>", "(?:", policy.pattern.removeprefix("^").removesuffix("$"))
        parts.append(f"(?P<r{i}>{body})")
        by_group[f"r{i}"] = policy
    return re.compile("^(?:" + "|".join(parts) + ")$"), by_group
