"""Every PostgreSQL type of docs/guide.md's type table reads the same through every path.

One table per type (``id``, ``v``) holds edge values (extremes, empty values, NULL). Each is read
five ways: a query sent whole to PostgreSQL, a cross-source join (the table scanned into DuckDB),
a single-source derived table inside a cross-source query (sent as one fragment), the replica of
a sync-mode source on the same database, and a replica whose rows arrived as changes through a
logical replication slot (``cdc``). All must give the same rows, and the values must be what
PostgreSQL itself prints for them: the expected value of each row is computed from ``COPY ... TO
STDOUT`` (the type's own output function), never written down by hand.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pytest

import meterql
from meterql.engine.planner.plan import QueryFragment, ScanFragment

pytestmark = pytest.mark.postgres


def _real(text: str) -> float:
    """A float4 as DuckDB's FLOAT holds it: the float32 nearest PostgreSQL's shortest text."""
    value: float = struct.unpack("f", struct.pack("f", float(text)))[0]
    return value


_INTERVAL_PART = re.compile(r"([+-]?\d+) (year|mon|day)s?")
_INTERVAL_TIME = re.compile(r"([+-])?(\d+):(\d\d):(\d\d)(?:\.(\d+))?$")


def _interval(text: str) -> pa.MonthDayNano:
    """PostgreSQL's ``postgres`` IntervalStyle text as Arrow's month, day, nanosecond triple."""
    months = days = 0
    for number, unit in _INTERVAL_PART.findall(text):
        if unit == "year":
            months += 12 * int(number)
        elif unit == "mon":
            months += int(number)
        else:
            days += int(number)
    nanos = 0
    match = _INTERVAL_TIME.search(text)
    if match:
        sign, hours, minutes, seconds, fraction = match.groups()
        micros = ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000
        micros += int((fraction or "").ljust(6, "0"))
        nanos = (-micros if sign == "-" else micros) * 1000
    return pa.MonthDayNano([months, days, nanos])


def _timestamptz(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _text(text: str) -> str:
    return text


#: (PostgreSQL type, SQL literals of its values, PostgreSQL's text -> the value meterql hands
#: out, whether ``SELECT *`` on it is sent whole). The types follow docs/guide.md's table; a
#: table holding a type PostgreSQL compares otherwise than DuckDB is scanned instead (the guide
#: says why), which the test checks too.
TYPES: dict[str, tuple[str, list[str], Callable[[str], Any], bool]] = {
    "numeric_ps": ("numeric(12,4)", ["0", "12345678.1234", "-99999999.9999", "0.0001"],
                   Decimal, True),
    "numeric_wide": ("numeric(50,2)", ["123456789012345678901234567890123456.78", "-0.01"],
                     Decimal, True),
    "numeric_plain": ("numeric", ["0.1234567891", "-1234567890123456789012345678.5", "1e-10",
                                  "42", "9.5", "10", "1.0", "1.00"], Decimal, True),
    "timestamptz": ("timestamp with time zone",
                    ["'2024-03-10 03:00:00-04'", "'0001-01-01 00:00:00+00'",
                     "'9999-12-31 23:59:59.999999+00'", "'1970-01-01 00:00:00+00'"],
                    _timestamptz, True),
    "timestamp": ("timestamp", ["'2024-02-29 23:59:59.999999'", "'0001-01-01 00:00:00'",
                                "'9999-12-31 23:59:59.999999'"],
                  dt.datetime.fromisoformat, True),
    "date": ("date", ["'2024-02-29'", "'0001-01-01'", "'9999-12-31'", "'1970-01-01'"],
             dt.date.fromisoformat, True),
    "time": ("time", ["'00:00:00'", "'23:59:59.999999'", "'12:34:56.5'"],
             dt.time.fromisoformat, True),
    "interval": ("interval", ["'1 day 02:00:00'", "'-1 year -2 mons +3 days -04:05:06.789'",
                              "'0'", "'178000000 years'", "'-2147483648 days'",
                              "'2562047:47:16.854775'"],
                 _interval, True),
    "boolean": ("boolean", ["true", "false"], lambda t: t == "t", True),
    "smallint": ("smallint", ["-32768", "32767", "0"], int, True),
    "integer": ("integer", ["-2147483648", "2147483647", "0"], int, True),
    "bigint": ("bigint", ["-9223372036854775808", "9223372036854775807", "0"], int, True),
    "double": ("double precision", ["1.7976931348623157e308", "-5e-324", "'Infinity'",
                                    "'-Infinity'", "'NaN'", "0.1", "-0.0"], float, True),
    "real": ("real", ["3.4028235e38", "1e-45", "'Infinity'", "'NaN'", "0.1", "-1.5"],
             _real, False),
    "text": ("text", ["E'it''s \"quoted\" \\\\ Zo\u00eb \u6771\u4eac \U0001f680'",
                      "''", "E'tab\\there\\nnew line'", "' trailing  '"], _text, True),
    "varchar": ("varchar(5)", ["'abcde'", "''", "'\u00e9\u00e9'"], _text, True),
    "char": ("char(3)", ["'FR'", "''", "'abc'"], _text, False),
    "json": ("json", ["'{\"a\": [1, 2.50, \"x\"],  \"b\":null}'", "'null'", "'[]'",
                      "'\"\u00e9\"'"], _text, True),
    "jsonb": ("jsonb", ["'{\"b\": 2, \"a\": [1, 2.50]}'", "'null'", "'{}'",
                        "'\"\\\\u00e9\"'"], _text, True),
    "uuid": ("uuid", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
                      "'00000000-0000-0000-0000-000000000000'",
                      "'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'"], _text, True),
    "bytea": ("bytea", ["'\\x'", "'\\x00ff80'", "convert_to('Zo\u00eb', 'UTF8')"],
              lambda t: bytes.fromhex(t[2:]), True),
    "int_array": ("integer[]", ["'{1,NULL,3}'", "'{}'", "'{{1,2},{3,4}}'"], _text, False),
    "text_array": ("text[]", ["ARRAY['a b', 'c\"d', NULL, '']"], _text, False),
    "inet": ("inet", ["'10.0.0.1'", "'192.168.0.0/16'", "'::1'", "'10.1.2.3/8'"],
             _text, False),
    "cidr": ("cidr", ["'10.0.0.0/8'", "'::/0'"], _text, False),
    "money": ("money", ["12.34", "'-92233720368547758.08'", "0"], _text, False),
    "int4range": ("int4range", ["'[1,5)'", "'empty'", "'(,10]'"], _text, False),
    "daterange": ("daterange", ["'[2024-01-01,)'", "'[2024-01-01,2024-02-01]'"], _text, False),
    "numrange": ("numrange", ["'(1.5,2.25]'"], _text, False),
    "timetz": ("time with time zone", ["'12:00:00+05'", "'23:59:59.999999-12'"], _text, False),
}

_COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _copy_field(field: str) -> str | None:
    """One field of COPY's text format: ``\\N`` is NULL, backslash escapes are undone."""
    if field == "\\N":
        return None

    def unescape(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "01234567":
            return chr(int(code, 8))
        if code[0] == "x":
            return chr(int(code[1:], 16))
        return _COPY_ESCAPES.get(code, code)

    return re.sub(r"\\([0-7]{1,3}|x[0-9a-fA-F]{1,2}|.)", unescape, field)


def _postgres_text(pg_cluster, db: str, table: str) -> list[tuple[int, str | None]]:
    """Each row of ``table`` as PostgreSQL prints it (its output functions, in UTC)."""
    out = pg_cluster.run_sql(
        "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres';\n"
        f"COPY (SELECT id, v FROM {table} ORDER BY id) TO STDOUT;",
        dbname=db,
    )
    rows = []
    for line in out.split("\n"):
        if not line or line.startswith("SET"):
            continue
        ident, value = line.split("\t")
        rows.append((int(ident), _copy_field(value)))
    return rows


@pytest.fixture(scope="module")
def env(pg_cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pg_type_paths")
    pg_cluster.create_database("type_paths")
    creates, inserts = [], []
    ids = 0
    for name, (pg_type, literals, _, _) in TYPES.items():
        rows = [f"({i}, {lit})" for i, lit in enumerate(literals, start=1)]
        rows.append(f"({len(literals) + 1}, NULL)")  # NULLs stay NULL
        ids = max(ids, len(rows))
        creates.append(f"CREATE TABLE t_{name} (id integer PRIMARY KEY, v {pg_type});")
        inserts.append(f"INSERT INTO t_{name} VALUES {', '.join(rows)};")
    pg_cluster.run_sql("\n".join(creates + inserts), dbname="type_paths")
    # The same tables, filled only after a first sync: their rows reach the replica as changes
    # read from a logical replication slot (PostgreSQL's pgoutput text), not by a scan.
    pg_cluster.create_database("type_paths_cdc")
    pg_cluster.run_sql(
        "ALTER DATABASE type_paths_cdc SET synchronous_commit = on;\n" + "\n".join(creates)
        + "\nCREATE PUBLICATION type_paths FOR ALL TABLES;\n"
        "SELECT pg_create_logical_replication_slot('type_paths_slot', 'pgoutput');",
        dbname="type_paths_cdc",
    )
    other = folder / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute(f"CREATE TABLE ids AS SELECT range::INTEGER AS id FROM range(1, {ids + 1})")
    con.close()
    with meterql.connect(folder / "home") as ws:
        ws.sources.add("pg", pg_cluster.uri("type_paths"))
        ws.sources.add("rep", pg_cluster.uri("type_paths"), mode="sync")
        ws.sources.add("dk", f"duckdb://{other}")
        ws.sources.add("cdc", pg_cluster.uri("type_paths_cdc"), mode="sync",
                       options={"cdc_slot": "type_paths_slot", "cdc_publication": "type_paths"})
        try:
            for source in ("rep", "cdc"):
                reports = ws.sync(source)
                assert [r.error for r in reports] == [None] * len(reports)
            pg_cluster.run_sql("\n".join(inserts), dbname="type_paths_cdc")
            [report] = ws.sync("cdc")
            assert report.error is None
            assert {t.strategy for t in report.tables} == {"cdc"}
            assert sum(t.changes["insert"] for t in report.tables) == sum(
                len(literals) + 1 for _, literals, _, _ in TYPES.values())
            yield ws, pg_cluster
        finally:
            pg_cluster.run_sql("SELECT pg_drop_replication_slot('type_paths_slot')",
                               dbname="type_paths_cdc")


def _comparable(rows: list[dict]) -> list[tuple]:
    """Rows as tuples, a float NaN as a marker (NaN equals nothing, itself included)."""
    def value(v: Any) -> Any:
        return "NaN" if isinstance(v, float) and math.isnan(v) else v
    return [(row["id"], value(row["v"])) for row in rows]


def _pg_fragments(plan) -> list[type]:
    return [type(f) for f in plan.fragments if f.source == "pg"]


def _read(ws, sql: str) -> tuple[pa.DataType, list[tuple]]:
    table = ws.query(sql, max_rows=None).table
    assert table.column_names == ["id", "v"], sql
    return table.schema.field("v").type, _comparable(table.to_pylist())


@pytest.mark.parametrize("name", list(TYPES))
def test_every_path_reads_what_postgres_prints(env, name):
    ws, pg_cluster = env
    _, _, parse, whole = TYPES[name]
    table = f"t_{name}"
    expected = _comparable([
        {"id": ident, "v": None if text is None else parse(text)}
        for ident, text in _postgres_text(pg_cluster, "type_paths", table)
    ])
    queries = {
        "whole": f"SELECT * FROM pg.public.{table} ORDER BY id",
        "cross-source": f"SELECT t.* FROM pg.public.{table} AS t "
                        "JOIN dk.main.ids AS i ON i.id = t.id ORDER BY t.id",
        "subquery": f"SELECT s.* FROM (SELECT * FROM pg.public.{table}) AS s "
                    "JOIN dk.main.ids AS i ON i.id = s.id ORDER BY s.id",
        "replica": f"SELECT * FROM rep.public.{table} ORDER BY id",
        "change log": f"SELECT * FROM cdc.public.{table} ORDER BY id",
    }
    plans = {path: ws.explain(sql) for path, sql in queries.items()}
    assert (plans["whole"].residual is None) == whole, plans["whole"]
    assert plans["cross-source"].residual is not None
    assert _pg_fragments(plans["cross-source"]) == [ScanFragment]
    assert _pg_fragments(plans["subquery"]) == [QueryFragment if whole else ScanFragment]
    for replica in ("replica", "change log"):
        assert not plans[replica].fragments and plans[replica].local_tables

    results = {path: _read(ws, sql) for path, sql in queries.items()}
    for path, (arrow_type, rows) in results.items():
        assert rows == expected, f"{name} via {path}"
        assert arrow_type == results["whole"][0], f"{name} via {path}: {arrow_type}"


@pytest.mark.parametrize(
    "sql, params",
    [
        # ordered, distinct and grouped by the source's own values, not by their text
        ("SELECT v FROM {s}.public.t_numeric_plain ORDER BY v DESC", {}),
        ("SELECT DISTINCT v FROM {s}.public.t_numeric_plain ORDER BY v", {}),
        ("SELECT v, count(*) AS n FROM {s}.public.t_uuid GROUP BY v ORDER BY v", {}),
        ("SELECT max(v) AS top, sum(v) AS total, count(*) FROM {s}.public.t_numeric_wide", {}),
        ("SELECT id, id, v FROM {s}.public.t_uuid ORDER BY id", {}),
        ("SELECT coalesce(v, '00000000-0000-0000-0000-000000000001') AS v "
         "FROM {s}.public.t_uuid ORDER BY 1", {}),
        ("SELECT v FROM {s}.public.t_uuid WHERE id = 1 "
         "UNION ALL SELECT v FROM {s}.public.t_uuid WHERE id = 3", {}),
        ("SELECT id FROM {s}.public.t_uuid WHERE v = :u",
         {"u": "FFFFFFFF-ffff-ffff-ffff-ffffffffffff"}),
        ("SELECT u.v, n.v AS amount FROM {s}.public.t_uuid u JOIN {s}.public.t_numeric_ps n "
         "ON n.id = u.id ORDER BY n.v DESC NULLS LAST", {}),
    ],
)
def test_whole_queries_on_text_read_types_match_the_replica(env, sql, params):
    """A query sent whole reads uuid and numeric results as text around the query, not inside
    it: its ORDER BY, DISTINCT, GROUP BY, UNION and parameters keep PostgreSQL's meaning, and
    the answer (names, types, rows, order) is the replica's."""
    ws, _ = env
    whole = sql.format(s="pg")
    assert ws.explain(whole).residual is None
    got = ws.query(whole, params=params).table
    want = ws.query(sql.format(s="rep"), params=params).table
    assert got.schema == want.schema
    assert got.to_pylist() == want.to_pylist()
    assert got.num_rows > 0
