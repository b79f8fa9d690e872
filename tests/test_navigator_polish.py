"""Small things of the navigator in a real browser (Debian's Chromium through Playwright)
against a real ``meterql serve``: the sign-in hint's code never breaks inside a word (nor makes
the page scroll sideways at 400 px); a manual table's audit shows a decimal with its column's
scale, as the table does; a table's page names types as query headers do (``TIMESTAMPTZ``);
an aggregate named ``new`` opens (the new-aggregate form is ``/aggregates/+new``)."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

import meterql
from meterql.dialects.arrow_types import type_name
from tests.support.browser import sign_in
from tests.support.served import new_key, serve

SHOTS = "/tmp"
NEW = """-- name: new
-- description: An aggregate named like the form
-- unit: call
SELECT customer_id, count(*) AS quantity
FROM dk.main.usage
WHERE ts >= :period_start AND ts < :period_end
GROUP BY customer_id
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A DuckDB source with a TIMESTAMPTZ column, a manual table with a DECIMAL(10,2) column
    (one of the widths DuckDB's to_json writes without trailing zeros) and an aggregate
    named ``new``, served, with an admin key."""
    root = tmp_path_factory.mktemp("nav-polish")
    path = root / "usage.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE usage (customer_id VARCHAR, ts TIMESTAMPTZ, amount DECIMAL(18,6))")
    con.execute("INSERT INTO usage VALUES ('acme', ?, 1.5)", [datetime(2026, 10, 1, tzinfo=UTC)])
    con.close()
    home = root / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("dk", f"duckdb://{path}")
        ws.aggregates.apply_definitions([("new.sql", NEW)])
        ws.manual.create("prices", {"plan": "VARCHAR", "price": "DECIMAL(10,2)",
                                    "since": "TIMESTAMPTZ"}, ["plan"])
        ws.manual.insert("prices", {"plan": "pro", "price": "25",
                                    "since": "2026-10-01 00:00:00+00"}, actor="ana")
        ws.manual.update("prices", {"plan": "pro"}, {"price": "12.5"}, actor="ana")
    with serve(home) as server:
        yield server, new_key(home, "admin")


def open_page(browser, width: int):
    return browser.new_context(viewport={"width": width, "height": 900}).new_page()


@pytest.mark.parametrize("width", [1280, 400])
def test_the_sign_in_hint_breaks_between_words_only(served, browser, width):
    server, _ = served
    page = open_page(browser, width)
    page.goto(f"{server.base}/signin")
    words = page.locator(".signin code span").all()
    assert " ".join(w.inner_text() for w in words) == (
        "meterql apikey create --scope read|ingest|admin")
    for word in words:  # one line box per word: no word is broken
        assert word.evaluate("w => w.getClientRects().length") == 1, word.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=f"{SHOTS}/navigator-signin-{width}.png", full_page=True)
    page.context.close()


def test_the_audit_shows_values_as_the_table_does(served, browser):
    server, key = served
    page = open_page(browser, 1300)
    sign_in(page, server.base, key, "/manual/prices")
    assert page.get_by_label("price of row 1").input_value() == "12.50"
    since = page.get_by_label("since of row 1").input_value()
    after, before = (page.locator("table.audit tbody tr").nth(i).locator("td").nth(5)
                     for i in (0, 1))
    assert '"price": "12.50"' in after.inner_text()
    assert f'"since": "{since}"' in after.inner_text()
    assert '"price": "25.00"' in before.inner_text()
    assert page.locator("#add-3").evaluate("i => i.labels[0].innerText") == "since TIMESTAMPTZ"
    page.screenshot(path=f"{SHOTS}/navigator-polish-audit.png", full_page=True)
    page.context.close()


def test_a_table_page_names_types_as_query_headers_do(served, browser):
    server, key = served
    page = open_page(browser, 1300)
    sign_in(page, server.base, key, "/tables/dk.main.usage")
    types = [td.inner_text() for td in page.locator("table.list").first.locator(
        "tbody tr td:nth-child(2)").all()]
    assert types == ["VARCHAR", "TIMESTAMPTZ", "DECIMAL(18,6)"]
    sources = [td.inner_text() for td in page.locator("table.list").first.locator(
        "tbody tr td:nth-child(3)").all()]  # (the source's own names, as it writes them)
    assert sources[1] == "TIMESTAMP WITH TIME ZONE"
    page.screenshot(path=f"{SHOTS}/navigator-polish-table.png", full_page=True)
    page.context.close()


def test_an_aggregate_named_new_opens_and_the_form_has_its_own_route(served, browser):
    server, key = served
    page = open_page(browser, 1300)
    sign_in(page, server.base, key, "/aggregates")
    page.get_by_role("link", name="new", exact=True).click()
    page.wait_for_url(f"{server.base}/aggregates/new")
    assert "An aggregate named like the form" in page.locator("main").inner_text()
    page.goto(f"{server.base}/aggregates")
    page.get_by_role("link", name="New aggregate").first.click()
    page.wait_for_url(f"{server.base}/aggregates/+new")
    assert page.locator(".cm-content").count() == 1
    page.context.close()


def test_type_names_are_those_of_query_headers():
    assert type_name("TIMESTAMP WITH TIME ZONE") == "TIMESTAMPTZ"
    assert type_name("DECIMAL(18, 6)") == "DECIMAL(18,6)"
    assert type_name("JSON") == "JSON"
    assert type_name("not a type (") == "not a type ("
