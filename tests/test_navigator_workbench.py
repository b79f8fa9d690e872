"""The SQL workbench in a real browser (Debian's Chromium through Playwright) against a real
``meterql serve`` over a PostgreSQL source: a query with a parameter, an error marked in the
editor, a slow query cancelled at PostgreSQL, a CSV download, and 10,000 rows in the grid."""

from __future__ import annotations

import csv
import io
import time
from urllib.parse import quote

import pytest

import meterql
from tests.support.browser import sign_in
from tests.support.served import new_key, serve
from tests.support.waiting import sleeping_backends, wait_until

XSS = "<img src=x onerror=alert(1)>"
SETUP = (
    "CREATE TABLE usage (id int PRIMARY KEY, customer_id text, amount numeric(12,2));"
    "INSERT INTO usage SELECT g, 'c' || (g % 3), g * 1.5 FROM generate_series(1, 30) g;"
    f"INSERT INTO usage VALUES (31, '{XSS}', 7);"
    "CREATE VIEW slow AS SELECT 1 AS x FROM pg_sleep(30);"
    "CREATE TABLE big AS SELECT g AS id, 'c' || (g % 100) AS customer_id "
    "FROM generate_series(1, 12000) g;"
)


@pytest.fixture(scope="module")
def served(pg_cluster, pg_database, tmp_path_factory):
    """A workspace with a PostgreSQL source ``pg`` in direct mode, served, and a read key."""
    db = pg_database("workbench", SETUP)
    home = tmp_path_factory.mktemp("workbench") / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("pg", pg_cluster.uri(db))
    key = new_key(home, "read")
    with serve(home) as server:
        yield server, key, db


@pytest.fixture()
def page(browser, served):
    server, key, _ = served
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, server.base, key, "/workbench")
    yield page
    assert dialogs == []  # no script of a value ever ran
    context.close()


def open_with(page, base: str, sql: str) -> None:
    page.goto(f"{base}/workbench?sql={quote(sql)}")
    page.wait_for_selector("body[data-workbench=ready]")


def grid_rows(page) -> list[list[str]]:
    return page.eval_on_selector_all(
        "#wb-grid .tabulator-row",
        "rows => rows.map(r => Array.from(r.querySelectorAll('.tabulator-cell'), "
        "c => c.textContent))")


def psql_rows(pg_cluster, db: str, sql: str) -> list[list[str]]:
    out = pg_cluster.run_sql(sql, dbname=db, tuples_only=True)
    return [line.split("|") for line in out.splitlines() if line]


def test_a_query_with_a_parameter_shows_its_rows_and_types(served, page, pg_cluster):
    server, _, db = served
    sql = ("SELECT id, customer_id, amount FROM pg.public.usage\n"
           "WHERE customer_id = :customer OR id = :extra ORDER BY id")
    open_with(page, server.base, sql)
    page.get_by_role("button", name="Run").click()  # asks for the values first
    page.get_by_text("Give a value for :customer, :extra, then run again.").wait_for()
    assert page.get_by_label(":customer", exact=True).evaluate("e => e === document.activeElement")
    assert page.locator("#wb-results").is_hidden()
    page.get_by_label(":customer", exact=True).fill("c1")
    page.get_by_label(":extra", exact=True).fill("31")
    page.keyboard.press("Enter")  # Enter in a parameter runs, like Ctrl-Enter in the editor
    page.wait_for_selector("#wb-results[data-rows]")
    expected = psql_rows(pg_cluster, db, "SELECT id, customer_id, amount FROM usage "
                         "WHERE customer_id = 'c1' OR id = 31 ORDER BY id")
    assert len(expected) == 11
    assert grid_rows(page) == expected
    assert page.get_by_role("status").inner_text().startswith("11 rows · ")
    headers = page.locator("#wb-grid .tabulator-col .wb-head").all_inner_texts()
    assert [h.split("\n") for h in headers] == [
        ["id", "INTEGER"], ["customer_id", "VARCHAR"], ["amount", "DECIMAL(12,2)"]]
    assert page.get_by_role("gridcell", name=XSS).is_visible()  # the name shows as text
    assert page.locator("#wb-grid img").count() == 0
    assert page.locator("#wb-truncated").is_hidden()

    # A new value and Ctrl-Enter from the editor run it again
    page.get_by_label(":customer", exact=True).fill("c2")
    page.get_by_label(":extra", exact=True).fill("")  # empty: NULL
    page.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#wb-results[data-rows='10']")
    assert grid_rows(page) == psql_rows(pg_cluster, db, "SELECT id, customer_id, amount "
                                        "FROM usage WHERE customer_id = 'c2' ORDER BY id")


def test_an_error_shows_its_message_and_marks_its_position(served, page):
    server, _, _ = served
    open_with(page, server.base, "SELECT id,\n       nosuch_column\nFROM pg.public.usage")
    page.get_by_role("button", name="Run").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    shown = alert.inner_text()
    assert "nosuch_column" in shown and "line 2, column 8" in shown
    assert "Traceback" not in shown
    assert page.locator(".wb-error-hint").inner_text().startswith("Hint: ")
    assert page.evaluate("window.getSelection().toString()") == "nosuch_column"
    assert page.locator("#wb-results").is_hidden()


