"""Pages as HTML: Jinja2 templates from the package, every value escaped, and the headers every
page gets (a Content-Security-Policy that allows the server's own scripts only)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

import meterql
from meterql.access.sessions import Session

_ENV = Environment(loader=PackageLoader("meterql.server.navigator", "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)

#: No script but the server's own files (no inline script, no CDN); styles may be set inline
#: (the grid sizes its columns); no frames, no form sent elsewhere.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
          "form-action 'self'; base-uri 'none'; object-src 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context``, the signed-in session (``session``: its scope
    decides which controls show) and its CSRF token (``csrf``)."""
    session: Session | None = request.scope.get("state", {}).get("session")
    html = _ENV.get_template(template).render(
        session=session, csrf=session.csrf if session else "", path=request.url.path,
        version=meterql.__version__, admin=session is not None and session.scope == "admin",
        menu=getattr(request.app.state, "navigator_menu", []) if session else [], **context)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def render_fragment(template: str, **context: Any) -> str:
    """A template's HTML without the page around it (for htmx's partial answers)."""
    return _ENV.get_template(template).render(**context)
