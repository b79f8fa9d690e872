"""The navigator's manual tables and keys pages in a real browser (Debian's Chromium through
Playwright) against a real ``meterql serve``: a row added, refused, edited and deleted with the
audit matching ``GET /v1/audit``; a key created, used, revoked; a read key kept out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import expect

import meterql
from tests.support.browser import sign_in
from tests.support.served import auth, new_key, serve

SHOTS = "/tmp"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A workspace with a manual table ``credits``, served, and a key of each scope."""
    home = tmp_path_factory.mktemp("navigator-manual") / "home"
    with meterql.connect(home) as ws:
        ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)",
                                     "units": "INTEGER", "note": "VARCHAR"}, ["customer_id"])
    keys = {scope: new_key(home, scope) for scope in ("read", "ingest", "admin")}
    with serve(home) as server:
        yield server, keys


@pytest.fixture()
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


def rows(server, key):
    answer = httpx.post(f"{server.base}/v1/query", headers=auth(key), json={
        "sql": "SELECT customer_id, amount::VARCHAR, note FROM local.manual.credits "
               "ORDER BY customer_id"})
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]


def test_add_edit_delete_a_row_and_see_the_audit(served, page):
    server, keys = served
    sign_in(page, server.base, keys["admin"], "/manual")
    page.get_by_role("link", name="credits").click()
    page.wait_for_url(f"{server.base}/manual/credits")
    # add: two bad cells first (each reason next to its cell, nothing stored), then good ones
    page.get_by_label("customer_id").fill("<img src=x onerror=alert(1)>")
    page.get_by_label("amount").fill("ten")
    page.get_by_label("units").fill("2.5")
    page.get_by_label("note").fill("goodwill")
    page.get_by_role("button", name="Add row").click()
    assert "Nothing was stored" in page.get_by_role("alert").inner_text()
    assert page.locator("#add-2-err").inner_text() == '"ten" is not a number (DECIMAL(18,2))'
    assert page.locator("#add-3-err").inner_text() == "2.5 is not a whole number (INTEGER)"
    assert page.get_by_label("amount").get_attribute("aria-invalid") == "true"
    assert page.locator(".cell-error").count() == 2
    assert page.get_by_label("note").input_value() == "goodwill"  # the form is kept
    assert rows(server, keys["read"]) == []
    page.get_by_label("amount").fill("12.50")
    page.get_by_label("units").fill("")
    page.get_by_role("button", name="Add row").click()
    page.wait_for_url(f"{server.base}/manual/credits?done=added")
    assert page.get_by_role("status").inner_text() == "Row added."
    name = "<img src=x onerror=alert(1)>"
    assert page.get_by_label("customer_id of row 1").input_value() == name  # text, not HTML
    assert rows(server, keys["read"]) == [[name, "12.50", "goodwill"]]
    # edit: a bad cell shows its reason and nothing changes; then a good value
    page.get_by_label("amount of row 1").fill("1.999")
    page.get_by_label("note of row 1").fill("changed")
    page.get_by_role("button", name="Save").click()
    cell = page.locator("tr.refused .cell-error")
    assert cell.inner_text() == "1.999 has more than 2 decimal places (DECIMAL(18,2))"
    assert page.get_by_label("amount of row 1").input_value() == "1.999"
    page.screenshot(path=f"{SHOTS}/navigator-manual-refused.png", full_page=True)
    assert rows(server, keys["read"]) == [[name, "12.50", "goodwill"]]
    page.get_by_label("amount of row 1").fill("20")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{server.base}/manual/credits?done=saved")
    assert page.get_by_label("amount of row 1").input_value() == "20.00"
    assert rows(server, keys["read"]) == [[name, "20.00", "changed"]]
    # delete, once confirmed
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete row 1").click()
    assert rows(server, keys["read"]) == [[name, "20.00", "changed"]]
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete row 1").click()
    page.wait_for_url(f"{server.base}/manual/credits?done=deleted")
    assert rows(server, keys["read"]) == []
    page.screenshot(path=f"{SHOTS}/navigator-manual.png", full_page=True)
    # the audit as the page shows it, newest first, is GET /v1/audit's, with who and when
    audit = httpx.get(f"{server.base}/v1/audit", params={"table": "credits"},
                      headers=auth(keys["read"])).json()
    assert [a["action"] for a in audit] == ["create", "insert", "update", "delete"]
    admin_id = keys["admin"].split("_")[1]
    shown = page.locator("table.audit tbody tr").all()
    assert len(shown) == len(audit)
    for tr, entry in zip(shown, reversed(audit), strict=True):
        when, who, action, key, before, after = (
            td.inner_text() for td in tr.locator("td").all())
        at = datetime.fromisoformat(entry["changed_at"]).astimezone(UTC)
        assert when == at.strftime("%Y-%m-%d %H:%M:%S UTC")
        assert action == entry["action"]
        assert json.loads(key) == entry["key"]
        assert (json.loads(before) if before else None) == entry["before"]
        assert (json.loads(after) if after else None) == entry["after"]
        if entry["action"] != "create":
            assert entry["actor"] == admin_id and who == f"{admin_id} admin key"
    assert audit[2]["before"] == {"customer_id": name, "amount": "12.50", "units": None,
                                  "note": "goodwill"}
    assert audit[2]["after"] == {"customer_id": name, "amount": "20.00", "units": None,
                                 "note": "changed"}
    assert page.locator("img").count() == 0


