"""The navigator's Events and Uploads pages in a real browser (Debian's Chromium through
Playwright) against a real ``meterql serve``: a CSV with one bad row previewed (sniffed types,
the bad row's line and reason) and stored (the good rows kept, the bad one reported); a stream's
recent events and chart, an event voided from its row; a read key seeing no upload or void
control and a forced request refused. What the workspace holds is checked with the library once
the server has stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import meterql
from tests.support.browser import sign_in
from tests.support.served import new_key, serve

XSS = "<img src=x onerror=alert(1)>"
CSV = ("customer,amount,day\n"
       f"{XSS},10.50,2026-01-01\n"
       "beta,0.1234567891,2026-01-02\n"  # line 3: more decimal places than DECIMAL(38,9) keeps
       "gamma,3,2026-01-03\n")


@pytest.fixture()
def home(tmp_path):
    """A workspace with a stream of five events in the last hours, and a read and an ingest key."""
    home = tmp_path / "home"
    now = datetime.now(UTC).replace(microsecond=0)
    with meterql.connect(home) as ws:
        outcomes = ws.events.ingest("api_calls", [
            {"id": f"e{i}", "timestamp": (now - timedelta(hours=i)).isoformat(),
             "customer_id": XSS if i == 3 else f"c{i % 2}", "qty": i} for i in range(1, 6)])
        assert all(o.status == "accepted" for o in outcomes)
    return home


@pytest.fixture()
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and not m.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
            and not r.url.endswith("/favicon.ico") else None)
    page.on("dialog", lambda d: d.accept())  # the void button asks first
    yield page
    context.close()
    assert errors == []  # no script failed (and no CSP violation was reported)


def _drop(page, selector: str, name: str, text: str) -> None:
    """Drop a file named ``name`` holding ``text`` onto ``selector``, as a person would."""
    transfer = page.evaluate_handle(
        "([name, text]) => { const dt = new DataTransfer();"
        " dt.items.add(new File([text], name, {type: 'text/csv'})); return dt; }", [name, text])
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_upload_with_one_bad_row_is_previewed_then_its_good_rows_stored(home, page):
    ingest = new_key(home, "ingest")
    with serve(home) as server:
        sign_in(page, server.base, ingest, then="/uploads")
        assert page.get_by_label("Choose a CSV file").is_visible()  # the keyboard's way in
        _drop(page, "#drop-zone", "Prices.csv", CSV)
        assert page.locator("#upload-table").input_value() == "prices"  # from the file's name
        summary = page.locator("#preview-summary")
        summary.wait_for()
        assert summary.inner_text().startswith("2 rows fit, 1 rejected; into "
                                               "local.uploads.prices (a new table)")
        types = page.locator("#preview-types tbody tr")
        assert [types.nth(i).inner_text().split("\t") for i in range(types.count())] == [
            ["customer", "VARCHAR"], ["amount", "DECIMAL(38,9)"], ["day", "DATE"]]
        rows = page.locator("#preview-rows tbody tr")
        assert rows.count() == 2
        assert rows.first.locator("td").first.inner_text() == XSS  # shown as text
        assert page.locator("#preview img").count() == 0
        bad = page.locator("#preview-rejected tbody tr")
        assert bad.count() == 1
        assert bad.first.inner_text().split("\t") == [
            "3", "amount", "0.1234567891",
            "0.1234567891 has more than 9 decimal places (DECIMAL(38,9))"]
        # nothing stored by the preview
        listed = page.request.get(f"{server.base}/v1/tables")
        assert "local.uploads.prices" not in listed.text()

        page.get_by_role("button", name="Store 2 good rows").click()
        result = page.locator("#result-summary")
        result.wait_for()
        assert result.inner_text() == ("2 rows stored in local.uploads.prices (append), "
                                       "1 rejected.")
        assert page.locator("#result-rejected tbody tr").inner_text().startswith("3\tamount")
        assert page.locator("#preview").is_hidden()
        listed = page.locator("#uploaded-tables").get_by_role("cell", name="local.uploads.prices")
        listed.wait_for()  # the list of uploaded tables is read again
        names = [t["name"] for t in page.request.get(f"{server.base}/v1/tables").json()]
        assert "local.uploads.prices" in names
    with meterql.connect(home) as ws:
        stored = ws.query("SELECT customer, amount FROM local.uploads.prices "
                          "ORDER BY customer").rows()
    assert [(c, str(a)) for c, a in stored] == [(XSS, "10.500000000"), ("gamma", "3.000000000")]


def test_events_page_shows_a_stream_and_voids_an_event_from_its_row(home, page):
    ingest = new_key(home, "ingest")
    with serve(home) as server:
        sign_in(page, server.base, ingest, then="/events")
        assert page.get_by_role("link", name="api_calls").is_visible()
        assert page.get_by_role("heading", name="api_calls · 5 events").is_visible()
        table = page.locator("table.events")
        assert table.locator("thead th").all_inner_texts() == [
            "id", "timestamp", "customer_id", "qty", "actions"]
        ids = table.locator("tbody tr td:first-child").all_inner_texts()
        assert ids == ["e1", "e2", "e3", "e4", "e5"]  # newest first
        assert table.get_by_role("cell", name=XSS, exact=True).is_visible()
        assert table.locator("img").count() == 0
        canvas = page.locator("canvas#events-chart")
        assert canvas.is_visible()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
        drawn = canvas.evaluate("c => c.getContext('2d').getImageData(0, 0, c.width, c.height)"
                                ".data.some(v => v !== 0)")
        assert drawn  # Chart.js drew on it
        assert page.get_by_role("heading", name="Backfills").is_visible()

        page.get_by_role("button", name="Void e2").click()
        page.wait_for_url("**voided=e2")
        assert page.get_by_role("status").inner_text() == "Event e2 was voided."
        assert page.get_by_role("heading", name="api_calls · 4 events").is_visible()
        assert table.locator("tbody tr td:first-child").all_inner_texts() == [
            "e1", "e3", "e4", "e5"]

        page.get_by_role("link", name="Amend e4").click()
        editor = page.get_by_label("The whole corrected event")
        assert '"qty": 4' in editor.input_value()
        editor.fill(editor.input_value().replace('"qty": 4', '"qty": 40'))
        page.get_by_role("button", name="Save amendment").click()
        page.wait_for_url("**amended=e4")
        row = table.locator("tbody tr", has=page.get_by_role("cell", name="e4", exact=True))
        assert row.locator("td").nth(3).inner_text() == "40"
    with meterql.connect(home) as ws:
        left = ws.query("SELECT id, qty FROM local.events.api_calls ORDER BY id").rows()
        history = ws.events.history("api_calls")
    assert left == [("e1", 1), ("e3", 3), ("e4", 40), ("e5", 5)]
    assert {h["id"] for h in history} >= {"e2", "e4"}


def test_a_read_key_sees_no_upload_or_void_control_and_a_forced_post_is_refused(home, page):
    read = new_key(home, "read")
    with serve(home) as server:
        sign_in(page, server.base, read, then="/events")
        assert page.get_by_role("heading", name="api_calls · 5 events").is_visible()
        assert page.get_by_role("button", name="Void e1").count() == 0
        assert page.get_by_role("link", name="Amend e1").count() == 0
        page.goto(f"{server.base}/uploads")
        assert page.locator("#upload-form").count() == 0
        assert page.get_by_text("Loading a CSV file needs an ingest or admin key").is_visible()
        csrf = page.locator("body").get_attribute("data-csrf")
        forced = [
            page.request.post(f"{server.base}/events/api_calls/e1/void",
                              form={"csrf": csrf, "page_number": "1"}),
            page.request.post(f"{server.base}/v1/tables/prices/upload?dry_run=true",
                              headers={"X-CSRF-Token": csrf}, multipart={"file": {
                                  "name": "p.csv", "mimeType": "text/csv",
                                  "buffer": CSV.encode()}}),
            page.request.post(f"{server.base}/v1/tables/prices/upload",
                              headers={"X-CSRF-Token": csrf}, multipart={"file": {
                                  "name": "p.csv", "mimeType": "text/csv",
                                  "buffer": CSV.encode()}}),
        ]
        for answer in forced:
            assert answer.status == 403 and answer.json()["title"] == "ScopeError"
    with meterql.connect(home) as ws:
        assert ws.query("SELECT count(*) FROM local.events.api_calls").rows() == [(5,)]
        assert not [t for t in ws.tables("local") if t.schema == "uploads"]


def test_preview_reads_as_the_load_does_and_stores_nothing(tmp_path):
    with meterql.connect(tmp_path / "home") as ws:
        shown = ws.uploads.preview(CSV.encode(), "prices")
        assert shown["columns"] == {"customer": "VARCHAR", "amount": "DECIMAL(38,9)",
                                    "day": "DATE"}
        assert shown["good"] == 2 and [r["line"] for r in shown["rejected"]] == [3]
        assert not [t for t in ws.tables("local") if t.schema == "uploads"]
        report = ws.uploads.load(CSV.encode(), "prices", keep_good=True)
        assert report.rows == shown["good"] and report.rejected == shown["rejected"]
        # appending reads with the table's types, as the load would
        again = ws.uploads.preview(b"customer,amount,day\nx,1.5,2026-02-01\n", "prices")
        assert again["exists"] and again["columns"]["amount"] == "DECIMAL(38,9)"


def test_backfills_are_listed_with_their_state(home):
    with meterql.connect(home) as ws:
        now = datetime.now(UTC)
        first = ws.events.open_backfill("api_calls", now - timedelta(days=90),
                                        now - timedelta(days=80))
        second = ws.events.open_backfill("api_calls", now - timedelta(days=70),
                                         now - timedelta(days=60))
        ws.events.close_backfill(first)
        listed = ws.events.backfills("api_calls")
    assert {(b["id"], b["state"]) for b in listed} == {(first, "closed"), (second, "open")}


def test_a_file_chosen_with_the_input_upserts_by_its_key(home, page):
    ingest = new_key(home, "ingest")
    with meterql.connect(home) as ws:
        ws.uploads.load(b"customer,amount\nacme,1.00\nbeta,2.00\n", "credits")
    with serve(home) as server:
        sign_in(page, server.base, ingest, then="/uploads")
        page.get_by_role("textbox", name="Table").fill("credits")
        page.get_by_label("Mode").select_option("upsert")
        page.get_by_label("Key columns").fill("customer")
        page.get_by_label("Choose a CSV file").set_input_files(files=[{
            "name": "credits.csv", "mimeType": "text/csv",
            "buffer": b"customer,amount\nbeta,20.00\ngamma,3.00\n"}])
        summary = page.locator("#preview-summary")
        summary.wait_for()
        assert summary.inner_text().startswith(
            "2 rows fit, 0 rejected; into local.uploads.credits (which exists: upsert)")
        assert page.locator("#preview-rejected-block").is_hidden()
        page.get_by_role("button", name="Store", exact=True).click()
        page.locator("#result-summary").wait_for()
        assert page.locator("#result-summary").inner_text() == (
            "2 rows stored in local.uploads.credits (upsert), 0 rejected.")
    with meterql.connect(home) as ws:
        rows = ws.query("SELECT customer, amount FROM local.uploads.credits "
                        "ORDER BY customer").rows()
    assert [(c, str(a)) for c, a in rows] == [("acme", "1.000000000"), ("beta", "20.000000000"),
                                              ("gamma", "3.000000000")]
