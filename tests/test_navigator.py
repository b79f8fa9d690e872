"""The navigator in a real browser (Debian's Chromium through Playwright) against a real
``meterql serve``: sign-in and sign-out, a read key seeing no admin controls, and a revoked
key's session ending on its next request."""

from __future__ import annotations

import pytest

import meterql
from tests.support.browser import sign_in
from tests.support.served import new_key, serve


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A workspace with a SQLite source, served, and a read and an admin key."""
    import sqlite3

    root = tmp_path_factory.mktemp("navigator")
    lite = root / "crm.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'Ann')")
    con.commit()
    con.close()
    home = root / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("crm", f"sqlite://{lite}")
    keys = {scope: new_key(home, scope) for scope in ("read", "admin")}
    with serve(home) as server:
        yield server, keys


@pytest.fixture()
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


def test_sign_in_and_out(served, page):
    server, keys = served
    page.goto(f"{server.base}/")
    assert page.url.startswith(f"{server.base}/signin?next=")  # a page needs a session
    page.get_by_label("API key").fill("mq_00000000_wrong")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("the API key is not valid")
    sign_in(page, server.base, keys["read"])
    assert page.get_by_role("heading", name="Workspace").is_visible()
    assert page.get_by_role("cell", name="crm", exact=True).is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "meterql_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert keys["read"] not in cookie["value"]  # the cookie holds a session id, not the key
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server.base}/signin")
    page.goto(f"{server.base}/")
    assert "/signin" in page.url  # signed out: the session is gone on the server too


def test_a_forced_request_without_the_csrf_token_is_refused(served, page):
    server, keys = served
    sign_in(page, server.base, keys["admin"])
    answer = page.request.post(f"{server.base}/signout", form={"csrf": "forged"})
    assert answer.status == 403 and answer.json()["title"] == "CsrfError"
    # A page's route that reads JSON, not a form, is refused by the guard itself without the
    # header: no page can forget the check
    for route in ("/workbench/download", "/aggregates/check"):
        forced = page.request.post(f"{server.base}{route}",
                                   data={"sql": "SELECT 1", "format": "csv", "params": {}})
        assert forced.status == 403 and forced.json()["title"] == "CsrfError", route
    # The same session, through the API, with and without the header
    status = page.request.get(f"{server.base}/v1/tables")
    assert status.status == 200
    csrf = page.locator("body").get_attribute("data-csrf")
    refused = page.request.post(f"{server.base}/v1/query", data={"sql": "SELECT 1"})
    assert refused.status == 403 and refused.json()["title"] == "CsrfError"
    ran = page.request.post(f"{server.base}/v1/query", data={"sql": "SELECT 1 AS one"},
                            headers={"X-CSRF-Token": csrf})
    assert ran.status == 200 and ran.json()["rows"] == [[1]]


def test_a_revoked_key_ends_its_session(served, page, tmp_path):
    server, keys = served
    import httpx

    made = httpx.post(f"{server.base}/v1/keys", json={"scope": "read", "name": "short-lived"},
                      headers={"Authorization": f"Bearer {keys['admin']}"})
    assert made.status_code in (200, 201), made.text
    key = made.json()["key"]
    sign_in(page, server.base, key)
    assert page.get_by_role("heading", name="Workspace").is_visible()
    gone = httpx.delete(f"{server.base}/v1/keys/{key.split('_')[1]}",
                        headers={"Authorization": f"Bearer {keys['admin']}"})
    assert gone.status_code in (200, 204), gone.text
    page.goto(f"{server.base}/")
    assert "/signin" in page.url
