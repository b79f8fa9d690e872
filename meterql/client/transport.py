"""How a client reaches a server: the owner's Unix socket of a workspace held by a local
``meterql serve`` (admin scope, no key), or a URL with a Bearer key (the key's scope).

A refusal comes back as the same :class:`~meterql.errors.MeterqlError` class, message and hint
the call would have raised in-process (the problem+json ``title`` names the class).

Example:
    >>> error_of({"title": "InvalidSettingError", "detail": "no setting named 'x'",
    ...           "hint": "did you mean 'y'?"})
    InvalidSettingError("no setting named 'x'")
    >>> Transport.remote("localhost:8080", key="mq_x").base_url
    'http://localhost:8080'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from meterql import errors
from meterql.server.presence import Presence

#: Seconds to wait for a server to answer; queries pass their own (their timeout plus this).
DEFAULT_TIMEOUT_S = 60.0


class Transport:
    """One server, reached one way; ``request`` raises a refusal as its error."""

    def __init__(self, base_url: str, *, key: str | None = None, socket: str | None = None,
                 describe: str | None = None) -> None:
        self.base_url = base_url
        self.socket = socket
        #: what the server is called in messages ("meterql serve on ... (pid N)", or its URL)
        self.described = describe or base_url
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        transport = httpx.HTTPTransport(uds=socket) if socket else None
        self._client = httpx.Client(base_url=base_url, headers=headers, transport=transport,
                                    timeout=DEFAULT_TIMEOUT_S)

    @classmethod
    def owner(cls, presence: Presence) -> Transport:
        """The owner's socket of the server in ``presence`` (admin scope)."""
        if presence.socket is None:
            raise errors.WorkspaceError(
                f"the workspace is held by {presence.describe()}, which has no owner's socket",
                hint="use its HTTP API with an admin key (meterql --server URL with "
                     "METERQL_API_KEY), or stop it")
        return cls("http://meterql", socket=presence.socket, describe=presence.describe())

    @classmethod
    def remote(cls, url: str, *, key: str) -> Transport:
        """A server at ``url`` (``http://`` is assumed without a scheme) with a Bearer key."""
        if "://" not in url:
            url = f"http://{url}"
        if not url.startswith(("http://", "https://")):
            raise errors.WorkspaceError(f"'{url}' is not an http:// or https:// URL",
                                        hint="e.g. --server https://meterql.internal:8080")
        return cls(url.rstrip("/"), key=key)

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                content: bytes | None = None, headers: dict[str, str] | None = None,
                files: Any = None, data: Any = None, timeout: float | None = None,
                ok: tuple[int, ...] = ()) -> httpx.Response:
        """The answer to ``method path``; an error status (not in ``ok``) is raised."""
        try:
            response = self._client.request(
                method, path, json=json, params=params, content=content, headers=headers,
                files=files, data=data,
                timeout=DEFAULT_TIMEOUT_S if timeout is None else timeout)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc
        if response.status_code >= 400 and response.status_code not in ok:
            raise problem_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer to ``method path`` (``None`` for an empty one)."""
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    @contextlib.contextmanager
    def stream(self, method: str, path: str, *, json: Any = None,
               headers: dict[str, str] | None = None,
               timeout: float | None = None) -> Iterator[httpx.Response]:
        """The answer to ``method path`` as it arrives (an error status raised first)."""
        try:
            with self._client.stream(method, path, json=json, headers=headers,
                                     timeout=DEFAULT_TIMEOUT_S if timeout is None
                                     else timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise problem_error(response)
                yield response
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, exc: Exception) -> errors.MeterqlError:
        where = f" through {self.socket}" if self.socket else ""
        return errors.WorkspaceError(
            f"cannot reach {self.described}{where}: {exc}",
            hint="is the server running, at this address? meterql serve prints where it "
                 "listens")


def problem_error(response: httpx.Response) -> errors.MeterqlError:
    """The error of a refused request (problem+json, else the body's text)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": f"HTTP {response.status_code}: {response.text[:300]}"}
    return error_of(body)


def error_of(problem: dict[str, Any]) -> errors.MeterqlError:
    """The error a problem+json answer stands for (its ``title`` names the class)."""
    cls = getattr(errors, str(problem.get("title")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.MeterqlError)):
        cls = errors.MeterqlError
    return cls(str(problem.get("detail") or "the server refused the request"),
               hint=problem.get("hint"), source=problem.get("source"),
               table=problem.get("table"), line=problem.get("line"),
               column=problem.get("column"))
