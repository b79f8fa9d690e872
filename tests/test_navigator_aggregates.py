"""The navigator's Aggregates page in a real browser (Debian's Chromium through Playwright)
against a real ``meterql serve`` over a DuckDB usage table: create an aggregate in the editor,
dry-run a changed version and check its diff against the library's own dry run, save it,
evaluate it for a period and zone and check the table against the library's evaluation, the
chart drawn and the log's hash; a read key without a save control (a forced save: 403); an
SQL error marked in the editor."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb
import httpx
import pytest

import meterql
from meterql.aggregates import parse_definition
from meterql.aggregates.plan import dry_run_plan
from meterql.encoders import json_value
from meterql.server.navigator.pages.aggregates import when
from tests.support.browser import sign_in
from tests.support.served import auth, new_key, serve

XSS = "<img src=x onerror=alert(1)>"
V1 = """-- name: calls
-- description: Billable API calls
-- unit: call
SELECT customer_id, sum(n) AS quantity
FROM dk.main.usage
WHERE ts >= :period_start AND ts < :period_end
GROUP BY customer_id
"""
# The change: calls by the hour, so each window's sums move (and 'beta' counts double).
V2 = V1.replace("sum(n) AS quantity",
                "sum(CASE WHEN customer_id = 'beta' THEN 2 * n ELSE n END) AS quantity")
PERIOD = {"from": "2026-10-01", "to": "2026-10-04", "tz": "Europe/Berlin", "window": "day"}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A workspace reading a DuckDB usage table, an aggregate 'seeded', and a read and an admin
    key."""
    root = tmp_path_factory.mktemp("nav-aggregates")
    path = root / "usage.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE usage (customer_id VARCHAR, ts TIMESTAMPTZ, n INTEGER)")
    start = datetime(2026, 9, 30, 20, tzinfo=UTC)
    rows = [(("acme", "beta", XSS)[i % 3], start + timedelta(hours=5 * i), i % 7 + 1)
            for i in range(40)]
    con.executemany("INSERT INTO usage VALUES (?, ?, ?)", rows)
    con.close()
    home = root / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("dk", f"duckdb://{path}")
        ws.aggregates.apply_definitions([("seeded.sql", V1.replace("calls", "seeded"))])
    keys = {scope: new_key(home, scope) for scope in ("read", "admin")}
    return home, keys


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    context.close()


def type_definition(page, text: str) -> None:
    """Replace the editor's text with ``text`` (as pasted: no completion or indentation)."""
    page.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def fill_period(page, period: dict[str, str], customers: str = "") -> None:
    page.get_by_label("From (inclusive)").fill(period["from"])
    page.get_by_label("To (exclusive)").fill(period["to"])
    page.get_by_label("Time zone").fill(period["tz"])
    page.get_by_label("Window").select_option(period.get("window", ""))
    page.get_by_label("Customers").fill(customers)


def table_rows(page, selector: str) -> tuple[list[str], list[list[str]]]:
    head = page.locator(f"{selector} thead th").all_inner_texts()
    body = [row.locator("td").all_inner_texts()
            for row in page.locator(f"{selector} tbody tr").all()]
    return head, body


def shown(value) -> str:
    """A value as the page writes it."""
    value = json_value(when(value))
    return "" if value is None else str(value)


