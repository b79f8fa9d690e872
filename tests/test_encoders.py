"""One result, one text: ``meterql query --format csv|json|jsonl`` and ``POST /v1/query`` (CSV
and the JSON envelope) write the same values the same way, on a table of awkward values; the
fast column writers agree with the rule for one value; every format, empty and across batches."""

from __future__ import annotations

import io
import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

import meterql
from meterql.access.keys import create_key
from meterql.cli import main
from meterql.encoders import (
    BATCH_ROWS,
    column_text,
    encode,
    json_column,
    json_envelope,
    json_text,
    save,
    value_text,
)
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


def test_the_cli_and_the_http_api_write_the_same_csv(awkward):
    cli, http = awkward
    assert cli["csv"].decode() == CSV
    assert http["text/csv"].status_code == 200, http["text/csv"].text
    assert http["text/csv"].content == cli["csv"]


def test_the_cli_and_the_http_api_write_the_same_json_values(awkward):
    cli, http = awkward
    envelope = http["application/json"]
    assert envelope.status_code == 200, envelope.text
    assert envelope.json()["rows"] == ROWS
    assert [list(row.values()) for row in json.loads(cli["json"])] == ROWS
    assert [list(json.loads(line).values()) for line in cli["jsonl"].splitlines()] == ROWS
    for body in (cli["json"], cli["jsonl"], envelope.content):
        assert "Zoë".encode() in body  # UTF-8, as JSON text is (RFC 8259), never \u escapes


# -- the rule over whole columns equals the rule for one value -----------------------------------

BASE = datetime(2026, 10, 5, 10, 0, 0)
TIMES = [BASE, BASE.replace(microsecond=500000), BASE.replace(microsecond=5), None,
         datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999000)]
CLOCKS = [time(10, 0), time(10, 0, 0, 5), time(23, 59, 59, 500000), None]


def _columns():
    yield pa.array([Decimal("0E-12"), Decimal("1.23456E-7"), Decimal("-12.5"),
                    Decimal("-0.000000000001"), None,
                    Decimal("99999999999999999999999999.999999999999")], pa.decimal128(38, 12))
    yield pa.array([Decimal("0"), Decimal("-5"), None], pa.decimal128(10, 0))
    yield pa.array([Decimal("1E+2"), Decimal("0E+2"), Decimal("-3E+2")], pa.decimal128(5, -2))
    yield pa.array([Decimal("1.5"), Decimal("-0.01")], pa.decimal32(5, 2))
    yield pa.array([Decimal("1.5"), Decimal("-0.01")], pa.decimal64(15, 2))
    yield pa.array([Decimal("1.5"), Decimal("1E-40")], pa.decimal256(60, 40))
    yield pa.array([Decimal("1.5"), Decimal("-0.01")], pa.decimal128(18, 6)).slice(1)
    for unit in ("s", "ms", "us", "ns"):
        naive = pa.array(TIMES[:4] if unit == "ns" else TIMES,  # ns: 1677 to 2262
                         pa.timestamp("us")).cast(pa.timestamp(unit), safe=False)
        yield naive
        for zone in ("UTC", "Europe/Berlin", "+05:30", "America/St_Johns", "Etc/UTC"):
            yield naive.slice(0, 4).cast(pa.timestamp(unit, tz="UTC")).cast(
                pa.timestamp(unit, tz=zone))
    yield pa.array([datetime(1900, 1, 1, 12)], pa.timestamp("us", tz="UTC")).cast(
        pa.timestamp("us", tz="Europe/Amsterdam"))  # +00:19:32, local mean time
    for typ in (pa.time64("us"), pa.time32("ms"), pa.time32("s"), pa.time64("ns")):
        yield pa.array(CLOCKS, pa.time64("us")).cast(typ, safe=False)
    yield pa.array([date(2026, 1, 1), date(1, 1, 1), None])
    yield pa.array([date(2026, 1, 1), None], pa.date64())
    yield pa.array([True, False, None])
    yield pa.array([1, -2, None], pa.int8())
    yield pa.array([2**64 - 1], pa.uint64())
    yield pa.array(["", "a,b", 'q"', "x\\y", "tab\t", "\x01", "Zoë", "\u2028", None])
    yield pa.array(["a", "b", None]).dictionary_encode()
    yield pa.array(["a", None], pa.large_string())
    yield pa.array(["a", None], pa.string_view())
    yield pa.array([b"\x00\xff", b"", None])
    yield pa.array([b"ab", None], pa.binary(2))
    yield pa.array([[1, 2], [], None, [None]])
    yield pa.array([{"a": 1, "b": "x"}, None])
    yield pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int32()))
    yield pa.array([timedelta(seconds=1.5), None])
    yield pa.array([None, None])
    yield pa.array([1.0, 0.5, math.nan, math.inf, -math.inf, -0.0, None, 1e-7, 1e-5, 1e15, 1e20])
    yield pa.array([0.1, 1.5, None], pa.float32())
    yield pa.array(np.array([1.5, 0.1], dtype=np.float16))


