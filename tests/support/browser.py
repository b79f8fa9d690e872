"""Debian's Chromium driven by Playwright for the navigator's end-to-end tests: never a
downloaded browser. Under CI (CI set) a missing Chromium fails the tests; elsewhere it skips."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

#: Flags for a closed network (no background connections, no Google lookups) and root.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"Chromium needed under CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return found


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium for the block."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, base: str, key: str, then: str = "/") -> None:
    """Sign ``page`` in with ``key`` through the sign-in form, landing on ``then``."""
    page.goto(f"{base}{then}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}{then}")