def test_cancel_stops_a_slow_query_at_postgresql(served, page, pg_cluster):
    server, _, db = served
    open_with(page, server.base, "SELECT x FROM pg.public.slow")
    page.get_by_role("button", name="Run").click()
    assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 1, timeout=10)
    assert page.get_by_role("button", name="Run").is_disabled()
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("Cancelled: the query was stopped at its sources.").wait_for(timeout=10_000)
    assert wait_until(lambda: sleeping_backends(pg_cluster, db) == 0, timeout=5)
    assert page.get_by_role("button", name="Run").is_enabled()
    assert page.get_by_role("button", name="Cancel").is_disabled()


def test_download_csv_gives_the_rows_of_the_query(served, page, pg_cluster):
    server, _, db = served
    open_with(page, server.base, "SELECT id, customer_id, amount FROM pg.public.usage ORDER BY id")
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#wb-results[data-rows='31']")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "result.csv"
    text = open(download.path(), encoding="utf-8").read()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "customer_id", "amount"]
    assert rows[1:] == psql_rows(pg_cluster, db, "SELECT id, customer_id, amount FROM usage "
                                 "ORDER BY id")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download Parquet").click()
    import pyarrow.parquet as pq

    table = pq.read_table(info.value.path())
    assert table.num_rows == 31 and table.column_names == ["id", "customer_id", "amount"]
    # A forced download without the session's CSRF token is refused as the API refuses it
    forced = page.request.post(f"{server.base}/workbench/download",
                               data={"sql": "SELECT 1 AS one", "format": "csv"})
    assert forced.status == 403 and forced.json()["title"] == "CsrfError"


def test_the_page_answers_fast(served, page):
    server, _, _ = served
    page.request.get(f"{server.base}/workbench")  # (the first opens the engine's functions)
    started = time.monotonic()
    answer = page.request.get(f"{server.base}/workbench?sql=SELECT%201")
    assert answer.status == 200 and time.monotonic() - started < 0.25


def test_ten_thousand_rows_render_and_scroll(served, page):
    server, _, _ = served
    open_with(page, server.base, "SELECT id, customer_id FROM pg.public.big ORDER BY id")
    assert page.get_by_label("Row limit").input_value() == "10000"
    page.get_by_role("button", name="Run").click()
    page.wait_for_selector("#wb-results[data-rows='10000']", timeout=20_000)
    assert page.get_by_role("status").inner_text().startswith("10,000 rows · ")
    assert page.locator("#wb-truncated").inner_text().startswith("Truncated: only the first "
                                                                 "10,000 rows are shown.")
    assert page.locator("#wb-grid .tabulator-row").count() < 200  # virtual rendering
    started = time.monotonic()
    holder = "#wb-grid .tabulator-tableholder"
    page.eval_on_selector(holder, "h => { h.scrollTop = h.scrollHeight; }")
    page.locator("#wb-grid .tabulator-cell", has_text="10000").first.wait_for(timeout=5_000)
    page.eval_on_selector(holder, "h => { h.scrollTop = 0; }")
    page.locator("#wb-grid .tabulator-cell").get_by_text("1", exact=True).first.wait_for(
        timeout=5_000)
    assert time.monotonic() - started < 3.0
    # The page still answers at once (no long task holding its main thread)
    started = time.monotonic()
    assert page.evaluate("1 + 1") == 2
    assert time.monotonic() - started < 0.5


def test_the_editor_completes_columns_of_the_tables_named_and_functions(served, page):
    server, _, _ = served
    open_with(page, server.base, "SELECT \nFROM pg.public.usage")
    page.locator(".cm-content").click()
    page.keyboard.press("Control+Home")
    page.keyboard.press("End")
    page.keyboard.type("cust")
    options = page.locator(".cm-tooltip-autocomplete li")
    options.first.wait_for()
    assert options.first.inner_text().startswith("customer_id")
    page.wait_for_timeout(200)  # (a popup takes no keys in its first 75 ms)
    page.keyboard.press("Enter")
    page.keyboard.type(", string_ag")
    page.locator(".cm-tooltip-autocomplete li", has_text="string_agg").first.wait_for()
    page.wait_for_timeout(200)
    page.keyboard.press("Enter")
    assert page.locator(".cm-content").inner_text().startswith("SELECT customer_id, string_agg(")


def test_explain_shows_each_fragment_its_sql_and_what_was_pushed(served, page):
    server, _, _ = served
    open_with(page, server.base, "SELECT customer_id, count(*) AS n FROM pg.public.usage\n"
              "WHERE amount > :least GROUP BY customer_id ORDER BY customer_id")
    page.get_by_role("button", name="Explain").click()
    plan = page.get_by_role("region", name="Plan").locator("pre")
    plan.wait_for()
    shown = plan.inner_text()
    assert "note: not sent whole to 'pg': ordering or comparing text depends on the " \
        "source's collation" in shown  # what was kept, and why
    assert "- fragment f1 on source 'pg' (postgres): scan pg.public.usage" in shown
    assert 'FROM "public"."usage" WHERE "amount" > $1' in shown
    assert "params: :least" in shown
    assert "pushed: filter usage.amount > $least (from WHERE)" in shown
    assert "- residual in DuckDB:" in shown
    assert page.get_by_label(":least", exact=True).is_visible()


def test_a_parse_error_marks_its_position(served, page):
    server, _, _ = served
    open_with(page, server.base, "SELECT id\nFROM pg.public.usage\nWHERE id >")
    page.get_by_role("button", name="Run").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    shown = alert.inner_text()
    assert shown.startswith("SqlParseError") and "cannot parse the SQL" in shown
    assert "line 3, column 10" in shown
    assert page.evaluate("window.getSelection().toString()") == ">"
