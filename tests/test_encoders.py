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
from meterql.dialects.arrow_types import arrow_type, sql_type_name
from meterql.encoders import (
    BATCH_ROWS,
    boxes,
    column_text,
    encode,
    expanded,
    json_column,
    json_envelope,
    json_text,
    row_count,
    save,
    value_text,
)
from meterql.server.app import create_app

AWKWARD = r"""
CREATE TABLE awkward AS SELECT * FROM (VALUES
 (1, 'plain', 1.0::DOUBLE, 0::DECIMAL(38,12), TIMESTAMPTZ '2026-10-05 10:00:00+00',
  TIMESTAMP '2026-10-05 10:00:00.5', DATE '2026-10-05', TIME '10:00:00', '\x00\xff'::BLOB,
  true, [1, 2], {'a': 1, 'b': 'x'}, INTERVAL '1 day 2 hours'),
 (2, '', 'nan'::DOUBLE, 1.23456E-7::DECIMAL(38,12), TIMESTAMPTZ '2026-10-31 23:30:00.25+00',
  NULL, NULL, TIME '10:00:00.000005', ''::BLOB, false, [], NULL,
  INTERVAL '-1 year -2 months 3 days' - INTERVAL '1.5 seconds'),
 (3, NULL, 'inf'::DOUBLE, -12.5::DECIMAL(38,12), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  INTERVAL '0 seconds'),
 (4, 'a,b "q"' || chr(10) || 'z', 1e20::DOUBLE, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL),
 (5, 'Zoë', 1e-5::DOUBLE, 1.5::DECIMAL(38,12), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL),
 (6, ' ', '-inf'::DOUBLE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (7, 'x', -0.0::DOUBLE, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) t(id, s, f, d, tstz, ts, dt, tm, b, bo, l, st, iv)
"""
SQL = "SELECT * FROM dk.main.awkward ORDER BY id"
#: Its columns' types as SQL names them (DuckDB's own names of them).
TYPES = ["INTEGER", "VARCHAR", "DOUBLE", "DECIMAL(38,12)", "TIMESTAMPTZ", "TIMESTAMP", "DATE",
         "TIME", "BLOB", "BOOLEAN", "INTEGER[]", "STRUCT(a INTEGER, b VARCHAR)", "INTERVAL"]

#: The one CSV text of the awkward table: a field is quoted only when it must be (a comma, a
#: quote, a line break) or when it is an empty string, so that NULL (nothing) and '' differ.
CSV = (
    "id,s,f,d,tstz,ts,dt,tm,b,bo,l,st,iv\n"
    '1,plain,1.0,0.000000000000,2026-10-05T10:00:00+00:00,2026-10-05T10:00:00.500000,'
    '2026-10-05,10:00:00,00ff,true,"[1, 2]","{""a"": 1, ""b"": ""x""}",1 day 02:00:00\n'
    '2,"",nan,0.000000123456,2026-10-31T23:30:00.250000+00:00,,,10:00:00.000005,"",false,[],,'
    '-1 year -2 months 3 days -00:00:01.5\n'
    "3,,inf,-12.500000000000,,,,,,,,,00:00:00\n"
    '4,"a,b ""q""\nz",1e+20,,,,,,,,,,\n'
    "5,Zoë,1e-05,1.500000000000,,,,,,,,,\n"
    "6, ,-inf,,,,,,,,,,\n"
    "7,x,-0.0,,,,,,,,,,\n"
)

