"""The Data Navigator: the web interface under ``/``, server-rendered pages (Jinja2) over the
same library calls as the HTTP API, signed in with an API key (a session cookie)."""

from meterql.server.navigator.app import NavContext, install

__all__ = ["NavContext", "install"]