def test_a_read_key_sees_rows_and_audit_without_controls(served, page):
    server, keys = served
    httpx.post(f"{server.base}/v1/tables/credits/rows", headers=auth(keys["admin"]),
               json={"values": {"customer_id": "acme", "amount": "5"}}).raise_for_status()
    sign_in(page, server.base, keys["read"], "/manual/credits")
    assert page.get_by_role("cell", name="acme", exact=True).is_visible()
    assert page.get_by_role("cell", name="5.00", exact=True).is_visible()
    assert page.locator("main input, main button, main form").count() == 0
    assert page.get_by_role("button", name="Add row").count() == 0
    assert page.locator("table.audit tbody tr").count() >= 2
    # a forced change gets the API's 403, and nothing changes
    csrf = page.locator("body").get_attribute("data-csrf")
    forced = page.request.post(f"{server.base}/manual/credits/add",
                               form={"csrf": csrf, "c.customer_id": "x"})
    assert forced.status == 403 and forced.json()["title"] == "ScopeError"
    assert [r[0] for r in rows(server, keys["read"])] == ["acme"]
    # no Keys menu entry, and the page itself is refused
    assert page.get_by_role("navigation").get_by_role("link", name="Manual tables").is_visible()
    assert page.get_by_role("link", name="Keys").count() == 0
    answer = page.request.get(f"{server.base}/keys")
    assert answer.status == 403 and answer.json()["title"] == "ScopeError"
    made = page.request.post(f"{server.base}/keys", form={"csrf": csrf, "scope": "admin"})
    assert made.status == 403 and made.json()["title"] == "ScopeError"
    assert all(k["scope"] != "admin" or k["name"] == "admin key" for k in httpx.get(
        f"{server.base}/v1/keys", headers=auth(keys["admin"])).json())
    page.goto(f"{server.base}/keys")
    assert "needs the admin scope" in page.content()


def test_an_ingest_key_edits_rows_as_through_the_api(served, page):
    server, keys = served
    sign_in(page, server.base, keys["ingest"], "/manual/credits")
    add = page.locator("form#add")
    add.get_by_label("customer_id").fill("zeta")
    add.get_by_label("amount").fill("1")
    page.get_by_role("button", name="Add row").click()
    page.wait_for_url(f"{server.base}/manual/credits?done=added")
    assert "zeta" in [r[0] for r in rows(server, keys["read"])]
    assert page.get_by_role("link", name="Keys").count() == 0  # keys stay the admin's
    page.once("dialog", lambda dialog: dialog.accept())
    row = page.get_by_role("row").filter(has=page.locator("input[value=zeta]"))
    row.get_by_role("button", name="Delete").click()
    page.wait_for_url(f"{server.base}/manual/credits?done=deleted")
    assert "zeta" not in [r[0] for r in rows(server, keys["read"])]


