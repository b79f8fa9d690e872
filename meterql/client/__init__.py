"""A workspace through its server: :class:`Client` makes the calls of
:class:`meterql.Workspace` as HTTP requests, over the owner's Unix socket of a local
``meterql serve`` or to a URL with a Bearer key (:class:`Transport`).

Example:
    >>> import meterql
    >>> ws = meterql.connect("https://meterql.internal:8080", key="mq_...")  # doctest: +SKIP
    >>> ws.query("SELECT count(*) AS n FROM pg.public.events").to_arrow()  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from meterql.client.remote import Client, RemotePlan, RemoteQuery
from meterql.client.transport import Transport, error_of
from meterql.server.presence import read_presence


def remote(url: str, key: str) -> Client:
    """A client of the server at ``url``, with the scope of ``key``."""
    return Client(Transport.remote(url, key=key))


def owner(home: Path) -> Client | None:
    """A client of the live ``meterql serve`` that holds ``home`` (through its owner's
    socket, with the admin scope), or ``None`` when no server holds it."""
    presence = read_presence(home)
    if presence is None:
        return None
    return Client(Transport.owner(presence), home=home)


__all__ = ["Client", "RemotePlan", "RemoteQuery", "Transport", "error_of", "owner", "remote"]