def test_create_dry_run_save_evaluate(home, page):
    home_path, keys = home
    start, end = date(2026, 10, 1), date(2026, 10, 4)
    with serve(home_path) as server:
        sign_in(page, server.base, keys["admin"], then="/aggregates")
        page.get_by_role("link", name="New aggregate").click()
        page.wait_for_url(f"{server.base}/aggregates/+new")
        type_definition(page, V1)
        page.locator("#check[data-state=valid]").wait_for()
        assert page.locator("#check").inner_text() == "✓ Valid: aggregate calls"
        page.get_by_role("button", name="Save as a new version").click()
        page.wait_for_url(f"{server.base}/aggregates/calls/versions/1")
        assert page.get_by_role("heading", level=1).inner_text() == "calls version 1 of 1"
        assert "sum(n) AS quantity" in page.get_by_label("SQL of version 1").inner_text()

        # A changed version: the dry run's summary first, then the rows
        page.get_by_role("link", name="New version").click()
        page.wait_for_url(f"{server.base}/aggregates/calls/edit")
        type_definition(page, V2)
        page.locator("#check[data-state=valid]").wait_for()
        fill_period(page, PERIOD)
        page.get_by_role("button", name="Dry run", exact=True).click()
        page.locator("#dry-result").wait_for()
        customers_line = page.locator("[data-summary=customers]").inner_text()
        total_line = page.locator("[data-summary=total]").inner_text()
        dry_head, dry_rows = table_rows(page, "#dry-table")
        assert page.dialogs == []
    # The library's own dry run of the same draft against version 1
    with meterql.connect(home_path) as ws:
        draft = parse_definition(V2)
        out = ws.aggregates.dry_run(draft, start, end, tz=PERIOD["tz"], window="day")
        plan = dry_run_plan(out, draft)
        assert plan.against == 1 and plan.customers_changed == 1
        counts = plan.counts
        assert customers_line == (
            f"1 customer changed; {counts['added']} to add, {counts['changed']} to change, "
            f"{counts['removed']} to remove, {counts['unchanged']} unchanged.")
        summary = json_value(plan.summary())
        assert total_line == (f"Total quantity: {summary['current_total']} → "
                              f"{summary['draft_total']} (delta +{summary['delta']})")
        assert plan.delta > 0
        assert dry_head == plan.changes.column_names
        assert dry_rows == [[shown(v) for v in row.values()]
                            for row in plan.changes.to_pylist()]
        assert len(dry_rows) == 3 and {r[1] for r in dry_rows} == {"beta"}  # one per day
        assert ws.aggregates.get("calls").version == 1  # a dry run saves nothing

    with serve(home_path) as server:
        sign_in(page, server.base, keys["admin"], then="/aggregates/calls/edit")
        type_definition(page, V2)
        page.locator("#check[data-state=valid]").wait_for()
        page.get_by_role("button", name="Save as a new version").click()
        page.wait_for_url(f"{server.base}/aggregates/calls/versions/2")
        assert page.get_by_role("heading", level=1).inner_text() == "calls version 2 of 2"
        page.goto(f"{server.base}/aggregates")
        row = page.locator("tr", has=page.get_by_role("link", name="calls", exact=True))
        assert row.locator("td").all_inner_texts()[:3] == ["calls", "2", "2"]

        page.get_by_role("link", name="calls", exact=True).click()
        fill_period(page, PERIOD)
        page.get_by_role("button", name="Evaluate").click()
        page.locator("#eval-status[data-hash]").wait_for()
        shown_hash = page.locator("#eval-status").get_attribute("data-hash")
        eval_head, eval_rows = table_rows(page, "#eval-table")
        # The customer named like markup is text in the table, and nothing ran
        assert page.get_by_role("cell", name=XSS).first.is_visible()
        assert page.dialogs == []
        # The chart is drawn: its canvas holds non-blank pixels
        painted = page.evaluate("""() => {
            const c = document.getElementById('eval-chart');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
            return [c.width, c.height, n]; }""")
        assert painted[0] > 100 and painted[1] > 100 and painted[2] > 1000
        # The log (refreshed after the evaluation) lists it with its hash
        page.locator("#log code.hash", has_text=shown_hash).wait_for()
        log_row = page.locator("#log tbody tr").first.locator("td").all_inner_texts()
        assert log_row[1:6] == ["2", "[2026-10-01, 2026-10-04)", "Europe/Berlin", "day", "all"]
        assert log_row[8] == shown_hash
        api_log = httpx.get(f"{server.base}/v1/evaluations?aggregate=calls",
                            headers=auth(keys["read"])).json()
        assert api_log[0]["result_hash"] == shown_hash
    # The library's evaluation of the same period: the same rows and the same hash
    with meterql.connect(home_path) as ws:
        ev = ws.aggregates.evaluate("calls", start, end, tz=PERIOD["tz"], window="day")
        assert ev.result_hash == shown_hash
        assert eval_head == ev.in_zone().column_names
        assert eval_rows == [[shown(v) for v in row.values()]
                             for row in ev.in_zone().to_pylist()]
        assert len(eval_rows) == 9  # 3 days x 3 customers
        quantities = [Decimal(r[3]) for r in eval_rows]
        assert sum(quantities) == sum(Decimal(str(r["quantity"])) for r in ev.rows())
        assert ws.aggregates.log("calls")[1]["result_hash"] == shown_hash


