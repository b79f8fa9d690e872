"""The Sources and Tables pages in a real browser (Debian's Chromium through Playwright) against
a real ``meterql serve``: browsing to a table and previewing it (pages, sort and filter give the
rows a direct SQLite read gives), testing and syncing a sync-mode source (the replica then holds
the rows), a read key seeing no admin control and refused a forced change, and a customer's name
holding HTML shown as text."""

from __future__ import annotations

import re
import sqlite3
from decimal import Decimal

import pytest

import meterql
from tests.support.browser import sign_in
from tests.support.served import new_key, serve

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A SQLite CRM (120 customers, one named XSS) queried directly, a SQLite ledger in sync
    mode (never synced yet), served; and a read and an admin key."""
    root = tmp_path_factory.mktemp("nav-sources")
    crm = root / "crm.db"
    con = sqlite3.connect(crm)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, plan TEXT, "
                "seats INTEGER)")
    con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)",
                    [(i, XSS if i == 77 else f"customer {i:03}", ("free", "pro", "team")[i % 3],
                      (i * 37) % 11) for i in range(1, 121)])
    con.execute('CREATE TABLE "odd ""name""?" ("a b" INTEGER, "c""d" TEXT)')
    con.execute("""INSERT INTO "odd ""name""?" VALUES (1, 'x'), (2, 'y'), (3, 'x')""")
    con.commit()
    con.close()
    ledger = root / "ledger.db"
    con = sqlite3.connect(ledger)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, customer_id INTEGER, "
                "total NUMERIC)")
    con.executemany("INSERT INTO invoices VALUES (?, ?, ?)",
                    [(i, i % 7, i * 10) for i in range(1, 31)])
    con.commit()
    con.close()
    home = root / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("crm", f"sqlite://{crm}")
        ws.sources.add("ledger", f"sqlite://{ledger}", mode="sync")
    keys = {scope: new_key(home, scope) for scope in ("read", "admin")}
    with serve(home) as server:
        yield server, keys, crm, ledger


@pytest.fixture()
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


def direct(path, sql, *params):
    con = sqlite3.connect(path)
    try:
        return [tuple(str(v) for v in row) for row in con.execute(sql, params)]
    finally:
        con.close()


def shown_rows(page):
    """The preview's rows as the page shows them (cells' text)."""
    body = page.locator(".preview tbody tr")
    return [tuple(body.nth(i).locator("td").all_inner_texts()) for i in range(body.count())]


def test_browse_to_a_table_and_preview_it(served, page):
    server, keys, crm, _ = served
    sign_in(page, server.base, keys["read"], "/tables")
    tree = page.get_by_role("list", name="Tables by source and schema")
    assert tree.get_by_text("ledger", exact=True).is_visible()
    tree.get_by_role("link", name="customers").click()
    page.wait_for_url(re.compile(r".*/tables/crm\.main\.customers$"))
    assert page.get_by_role("heading", name="customers", exact=True).is_visible()
    columns = page.locator("table.columns tbody tr")
    assert columns.nth(0).locator("td").all_inner_texts() == [
        "id", "BIGINT", "INTEGER", "yes", "primary key"]
    assert columns.nth(1).locator("td").all_inner_texts()[:3] == ["name", "VARCHAR", "TEXT"]
    assert page.locator(".row-count").inner_text().startswith("Rows 1–50 of 120")
    first = direct(crm, "SELECT * FROM customers ORDER BY id LIMIT 50")
    assert shown_rows(page) == first

    page.get_by_role("link", name="Next").click()
    assert page.locator(".row-count").inner_text().startswith("Rows 51–100 of 120")
    assert shown_rows(page) == direct(crm, "SELECT * FROM customers ORDER BY id LIMIT 50 "
                                      "OFFSET 50")

    # Sort by seats (descending on the second click); ties in key order
    page.get_by_role("link", name="seats").click()
    page.get_by_role("link", name="seats ▲").click()
    assert page.locator("th[aria-sort=descending]").inner_text().startswith("seats")
    assert shown_rows(page) == direct(crm, "SELECT * FROM customers ORDER BY seats DESC, id "
                                      "LIMIT 50")

    # Filter by a column's value, bound as a parameter (then paged)
    page.get_by_label("Column").select_option("plan")
    page.get_by_label("equals").fill("team")
    page.get_by_role("button", name="Filter").click()
    assert page.locator(".row-count").inner_text().startswith(
        "Rows 1–40 of 40 where plan = team, sorted by seats descending")
    assert shown_rows(page) == direct(crm, "SELECT * FROM customers WHERE plan = ? "
                                      "ORDER BY seats DESC, id", "team")
    # A value that is not a number, for a number column: the error and its hint, no traceback
    page.get_by_label("Column").select_option("seats")
    page.get_by_label("equals").fill("many' OR 1=1 --")
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_role("alert").is_visible()
    assert "Traceback" not in page.content()
    assert page.locator(".preview tbody tr").count() == 0

    link = page.get_by_role("link", name="Query this table").get_attribute("href")
    assert link == "/workbench?sql=SELECT+%2A%0AFROM+crm.main.customers%0ALIMIT+100"


def test_names_with_quotes_spaces_and_question_marks(served, page):
    server, keys, _, _ = served
    sign_in(page, server.base, keys["read"], "/tables")
    page.get_by_role("link", name='odd "name"?').click()
    assert page.get_by_role("heading", name='odd "name"?').is_visible()
    page.get_by_role("link", name='c"d').click()
    page.get_by_label("Column").select_option("a b")
    page.get_by_label("equals").fill("3")
    page.get_by_role("button", name="Filter").click()
    assert shown_rows(page) == [("3", "x")]
    assert page.locator(".row-count").inner_text().startswith("Rows 1–1 of 1 where a b = 3")


def test_a_customer_named_with_html_shows_as_text(served, page):
    server, keys, _, _ = served
    sign_in(page, server.base, keys["read"], "/tables")
    page.goto(f"{server.base}/tables/crm.main.customers?column=id&value=77")
    cell = page.locator(".preview tbody td").nth(1)
    assert cell.inner_text() == XSS
    assert page.locator("main img").count() == 0
    page.wait_for_timeout(200)
    assert page.dialogs == []


def test_test_and_sync_now_a_sync_mode_source(served, page):
    server, keys, _, ledger = served
    sign_in(page, server.base, keys["admin"], "/sources")
    card = page.locator("#source-ledger")
    assert card.get_by_text("Not synced yet").is_visible()
    card.get_by_role("button", name="Test connection").click()
    health = card.locator(".health")
    health.get_by_text(re.compile(r"^reachable: SQLite ")).wait_for()

    card.get_by_role("button", name="Sync now").click()
    done = page.locator("#source-ledger .progress li.done")
    done.wait_for(timeout=30_000)
    assert re.match(r"done: ledger synced, 30 rows in ", done.inner_text())
    # The card comes back with the replica's watermark
    row = page.locator("#source-ledger tbody tr")
    row.first.wait_for()
    cells = row.first.locator("td").all_inner_texts()
    assert cells[:3] == ["ledger.main.invoices", "full", "30"]
    assert page.locator("#source-ledger .progress li.done").is_visible()  # (kept)
    # The replica holds the rows: the source changes, the replica does not until a sync
    con = sqlite3.connect(ledger)
    con.execute("DELETE FROM invoices WHERE id > 10")
    con.commit()
    con.close()
    answer = page.request.post(
        f"{server.base}/v1/query", data={"sql": "SELECT count(*) AS n, sum(total) AS t "
                                         "FROM ledger.main.invoices"},
        headers={"X-CSRF-Token": page.locator("body").get_attribute("data-csrf")})
    assert answer.status == 200
    [[n, total]] = answer.json()["rows"]
    assert (n, Decimal(total)) == (30, 4650)  # (the source now holds 10 rows)


def test_change_a_sources_mode(served, page):
    server, keys, _, _ = served
    sign_in(page, server.base, keys["admin"], "/sources")
    card = page.locator("#source-crm")
    assert card.locator(".mode").inner_text() == "direct"
    card.get_by_label("Mode").select_option("sync")
    card.get_by_role("button", name="Change mode").click()
    page.wait_for_url(re.compile(r".*/sources#source-crm$"))
    assert page.locator("#source-crm .mode").inner_text() == "sync"
    assert page.locator("#source-crm").get_by_role("button", name="Sync now").is_visible()
    page.locator("#source-crm").get_by_label("Mode").select_option("direct")
    page.locator("#source-crm").get_by_role("button", name="Change mode").click()
    page.wait_for_url(re.compile(r".*/sources#source-crm$"))
    assert page.locator("#source-crm .mode").inner_text() == "direct"


def test_a_read_key_sees_no_controls_and_a_forced_post_is_refused(served, page):
    server, keys, _, _ = served
    sign_in(page, server.base, keys["read"], "/sources")
    assert page.locator("#source-ledger").is_visible()
    for name in ("Test connection", "Sync now", "Change mode"):
        assert page.get_by_role("button", name=name).count() == 0
    assert page.get_by_label("Mode").count() == 0
    csrf = page.locator("body").get_attribute("data-csrf")
    for path, form in (("/sources/ledger/mode", {"csrf": csrf, "mode": "direct"}),
                       ("/sources/ledger/test", {"csrf": csrf})):
        answer = page.request.post(f"{server.base}{path}", form=form)
        assert answer.status == 403 and answer.json()["title"] == "ScopeError", path
    answer = page.request.post(f"{server.base}/v1/sync", data={"sources": ["ledger"]},
                               headers={"X-CSRF-Token": csrf})
    assert answer.status == 403 and answer.json()["title"] == "ScopeError"


@pytest.fixture(scope="module")
def served_with_schedule(tmp_path_factory):
    """A sync-mode SQLite source whose file is gone, served with the sync schedule on."""
    root = tmp_path_factory.mktemp("nav-sources-schedule")
    lite = root / "gone.db"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    home = root / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("gone", f"sqlite://{lite}", mode="sync")
    lite.unlink()
    key = new_key(home, "admin")
    with serve(home, "--sync") as server:
        yield server, key


def test_the_last_error_shows_with_its_hint(served_with_schedule, page):
    server, key = served_with_schedule
    sign_in(page, server.base, key, "/sources")
    card = page.locator("#source-gone")
    # The schedule's first turn (three attempts, 3 s of waits) ends with the error
    for _ in range(20):
        if re.search(r"next sync\s+in", card.locator(".facts").inner_text()):
            break
        page.wait_for_timeout(500)
        page.reload()
    facts = card.locator(".facts").inner_text()
    assert "does not exist (check the path in the source URI)" in facts
    assert re.search(r"next sync\s+in \d+ s \(every 900 s\)", facts), facts
    assert re.search(r"last sync\s+never", facts), facts

    card.get_by_role("button", name="Test connection").click()
    alert = card.locator(".health").get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().endswith("does not exist (check the path in the source URI)")

    card.get_by_role("button", name="Sync now").click()
    log = card.locator(".progress")
    log.locator("li.error").wait_for(timeout=30_000)
    lines = log.locator("li").all_inner_texts()
    assert any(line.startswith("attempt 1 failed, trying again in 1") for line in lines), lines
    assert lines[-1].endswith("does not exist (check the path in the source URI)"), lines


def test_an_unknown_table_is_an_error_page_with_its_hint(served, page):
    server, keys, _, _ = served
    sign_in(page, server.base, keys["read"], "/tables")
    answer = page.goto(f"{server.base}/tables/crm.main.customer")
    assert answer.status == 404
    alert = page.get_by_role("alert").inner_text()
    assert "crm.main.customer" in alert and "did you mean" in alert, alert