#: The same rows as JSON values: decimals, times, intervals and bytes are strings, NaN and the
#: infinities too (JSON has no number for them), lists and structs stay JSON.
ROWS = [
    [1, "plain", 1.0, "0.000000000000", "2026-10-05T10:00:00+00:00",
     "2026-10-05T10:00:00.500000", "2026-10-05", "10:00:00", "00ff", True, [1, 2],
     {"a": 1, "b": "x"}, "1 day 02:00:00"],
    [2, "", "nan", "0.000000123456", "2026-10-31T23:30:00.250000+00:00", None, None,
     "10:00:00.000005", "", False, [], None, "-1 year -2 months 3 days -00:00:01.5"],
    [3, None, "inf", "-12.500000000000"] + [None] * 8 + ["00:00:00"],
    [4, 'a,b "q"\nz', 1e20] + [None] * 10,
    [5, "Zoë", 1e-5, "1.500000000000"] + [None] * 9,
    [6, " ", "-inf"] + [None] * 10,
    [7, "x", -0.0] + [None] * 10,
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
    for fmt in ("csv", "json", "jsonl", "table"):
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
    assert [c["type"] for c in envelope.json()["columns"]] == TYPES  # SQL's names, not Arrow's


def test_the_table_shows_every_value_whole_under_its_sql_type(awkward):
    cli, _ = awkward
    lines = cli["table"].decode().splitlines()
    assert [cell.strip() for cell in lines[1].split("┃")[1:-1]] == CSV.split("\n")[0].split(",")
    assert [cell.strip() for cell in lines[2].split("┃")[1:-1]] == TYPES
    body = "\n".join(lines[4:])
    for value in ("2026-10-31T23:30:00.250000+00:00", "-1 year -2 months 3 days -00:00:01.5",
                  '{"a": 1, "b": "x"}', "0.000000123456", "1 day 02:00:00"):
        assert value in body  # whole, never cut to fit a width
    assert lines[-1].startswith("7 rows in ")
    assert len({_cells(line) for line in lines[:-1]}) == 1  # every line as wide: aligned


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
    yield pa.array([timedelta(seconds=1.5), timedelta(days=-1, hours=1), None])
    yield pa.array([pa.MonthDayNano([1, 2, 3_000_000_000]), pa.MonthDayNano([-25, 0, -1]), None],
                   pa.month_day_nano_interval())
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


# -- intervals and type names as SQL writes them ------------------------------------------------

INTERVALS = ["1 day 2 hours", "-1 day -2 hours", "0 seconds", "36 hours", "13 months",
             "-13 months", "1 year 2 months 3 days 04:05:06.789", "-1 microsecond",
             "2 years -3 days 00:00:00.5", "-10 months 1 day", "1 month -00:00:01"]


def test_intervals_read_as_duckdb_writes_them():
    con = duckdb.connect()
    rows = ", ".join(f"(INTERVAL '{text}')" for text in INTERVALS)
    result = con.sql(f"SELECT i, i::VARCHAR AS text FROM (VALUES {rows}) t(i)").to_arrow_table()
    expected = result.column("text").to_pylist()
    assert expected[0] == "1 day 02:00:00"
    assert column_text(result.column("i").combine_chunks()).to_pylist() == expected
    assert [json.loads(v) for v in json_column(result.column("i").combine_chunks())
            .to_pylist()] == expected


SQL_TYPES = ["BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL(38,10)", "DECIMAL(18,0)",
             "VARCHAR", "BLOB", "DATE", "TIME", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS",
             "TIMESTAMP_NS", "TIMESTAMPTZ", "INTERVAL", "INTEGER[]", "VARCHAR[3]",
             'STRUCT(a INTEGER, "b c" VARCHAR)', "MAP(VARCHAR, DOUBLE)", "DECIMAL(12,2)[]"]


@pytest.mark.parametrize("name", SQL_TYPES)
def test_a_type_has_the_name_duckdb_gives_it(name):
    con = duckdb.connect()
    typed = con.sql(f"SELECT CAST(NULL AS {name}) AS v")
    # the name DuckDB itself gives the type (TIMESTAMPTZ being its short name, the issue's)
    assert typed.types[0] == {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(name, name)
    assert sql_type_name(typed.to_arrow_table().schema.field("v")) == name
    simple = arrow_type(name)
    if simple is not None:  # and back: the SQL name reads as the same Arrow type
        assert arrow_type(sql_type_name(simple)) == simple


def test_the_names_of_types_duckdb_does_not_hand_out():
    assert sql_type_name(pa.large_string()) == "VARCHAR"
    assert sql_type_name(pa.duration("us")) == "INTERVAL"
    assert sql_type_name(pa.dictionary(pa.int32(), pa.string())) == "VARCHAR"
    assert sql_type_name(pa.decimal256(60, 4)) == "DECIMAL(60,4)"
    assert sql_type_name(pa.timestamp("ns", tz="Europe/Berlin")) == "TIMESTAMPTZ"


def test_rows_are_counted_in_words():
    assert [row_count(n) for n in (0, 1, 2)] == ["0 rows", "1 row", "2 rows"]
    assert row_count(1, 1) == "1 row" and row_count(400_000, 40) == "400,000 rows (40 shown)"


# -- the table for people ------------------------------------------------------------------------

def _cells(line: str) -> int:
    from rich.cells import cell_len

    return cell_len(line)


def test_boxes_keep_every_value_whole_and_aligned():
    long = "external-reference-" + "x" * 300
    table = pa.table({
        "id": pa.array([1, 22, None], pa.int64()),
        "note": [long, "two\nlines", "日本語 wide"],
        "amount": pa.array([Decimal("1.5"), None, Decimal("-10.25")], pa.decimal128(38, 10)),
        "ctl": ["tab\there", "\x1b[31mred", None],
    })
    view = boxes(table)
    text = view.text()
    lines = text.splitlines()
    assert long in text and "two" in text and "lines" in text
    assert "┃ BIGINT ┃ VARCHAR" in lines[2] and "DECIMAL(38,10)" in lines[2]
    assert len({_cells(line) for line in lines}) == 1 == len({view.width})
    assert _cells(lines[0]) == view.width and len(lines) == view.height == 9  # 2 lines for one
    assert lines[4].startswith("│      1 │ external-")  # numbers to the right
    assert "│ -10.2500000000 │" in lines[7] and "NULL" in lines[5]
    assert "\x1b" not in text.replace("\\x1b", "") and "tab\\there" in text  # escaped
    assert "\x1b[" not in text  # no styles unless asked
    styled = boxes(table, styled=True).text()
    assert "\x1b[1mid\x1b[0m" in styled and "\x1b[2mNULL\x1b[0m" in styled
    assert "+--" in boxes(table, ascii=True).text() and "┃" not in boxes(table, ascii=True).text()


def test_a_limit_draws_the_first_and_last_rows_and_counts_them_all():
    table = pa.table({"i": pa.array(range(400_000), pa.int64()),
                      "s": pa.array([f"r{i}" for i in range(400_000)])})
    view = boxes(table, limit=40)
    lines = view.text().splitlines()
    assert (view.rows, view.shown) == (400_000, 40) and len(lines) == view.height == 46
    body = [line.split("│")[1].strip() for line in lines[4:-1]]
    assert body == [str(i) for i in range(20)] + ["⋮"] + [str(i) for i in range(399_980, 400_000)]
    rows = expanded(table, limit=4).text().splitlines()
    assert rows[:3] == ["-[ RECORD 1 ]", "i | 0", "s | r0"]
    assert "⋮ (399,996 rows not shown)" in rows and rows[-3:] == [
        "-[ RECORD 400000 ]", "i | 399999", "s | r399999"]
    assert boxes(table.slice(0, 3), limit=40).shown == 3


def test_ten_thousand_rows_render_in_well_under_a_second():
    import time

    n = 10_000
    table = pa.table({"id": pa.array(range(n), pa.int64()),
                      "customer": pa.array([f"customer-{i % 97}" for i in range(n)]),
                      "amount": pa.array([Decimal(i) / 4 for i in range(n)], pa.decimal128(18, 6)),
                      "ts": pa.array([BASE] * n, pa.timestamp("us", tz="UTC")),
                      "note": pa.array([f"external-reference-{i:032x}" for i in range(n)])})
    t0 = time.perf_counter()
    text = boxes(table, styled=True).text()
    seconds = time.perf_counter() - t0
    assert text.count("\n") == n + 5
    assert seconds < 1.0, f"10,000 rows took {seconds:.2f} s to draw"  # (rich took 4 s)


def test_expanded_rows_show_one_column_value_pair_a_line():
    table = pa.table({"id": [2], "customer_id": ["c2"], "note": ["a\nb"], "n": pa.array(
        [None], pa.int64())})
    assert expanded(table).text().splitlines() == [
        "-[ RECORD 1 ]-----", "id          | 2", "customer_id | c2", "note        | a",
        "            | b", "n           | NULL"]


def test_the_expanded_display_is_psqls_with_null_and_empty_apart():
    table = pa.table({"id": [1, 22], "note": ["two\nlines of text", ""],
                      "gone": pa.array([None, None], pa.string())})
    assert expanded(table).text().splitlines() == [
        "-[ RECORD 1 ]-------",  # as wide as the widest line
        "id   | 1", "note | two", "     | lines of text", "gone | NULL",
        "-[ RECORD 2 ]-------",
        "id   | 22", "note |", "gone | NULL",
    ]
