"""Debian's Chromium (``/usr/bin/chromium``) under Playwright, never a downloaded browser: what
the navigator's browser tests (tests/support/browser.py) and the screenshots
(devtools/screenshots.py) launch.

Usage::

    with launch() as browser:
        page = browser.new_page()
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

#: Flags for a closed network (no background connections, no Google lookups) and root.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

MISSING = "Debian's chromium is not installed (apt-get install chromium)"


def chromium_path() -> str | None:
    """The installed Chromium's path, or ``None``."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def launch(path: str | None = None) -> Iterator[Any]:
    """A headless Chromium (``path``, default the installed one) for the block."""
    from playwright.sync_api import sync_playwright

    path = path or chromium_path()
    if path is None:
        raise RuntimeError(MISSING)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()
