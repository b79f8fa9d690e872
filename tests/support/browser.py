"""Debian's Chromium driven by Playwright for the navigator's end-to-end tests: never a
downloaded browser. Under CI (CI set) a missing Chromium fails the tests; elsewhere it skips."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.chromium import MISSING, launch
from devtools.chromium import chromium_path as installed_chromium


def chromium_path() -> str:
    found = installed_chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"Chromium needed under CI: {MISSING}", pytrace=False)
        pytest.skip(MISSING)
    return found


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium for the block (devtools/chromium.py launches it)."""
    with launch(chromium_path()) as browser:
        yield browser


def sign_in(page: Any, base: str, key: str, then: str = "/") -> None:
    """Sign ``page`` in with ``key`` through the sign-in form, landing on ``then``."""
    page.goto(f"{base}{then}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}{then}")
