"""Screenshots of the Data Navigator for docs/ui/: the sign-in page and every page of its menu,
at 1280x800, on the demo workspace.

Usage (from the repository root, after ``pip install -e '.[test]'``; needs Debian's chromium)::

    .venv/bin/python -m devtools.screenshots [--out docs/ui]

It builds the demo workspace in a temporary folder and serves it with the real command
(``meterql demo --serve``, which prints an admin key made for it), signs in with that key in
Chromium (devtools/chromium.py), then follows the links of the menu as they are when it runs:
``/sources`` becomes ``sources.png``, and the sign-in form ``signin.png``. Nothing else is kept.
A page that answers with an error is named on standard error and the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a file (python devtools/screenshots.py)
    sys.path.insert(0, str(ROOT))

from devtools.chromium import launch  # noqa: E402

SIZE = {"width": 1280, "height": 800}
#: How long the demo may take to build and start serving, in seconds.
START_TIMEOUT = 180.0


@contextlib.contextmanager
def demo_server(folder: Path) -> Iterator[tuple[str, str]]:
    """``meterql demo --serve`` on a free port in ``folder``: (its URL, the admin key it
    printed), until the block ends (then Ctrl-C, as a person would stop it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out_path, err_path = folder / "demo.out", folder / "demo.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "meterql", "demo", "--serve", "--home", str(folder / "home"),
             "--port", str(port)], stdout=out, stderr=err, cwd=folder)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Ctrl-C stops" not in out_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"meterql demo --serve did not start:\n"
                                   f"{out_path.read_text()}\n{err_path.read_text()}")
            time.sleep(0.2)
        lines = out_path.read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("sign in with"))
        yield f"http://127.0.0.1:{port}", lines[at + 1].strip()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def settle(page: Any) -> None:
    """Wait until the page has loaded what it asks for (a page that keeps polling is taken as
    it is after a few seconds)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_load_state("networkidle", timeout=5000)
    page.wait_for_timeout(300)  # charts and grids draw after their data arrives


def file_name(href: str) -> str:
    """``/manual`` -> ``manual.png``; ``/a/b`` -> ``a-b.png``."""
    return "-".join(part for part in href.strip("/").split("/") if part) + ".png"


def shoot(browser: Any, base: str, key: str, out: Path) -> tuple[list[Path], list[str]]:
    """The sign-in page and each page of the menu into ``out``: the files written, and the
    pages that answered with an error instead (not pictured)."""
    out.mkdir(parents=True, exist_ok=True)
    written, failed = [], []
    context = browser.new_context(viewport=SIZE)
    try:
        page = context.new_page()
        page.goto(f"{base}/signin")
        settle(page)
        written.append(out / "signin.png")
        page.screenshot(path=str(written[-1]))
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/")
        links = page.locator("nav[aria-label='Pages'] a")
        menu = [(links.nth(i).inner_text().strip(), links.nth(i).get_attribute("href") or "")
                for i in range(links.count())]
        for label, href in menu:
            if not href.startswith("/") or href == "/":
                continue
            answer = page.goto(f"{base}{href}")
            if answer is None or answer.status >= 400:
                failed.append(f"{label} ({href}): "
                              f"{'no answer' if answer is None else answer.status}")
                continue
            settle(page)
            written.append(out / file_name(href))
            page.screenshot(path=str(written[-1]))
        for name, href, action in DEEPER:
            answer = page.goto(f"{base}{href}")
            if answer is None or answer.status >= 400:
                failed.append(f"{name} ({href}): "
                              f"{'no answer' if answer is None else answer.status}")
                continue
            settle(page)
            if action is not None:
                action(page)
                settle(page)
            written.append(out / f"{name}.png")
            page.screenshot(path=str(written[-1]))
    finally:
        context.close()
    return written, failed


def _run_query(page: Any) -> None:
    page.locator("#wb-run").click()
    page.locator("#wb-results[data-rows]").wait_for(state="attached", timeout=15000)


#: Pages one step below the menu, pictured after it: (file name, path, what to do there).
DEEPER: list[tuple[str, str, Any]] = [
    ("table", "/tables/usage.main.events", None),
    ("workbench-result", "/workbench?" + urlencode({"sql": (
        "SELECT c.plan, count(DISTINCT c.id) AS customers, sum(e.quantity) AS quantity\n"
        "FROM usage.main.events AS e\nJOIN crm.main.customers AS c ON c.id = e.customer_id\n"
        "GROUP BY c.plan\nORDER BY quantity DESC")}), _run_query),
    ("aggregate", "/aggregates/api_calls", None),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui",
                        help="where the PNGs go (default: docs/ui)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="meterql-screenshots-") as tmp:
        with demo_server(Path(tmp)) as (base, key), launch() as browser:
            written, failed = shoot(browser, base, key, args.out.resolve())
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    for page in failed:
        print(f"not pictured, the page answered with an error: {page}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
