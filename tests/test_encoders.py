"""One result, one text: ``meterql query --format csv|json|jsonl`` and ``POST /v1/query`` (CSV
and the JSON envelope) write the same values the same way, on a table of awkward values."""

from __future__ import annotations

import json

import duckdb
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.cli import main
from meterql.server.app import create_app

AWKWARD = r"""
CREATE TABLE awkward AS SELECT * FROM (VALUES
 (1, 'plain', 1.0::DOUBLE, 0::DECIMAL(38,12), TIMESTAMPTZ '2026-10-05 10:00:00+00',
  TIMESTAMP '2026-10-05 10:00:00.5', DATE '2026-10-05', TIME '10:00:00', '\x00\xff'::BLOB,
  true, [1, 2], {'a': 1, 'b': 'x'}),
 (2, '', 'nan'::DOUBLE, 1.23456E-7::DECIMAL(38,12), TIMESTAMPTZ '2026-10-31 23:30:00.25+00',
  NULL, NULL, TIME '10:00:00.000005', ''::BLOB, false, [], NULL),
 (3, NULL, 'inf'::DOUBLE, -12.5::DECIMAL(38,12), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 'a,b "q"' || chr(10) || 'z', 1e20::DOUBLE, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL),
 (5, 'Zoë', 1e-5::DOUBLE, 1.5::DECIMAL(38,12), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (6, ' ', '-inf'::DOUBLE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (7, 'x', -0.0::DOUBLE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) t(id, s, f, d, tstz, ts, dt, tm, b, bo, l, st)
"""
SQL = "SELECT * FROM dk.main.awkward ORDER BY id"

#: The one CSV text of the awkward table: a field is quoted only when it must be (a comma, a
#: quote, a line break) or when it is an empty string, so that NULL (nothing) and '' differ.
CSV = (
    "id,s,f,d,tstz,ts,dt,tm,b,bo,l,st\n"
    '1,plain,1.0,0.000000000000,2026-10-05T10:00:00+00:00,2026-10-05T10:00:00.500000,'
    '2026-10-05,10:00:00,00ff,true,"[1, 2]","{""a"": 1, ""b"": ""x""}"\n'
    '2,"",nan,0.000000123456,2026-10-31T23:30:00.250000+00:00,,,10:00:00.000005,"",false,[],\n'
    "3,,inf,-12.500000000000,,,,,,,,\n"
    '4,"a,b ""q""\nz",1e+20,,,,,,,,,\n'
    "5,Zoë,1e-05,1.500000000000,,,,,,,,\n"
    "6, ,-inf,,,,,,,,,\n"
    "7,x,-0.0,,,,,,,,,\n"
)

#: The same rows as JSON values: decimals, times and bytes are strings, NaN and the infinities
#: too (JSON has no number for them), lists and structs stay JSON.
ROWS = [
    [1, "plain", 1.0, "0.000000000000", "2026-10-05T10:00:00+00:00",
     "2026-10-05T10:00:00.500000", "2026-10-05", "10:00:00", "00ff", True, [1, 2],
     {"a": 1, "b": "x"}],
    [2, "", "nan", "0.000000123456", "2026-10-31T23:30:00.250000+00:00", None, None,
     "10:00:00.000005", "", False, [], None],
    [3, None, "inf", "-12.500000000000"] + [None] * 8,
    [4, 'a,b "q"\nz', 1e20] + [None] * 9,
    [5, "Zoë", 1e-5, "1.500000000000"] + [None] * 8,
    [6, " ", "-inf"] + [None] * 9,
    [7, "x", -0.0] + [None] * 9,
]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    root = tmp_path_factory.mktemp("awkward")
    con = duckdb.connect(str(root / "a.duckdb"))
    con.execute(AWKWARD)
    con.close()
    home = root / "home"
    with meterql.connect(home) as ws:
        ws.sources.add("dk", f"duckdb://{root / 'a.duckdb'}")
        key = create_key(ws.keys, "read")[1]
    cli = {}
    for fmt in ("csv", "json", "jsonl"):
        out = CliRunner().invoke(main, ["query", SQL, "--format", fmt, "--home", str(home)])
        assert out.exit_code == 0, out.output
        cli[fmt] = out.stdout_bytes
    http = {}
    with meterql.connect(home) as ws, TestClient(create_app(ws)) as client:
        for accept in ("text/csv", "application/json"):
            answer = client.post("/v1/query", json={"sql": SQL}, headers={
                "Authorization": f"Bearer {key}", "Accept": accept})
            http[accept] = answer
    return cli, http


@pytest.mark.xfail(strict=True, reason=(
    "the CLI writes CSV with Python's csv module and str() of json_value, the HTTP API with "
    "Arrow's CSV writer: HTTP quotes every string and header, writes 1 and 0.00001 and -0 for "
    "the doubles 1.0, 1e-05 and -0.0, '2026-10-05 10:00:00.000000Z' for a timestamp with a time "
    "zone, a space in a timestamp without one, 10:00:00.000000 for a time; the CLI writes "
    "True/False and the same empty field for NULL and ''; HTTP answers 500 for a list, a "
    "struct or non-UTF-8 bytes, the CLI writes lists and structs as Python reprs"))
def test_the_cli_and_the_http_api_write_the_same_csv(awkward):
    cli, http = awkward
    assert cli["csv"].decode() == CSV
    assert http["text/csv"].status_code == 200, http["text/csv"].text
    assert http["text/csv"].content == cli["csv"]


@pytest.mark.xfail(strict=True, reason=(
    "HTTP escapes non-ASCII characters (Zo\\u00eb), the CLI writes them as UTF-8"))
def test_the_cli_and_the_http_api_write_the_same_json_values(awkward):
    cli, http = awkward
    envelope = http["application/json"]
    assert envelope.status_code == 200, envelope.text
    assert envelope.json()["rows"] == ROWS
    assert [list(row.values()) for row in json.loads(cli["json"])] == ROWS
    assert [list(json.loads(line).values()) for line in cli["jsonl"].splitlines()] == ROWS
    for body in (cli["json"], cli["jsonl"], envelope.content):
        assert "Zoë".encode() in body  # UTF-8, as JSON text is (RFC 8259), never \u escapes