def test_a_read_key_sees_no_save_control_and_a_forced_save_is_refused(home, page):
    home_path, keys = home
    with serve(home_path) as server:
        sign_in(page, server.base, keys["read"], then="/aggregates")
        assert page.get_by_role("link", name="seeded", exact=True).is_visible()
        assert page.get_by_role("link", name="New aggregate").count() == 0
        page.get_by_role("link", name="seeded", exact=True).click()
        page.get_by_role("link", name="Draft and dry-run a change").click()
        page.wait_for_url(f"{server.base}/aggregates/seeded/edit")
        page.locator("#check[data-state=valid]").wait_for()  # a reader may check and dry-run
        assert page.get_by_role("button", name="Save as a new version").count() == 0
        csrf = page.locator("body").get_attribute("data-csrf")
        forced = page.request.post(f"{server.base}/aggregates/save",
                                   data={"text": V2.replace("calls", "seeded")},
                                   headers={"X-CSRF-Token": csrf})
        assert forced.status == 403 and forced.json()["title"] == "ScopeError"
        api = httpx.post(f"{server.base}/v1/aggregates/apply", headers=auth(keys["read"]),
                         json={"definitions": [{"origin": "s.sql", "text": V2}]})
        assert api.status_code == 403 and api.json()["title"] == forced.json()["title"]
        versions = httpx.get(f"{server.base}/v1/aggregates/seeded",
                             headers=auth(keys["read"])).json()
        assert [v["version"] for v in versions] == [1]
        # A reader evaluates a customer list per day: a zero where one has no usage, the
        # table a page at a time
        page.goto(f"{server.base}/aggregates/seeded")
        fill_period(page, {**PERIOD, "from": "2026-09-01", "to": "2026-11-15"}, "acme,\nbeta")
        page.get_by_role("button", name="Evaluate").click()
        page.locator("#eval-status[data-hash]").wait_for()
        pager = page.locator(".pager").first
        assert pager.locator("span").inner_text().strip() == "rows 1–100 of 150"
        assert pager.get_by_role("button", name="Previous").is_disabled()
        first = table_rows(page, "#eval-table")[1]
        assert first[0] == ["2026-09-01", "2026-09-02", "acme", "0"] and len(first) == 100
        pager.get_by_role("button", name="Next").click()
        rest = table_rows(page, "#eval-table")[1]
        assert len(rest) == 50 and rest[-1][:3] == ["2026-11-14", "2026-11-15", "beta"]
        # An error shows with its hint, not a traceback
        fill_period(page, {**PERIOD, "tz": "Mars/Olympus"})
        page.get_by_role("button", name="Evaluate").click()
        alert = page.locator("#eval-error")
        alert.wait_for()
        assert "Mars/Olympus" in alert.inner_text() and "Hint: " in alert.inner_text()
        assert "Traceback" not in alert.inner_text()
        # An unknown aggregate: a 404 page naming the ones there are
        answer = page.goto(f"{server.base}/aggregates/seedd")
        assert answer.status == 404
        assert page.get_by_role("alert").inner_text() == (
            "no aggregate named 'seedd'\n\nHint: did you mean 'seeded'?")


def test_an_sql_error_is_marked_in_the_editor(home, page):
    home_path, keys = home
    with serve(home_path) as server:
        sign_in(page, server.base, keys["admin"], then="/aggregates/+new")
        type_definition(page, V1.replace("sum(n)", "sum(nn)"))
        page.locator("#check[data-state=invalid]").wait_for()
        said = page.locator("#check").inner_text()
        assert "no column named 'nn'" in said and "line 4, column 25" in said
        mark = page.locator(".error-mark")
        mark.wait_for()
        assert mark.get_attribute("data-text") == "nn"
        # The mark lies over the word in the editor
        word = page.locator(".cm-line").nth(3)
        assert word.inner_text().startswith("SELECT customer_id, sum(nn)")
        box, line_box = mark.bounding_box(), word.bounding_box()
        assert line_box["y"] <= box["y"] + box["height"] / 2 <= line_box["y"] + line_box["height"]
        page.get_by_role("button", name="Show the error in the editor").click()
        assert page.evaluate("() => window.getSelection().toString()") == "nn"
        # Fixed, the mark goes and the draft is valid
        type_definition(page, V1)
        page.locator("#check[data-state=valid]").wait_for()
        assert mark.is_hidden()
        page.screenshot(path="/tmp/nav-aggregates-editor.png", full_page=True)
