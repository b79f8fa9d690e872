"""The OpenAPI document: every operation declares its problem answers (one shared table), the
answers given are the declared ones, and no reStructuredText markup reaches a description."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.server.app import create_app
from meterql.server.openapi import PROBLEM_RESPONSES, PROBLEM_SCHEMA, markdown
from meterql.server.problems import PROBLEM, STATUS

#: reStructuredText that must not reach a client: a role (:class:`x`), a literal (``x``), a
#: field (:param x:).
RST = re.compile(r":[a-z]+(?::[a-z]+)?:`|``|^\s*:(param|type|returns?|raises?)\b", re.M)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    ws = meterql.connect(tmp_path_factory.mktemp("openapi"))
    keys = {scope: create_key(ws.keys, scope)[1] for scope in ("read", "ingest", "admin")}
    with TestClient(create_app(ws)) as client:
        yield client, keys, client.get("/openapi.json").json()
    ws.close()


def strings(node: Any, where: str = "") -> list[tuple[str, str]]:
    """Every string of the document with where it is."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(value, f"{where}/{key}")]
    if isinstance(node, list):
        return [s for i, value in enumerate(node) for s in strings(value, f"{where}/{i}")]
    return [(where, node)] if isinstance(node, str) else []


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in spec["paths"].items()
            for method, op in item.items()]


def test_no_description_holds_sphinx_markup(api):
    _, _, spec = api
    found = strings(spec)
    assert len(found) > 500
    marked = [(where, text[:80]) for where, text in found if RST.search(text)]
    assert not marked, marked
    # the docstrings are still there, as Markdown
    upload = spec["paths"]["/v1/tables/{name}/upload"]["post"]["description"]
    assert "(multipart field `file`) into `local.uploads.<name>`" in upload


def test_every_operation_declares_its_problems_from_the_shared_table(api):
    _, _, spec = api
    ops = operations(spec)
    assert len(ops) >= 45
    ref = {"$ref": "#/components/schemas/Problem"}
    for method, path, op in ops:
        declared = {int(s): r for s, r in op["responses"].items() if int(s) >= 400}
        label = f"{method.upper()} {path}"
        assert 500 in declared, label
        if path != "/v1/health":
            assert {400, 401, 403, 413, 422, 503} <= set(declared), label
        if "{" in path:
            assert 404 in declared, label
        for status, response in declared.items():
            assert response["content"] == {PROBLEM: {"schema": ref}}, (label, status)
            assert response["description"], (label, status)
    assert set(spec["paths"]["/v1/health"]["get"]["responses"]) == {"200", "500"}
    assert "415" in spec["paths"]["/v1/tables/{name}/upload"]["post"]["responses"]
    assert "499" in spec["paths"]["/v1/query"]["post"]["responses"]
    assert "502" in spec["paths"]["/v1/sources/{name}/test"]["post"]["responses"]
    # a route's own description of a status is kept
    push = spec["paths"]["/v1/events/{stream}"]["post"]["responses"]["422"]
    assert push["description"].startswith("every event rejected")
    schemas = spec["components"]["schemas"]
    assert schemas["Problem"] == PROBLEM_SCHEMA
    assert "HTTPValidationError" not in schemas and "HTTPValidationError" not in json.dumps(spec)


def test_every_status_the_errors_map_to_is_in_the_shared_table():
    assert {status for _, status in STATUS} | {401, 403, 413, 415, 422, 500} <= set(
        PROBLEM_RESPONSES)


def check_problem(answer, spec, method: str, path: str, status: int) -> None:
    """The answer is a problem, of a status its operation declares, fitting the schema."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert str(status) in spec["paths"][path][method]["responses"]
    body = answer.json()
    assert set(PROBLEM_SCHEMA["required"]) <= set(body)
    kinds = {"string": str, "integer": int, "boolean": bool, "array": list}
    for name, value in body.items():
        declared = PROBLEM_SCHEMA["properties"].get(name)
        if declared is not None and value is not None:
            assert isinstance(value, kinds[declared["type"]]), (name, value)


def test_the_answers_given_are_the_ones_declared(api):
    client, keys, spec = api
    read = {"Authorization": f"Bearer {keys['read']}"}
    ingest = {"Authorization": f"Bearer {keys['ingest']}"}
    check_problem(client.post("/v1/query", json={"sql": "SELECT 1"}), spec,
                  "post", "/v1/query", 401)
    check_problem(client.get("/v1/settings", headers=read), spec, "get", "/v1/settings", 403)
    check_problem(client.post("/v1/query", headers=read, json={"sql": "SELEC x"}), spec,
                  "post", "/v1/query", 400)
    check_problem(client.post("/v1/query", headers=read, json={"nope": 1}), spec,
                  "post", "/v1/query", 422)
    check_problem(client.get("/v1/aggregates/nope", headers=read), spec,
                  "get", "/v1/aggregates/{name}", 404)
    check_problem(client.post("/v1/tables/prices/upload", headers={
        **ingest, "Content-Type": "text/csv"}, content=b"a\n1\n"), spec,
        "post", "/v1/tables/{name}/upload", 415)


def test_markdown_of_restructuredtext():
    assert markdown("as ``meterql load`` does") == "as `meterql load` does"
    assert markdown("see :class:`~meterql.server.push.EventPush`") == "see `EventPush`"
    assert markdown("see :py:func:`meterql.connect`") == "see `meterql.connect`"
    assert markdown("Args:\n    :param name: the table\n") == "Args:\n    name: the table\n"
    assert markdown("no ``markup`` left, ``two``") == "no `markup` left, `two`"
