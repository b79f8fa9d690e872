"""Accessible basics on every navigator page of the demo workspace, in Chromium: every form
control has a label (an accessible name), the page has one h1, the keyboard reaches the menu,
and the focused element shows a visible outline."""

from __future__ import annotations

import pytest

import meterql
from meterql.access.keys import create_key
from meterql.demo import prepare_demo
from tests.support.browser import chromium, sign_in
from tests.support.served import serve

#: Pages one step below the menu, checked too.
DEEPER = ["/tables/usage.main.events", "/aggregates/api_calls", "/aggregates/+new",
          "/manual/credits"]

UNNAMED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
  .filter((el) => {
    const labelled = (el.labels && el.labels.length) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || el.getAttribute('title');
    const text = el.tagName === 'BUTTON' && el.textContent.trim();
    return !(labelled || text);
  })
  .map((el) => el.outerHTML.slice(0, 120))"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("navigator_access") / "home"
    with meterql.connect(home) as ws:
        prepare_demo(ws)
        _, key = create_key(ws.keys, "admin", "access test")
    with serve(home) as server:
        yield server, key


def test_every_page_labels_its_controls_and_shows_focus(demo):
    server, key = demo
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        sign_in(page, server.base, key)
        links = page.locator("nav[aria-label='Pages'] a")
        menu = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert len(menu) == 8, menu  # sources to keys, for an admin
        for path in ["/", *menu, *DEEPER]:
            answer = page.goto(f"{server.base}{path}")
            assert answer is not None and answer.status == 200, path
            page.wait_for_load_state("networkidle")
            assert page.evaluate(UNNAMED) == [], path
            assert page.locator("h1").count() == 1, path
        # the keyboard: the skip link first, then the menu; the focus is drawn
        page.goto(f"{server.base}/sources")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const el = document.activeElement;
            const s = getComputedStyle(el);
            return [el.getAttribute('href'), s.outlineStyle, s.outlineWidth]; }""")
        assert focused[0] == menu[0] and focused[1] != "none" and focused[2] != "0px", focused