def test_a_forced_post_without_the_csrf_token_is_refused(served, page):
    server, keys = served
    sign_in(page, server.base, keys["admin"], "/keys")
    before = len(httpx.get(f"{server.base}/v1/keys", headers=auth(keys["admin"])).json())
    for path, form in (("/keys", {"scope": "admin", "name": "forged"}),
                       ("/manual/credits/add", {"c.customer_id": "forged"})):
        answer = page.request.post(f"{server.base}{path}", form=form)
        assert answer.status == 403 and answer.json()["title"] == "CsrfError", path
        answer = page.request.post(f"{server.base}{path}", form={**form, "csrf": "forged"})
        assert answer.status == 403 and answer.json()["title"] == "CsrfError", path
    assert len(httpx.get(f"{server.base}/v1/keys", headers=auth(keys["admin"])).json()) == before
    assert "forged" not in [r[0] for r in rows(server, keys["read"])]


def test_create_use_and_revoke_a_key(served, page):
    server, keys = served
    sign_in(page, server.base, keys["admin"], "/keys")
    page.get_by_label("Name").fill("billing <b>engine</b>")
    page.get_by_label("Scope").select_option("read")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("Key", exact=True).input_value()
    assert key.startswith("mq_")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.locator(".copied")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == key
    key_id = key.split("_")[1]
    row = page.get_by_role("row").filter(has=page.get_by_text(key_id, exact=True))
    assert row.get_by_role("cell").all_inner_texts()[1:3] == ["billing <b>engine</b>", "read"]
    page.screenshot(path=f"{SHOTS}/navigator-keys.png", full_page=True)
    # the key works through the API, and is listed there as here
    used = httpx.get(f"{server.base}/v1/manual", headers=auth(key))
    assert used.status_code == 200 and used.json()[0]["name"] == "credits"
    listed = {k["id"]: k for k in httpx.get(f"{server.base}/v1/keys",
                                             headers=auth(keys["admin"])).json()}
    assert listed[key_id]["name"] == "billing <b>engine</b>" and not listed[key_id]["revoked_at"]
    # shown once: the list page never shows it again
    page.goto(f"{server.base}/keys")
    assert key not in page.content()
    # revoke, once confirmed
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name=f"Revoke key {key_id}").click()
    assert httpx.get(f"{server.base}/v1/manual", headers=auth(key)).status_code == 200
    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name=f"Revoke key {key_id}").click()
    page.wait_for_url(f"{server.base}/keys?revoked={key_id}")
    assert messages[0].startswith(f"Revoke key {key_id} (billing <b>engine</b>)?")
    assert page.get_by_role("status").inner_text().startswith(f"Key {key_id} revoked")
    assert page.get_by_role("button", name=f"Revoke key {key_id}").count() == 0
    refused = httpx.get(f"{server.base}/v1/manual", headers=auth(key))
    assert refused.status_code == 401


def test_revoking_the_sessions_own_key_signs_it_out(served, page):
    server, keys = served
    made = httpx.post(f"{server.base}/v1/keys", json={"scope": "admin", "name": "own"},
                      headers=auth(keys["admin"])).json()
    sign_in(page, server.base, made["key"], "/keys")
    assert page.get_by_text(f"{made['id']} (this session)").is_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke key {made['id']}").click()
    page.wait_for_url(f"{server.base}/signin?next=*")
    assert page.get_by_label("API key").is_visible()


def test_a_refused_row_names_every_cell_that_does_not_fit(tmp_path):
    """(What the page's per-cell reasons come from: ws.manual's DataError lists every
    refused column, its message still the first's.)"""
    with meterql.connect(tmp_path / "home") as ws:
        ws.manual.create("credits", {"customer_id": "VARCHAR", "amount": "DECIMAL(18,2)",
                                     "units": "INTEGER"}, ["customer_id"])
        with pytest.raises(meterql.errors.DataError) as refused:
            ws.manual.insert("credits", {"customer_id": "a", "amount": "x", "units": 1.5})
        assert str(refused.value).startswith("local.manual.credits: column amount: ")
        assert [(r["column"], r["reason"]) for r in refused.value.details["rows"]] == [
            ("amount", '"x" is not a number (DECIMAL(18,2))'),
            ("units", "1.5 is not a whole number (INTEGER)")]
        assert ws.manual.audit("credits")[-1]["action"] == "create"