@pytest.mark.parametrize("column", list(_columns()), ids=lambda c: str(c.type))
def test_a_column_has_the_text_of_each_of_its_values(column):
    values = column.to_pylist() if "ns" not in str(column.type) else None
    if values is None:  # Python's datetime stops at microseconds: only the exact ones
        values = column.cast(pa.timestamp("us", tz=column.type.tz) if pa.types.is_timestamp(
            column.type) else pa.time64("us")).to_pylist()
    assert column_text(column).to_pylist() == [value_text(v) for v in values]
    assert json_column(column).to_pylist() == [json_text(v) for v in values]


def test_nanoseconds_keep_nine_digits_when_they_need_them():
    stamps = pa.array([1_790_000_000_000_000_005, 1_790_000_000_000_005_000, None],
                      pa.timestamp("ns", tz="UTC"))
    assert column_text(stamps).to_pylist() == [
        "2026-09-21T14:13:20.000000005+00:00", "2026-09-21T14:13:20.000005+00:00", None]


def test_doubles_of_every_size_are_written_as_repr_writes_them():
    rng = np.random.default_rng(3)
    values = np.concatenate([
        rng.random(50_000) * 10.0 ** rng.integers(-320, 309, 50_000),
        rng.standard_normal(50_000) * 10.0 ** rng.integers(-8, 18, 50_000),
        np.frombuffer(rng.bytes(8 * 50_000), dtype=np.float64),  # every bit pattern
        np.array([10.0**k * m for k in range(-8, 18) for m in (1, 1.5, -2.25, 1 - 1e-3)]),
        np.array([5e-324, 1.7976931348623157e308, 9999999999999998.0, 123456789012345.67]),
    ])
    text = column_text(pa.array(values)).to_pylist()
    wrong = [(repr(v), t) for v, t in zip(values.tolist(), text, strict=True) if repr(v) != t]
    assert not wrong, wrong[:10]


# -- the formats ----------------------------------------------------------------------------------

def test_text_formats_span_many_batches():
    rows = BATCH_ROWS * 2 + 5
    table = pa.table({"i": pa.array(range(rows)), "s": pa.array([f"r{i}" for i in range(rows)])})
    as_json = json.loads(b"".join(encode(table, "json")))
    assert len(as_json) == rows and as_json[-1] == {"i": rows - 1, "s": f"r{rows - 1}"}
    lines = b"".join(encode(table, "jsonl")).splitlines()
    assert len(lines) == rows and json.loads(lines[BATCH_ROWS]) == {"i": BATCH_ROWS,
                                                                    "s": f"r{BATCH_ROWS}"}
    as_csv = b"".join(encode(table, "csv")).decode().splitlines()
    assert len(as_csv) == rows + 1 and as_csv[BATCH_ROWS + 1] == f"{BATCH_ROWS},r{BATCH_ROWS}"
    envelope = json.loads(b"".join(json_envelope(table, {"row_count": rows})))
    assert len(envelope["rows"]) == rows and envelope["row_count"] == rows


def test_an_empty_result_in_every_format():
    table = pa.table({"a b": pa.array([], pa.int64())})
    assert b"".join(encode(table, "csv")) == b"a b\n"
    assert b"".join(encode(table, "json")) == b"[]\n"
    assert b"".join(encode(table, "jsonl")) == b""
    assert json.loads(b"".join(json_envelope(table, {})))["rows"] == []
    for fmt in ("parquet", "arrow"):
        assert _read(fmt, b"".join(encode(table, fmt))).equals(table)


def test_binary_formats_round_trip(tmp_path):
    table = pa.table({"d": [Decimal("1.50")], "l": [[1, 2]]})
    for fmt in ("parquet", "arrow"):
        save(table, fmt, tmp_path / f"out.{fmt}")
        assert _read(fmt, (tmp_path / f"out.{fmt}").read_bytes()).equals(table)
    assert not list(tmp_path.glob("*.partial"))


def test_a_header_is_quoted_like_any_field():
    table = pa.table({"a,b": [1], 'say "x"': [2], "plain": [3]})
    assert b"".join(encode(table, "csv")).decode().splitlines()[0] == (
        '"a,b","say ""x""",plain')


def _read(fmt: str, data: bytes) -> pa.Table:
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data))
    return pa.ipc.open_stream(data).read_all()


def test_the_expanded_display_is_psqls_with_null_and_empty_apart():
    from meterql.encoders import render_expanded

    table = pa.table({"id": [1, 22], "note": ["two\nlines of text", ""],
                      "gone": pa.array([None, None], pa.string())})
    assert list(render_expanded(table)) == [
        "-[ RECORD 1 ]-------",  # as wide as the widest line
        "id   | 1", "note | two", "     | lines of text", "gone | NULL",
        "-[ RECORD 2 ]-------",
        "id   | 22", "note |", "gone | NULL",
    ]
