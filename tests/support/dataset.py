"""One deterministic billing dataset, loaded the same into PostgreSQL, SQLite and DuckDB.

The differential and type tests query it through meterql and compare with a reference: an
in-memory DuckDB holding the same rows under the same names (``pg.public.events``, ...) and the
same DuckDB types the catalog reports, so one SQL text runs in both.

Tables (source.schema.table):

- ``pg.public.events``       usage events: exact quantities, unconstrained unit prices, instants
- ``pg.public.plans``        plan definitions: fees, a boolean, a date and a timestamp without zone
- ``lite.main.customers``    customers in SQLite: names in every script, decimals kept as REAL/TEXT
- ``dk.main.prices``         price list in a DuckDB file
- ``dk.main.adjustments``    credits and charges in a DuckDB file
- ``pg.public.edge_cases``, ``lite.main.edge_cases``, ``dk.main.edge_cases``: one small table of
  hand-picked values, the same rows in every source, for the transpilation pitfalls (integer
  division with negatives and zeros, NULL ordering, decimal scale, time zones, unicode text
  under collations, three-valued logic); SQLite holds its instants as naive UTC timestamps

Every nullable column holds NULLs; decimals reach 0.000001 and 12345678.123456 and go negative;
text holds quotes, backslashes, unicode, emoji and empty strings; instants sit on month ends and
on the US and EU daylight-saving changes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

UTC = dt.UTC
SEED = 20240331

N_CUSTOMERS = 200
#: Events point at customers 1..N_CUSTOMERS + ORPHANS; the last ones do not exist in SQLite.
ORPHANS = 8
N_EVENTS = 3000
N_ADJUSTMENTS = 400

METERS = ["api_calls", "storage_gb", "seats", "egress", "it's", 'say "hi"', "東京", ""]
PLAN_CODES = ["free", "pro", "team", "enterprise", "o'legacy"]
COUNTRIES = ["DE", "US", "JP", "FR", "GB", "", "ZA"]
NAMES = [
    "O'Brien & Sons",
    'The "Quoted" Co',
    "Zoë Ltd",
    "東京 Trading",
    "Rocket 🚀",
    "",
    "back\\slash",
    "alpha",
    "Alpha",
    "beta",
    "Beta",
    "_under",
    "zulu",
    "Émile",
    "tab\there",
]
NOTES = [
    "ok",
    "it's fine",
    'he said "no"',
    "Zoë",
    "東京",
    "🎉 launch",
    "",
    "back\\slash",
    "line\nbreak",
    "percent % and _",
    "UPPER",
    "lower",
]


def _offset(hours: int, minutes: int = 0) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours, minutes=minutes))


#: Instants on month ends and daylight-saving changes, written in their local offsets.
SPECIAL_INSTANTS = [
    dt.datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2024, 2, 1, 0, 0, 0, tzinfo=UTC),
    dt.datetime(2024, 2, 29, 23, 30, 0, tzinfo=_offset(-5)),  # March in UTC
    dt.datetime(2024, 2, 29, 12, 0, 0, tzinfo=UTC),
    dt.datetime(2024, 3, 1, 0, 30, 0, tzinfo=_offset(1)),  # still February in UTC
    dt.datetime(2024, 3, 10, 1, 59, 59, tzinfo=_offset(-5)),  # New York, just before DST
    dt.datetime(2024, 3, 10, 3, 0, 0, tzinfo=_offset(-4)),  # New York, just after DST
    dt.datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC),  # Europe, just before DST
    dt.datetime(2024, 3, 31, 3, 0, 0, tzinfo=_offset(2)),  # Europe, just after DST
    dt.datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC),
    dt.datetime(2024, 4, 1, 8, 59, 59, tzinfo=_offset(9)),  # Tokyo: still March in UTC
    dt.datetime(2024, 4, 30, 23, 0, 0, tzinfo=_offset(-3)),  # May in UTC
]
SPECIAL_QUANTITIES = [
    Decimal("0.000001"),
    Decimal("12345678.123456"),
    Decimal("-3.500000"),
    Decimal("0"),
    Decimal("-0.000001"),
    Decimal("999.999999"),
]
SPECIAL_PRICES = [
    Decimal("0.000001"),
    Decimal("12345678.123456"),
    Decimal("0.0123456789"),
    Decimal("-0.5"),
    Decimal("0"),
    Decimal("100"),
    Decimal("1.0000000001"),
]


@dataclass
class TableData:
    """Rows of one table plus its declared column types at the source."""

    name: str  # source.schema.table
    columns: list[tuple[str, str]]  # (name, type as the source declares it)
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


@dataclass
class Dataset:
    events: TableData
    plans: TableData
    customers: TableData
    prices: TableData
    adjustments: TableData
    edge_cases: dict[str, TableData] = field(default_factory=dict)  # source -> table

    def tables(self) -> list[TableData]:
        return [self.events, self.plans, self.customers, self.prices, self.adjustments,
                *self.edge_cases.values()]


def _maybe(rng: random.Random, value: Any, null_rate: float = 0.05) -> Any:
    return None if rng.random() < null_rate else value


def build_dataset(seed: int = SEED) -> Dataset:
    rng = random.Random(seed)

    customers = TableData(
        "lite.main.customers",
        [
            ("id", "INTEGER"),
            # Declared case-insensitive, as SQLite apps often do: meterql compares bytewise.
            ("name", "TEXT COLLATE NOCASE"),
            ("plan", "TEXT"),
            ("country", "TEXT"),
            ("signup", "DATE"),
            ("credit", "DECIMAL(12,2)"),
            ("active", "BOOLEAN"),
        ],
    )
    credits = [Decimal("0.00"), Decimal("-15.50"), Decimal("9999999999.99"), Decimal("0.01")]
    for cid in range(1, N_CUSTOMERS + 1):
        if cid <= len(NAMES):
            name = NAMES[cid - 1]
        else:
            name = _maybe(rng, f"customer {cid:03d}", 0.04)
        signup = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(0, 560))
        if cid % 17 == 0:
            signup = dt.date(2024, 2, 29)
        if cid % 23 == 0:
            signup = dt.date(2024, 1, 31)
        credit = (
            credits[cid % len(credits)]
            if cid % 5 == 0
            else Decimal(rng.randrange(-100_000, 5_000_000)) / 100
        )
        customers.rows.append(
            (
                cid,
                name,
                _maybe(rng, PLAN_CODES[cid % len(PLAN_CODES)], 0.06),
                _maybe(rng, COUNTRIES[rng.randrange(len(COUNTRIES))], 0.06),
                _maybe(rng, signup, 0.05),
                _maybe(rng, credit, 0.07),
                _maybe(rng, rng.random() < 0.7, 0.08),
            )
        )

    # A customer without an id: it never joins, and NOT IN over ids sees a NULL.
    customers.rows.append((None, "no id", "pro", "DE", dt.date(2024, 3, 31), Decimal("1.00"), True))

    plans = TableData(
        "pg.public.plans",
        [
            ("code", "text PRIMARY KEY"),
            ("name", "text"),
            ("monthly_fee", "numeric(12,2)"),
            ("included_units", "integer"),
            ("is_public", "boolean"),
            ("launched", "date"),
            ("updated_at", "timestamp without time zone"),
        ],
    )
    plans.rows = [
        ("free", "Free", Decimal("0.00"), 1000, True, dt.date(2020, 1, 31),
         dt.datetime(2024, 3, 10, 2, 30, 0)),
        ("pro", "Pro 'Plus'", Decimal("49.99"), 100000, True, dt.date(2021, 2, 28),
         dt.datetime(2024, 2, 29, 23, 59, 59, 999999)),
        ("team", 'Team "Max"', Decimal("199.00"), None, None, dt.date(2024, 2, 29), None),
        ("enterprise", "Entreprise Zoë 東京", Decimal("9999999999.99"), 0, False, None,
         dt.datetime(2023, 12, 31, 23, 0, 0)),
        ("o'legacy", "", None, -1, False, dt.date(1999, 12, 31),
         dt.datetime(2000, 1, 1, 0, 0, 0)),
        ("unused", None, Decimal("-1.00"), 5, True, dt.date(2024, 3, 31),
         dt.datetime(2024, 3, 31, 1, 30, 0)),
    ]

    events = TableData(
        "pg.public.events",
        [
            ("id", "bigint PRIMARY KEY"),
            ("customer_id", "integer"),
            ("meter", "text"),
            ("ts", "timestamp with time zone"),
            ("quantity", "numeric(18,6)"),
            ("unit_price", "numeric"),
            ("note", "text"),
        ],
    )
    start = dt.datetime(2024, 1, 15, tzinfo=UTC)
    span = int((dt.datetime(2024, 4, 20, tzinfo=UTC) - start).total_seconds())
    for eid in range(1, N_EVENTS + 1):
        if eid % 97 == 0:
            ts = SPECIAL_INSTANTS[(eid // 97) % len(SPECIAL_INSTANTS)]
        else:
            micros = rng.randrange(0, 1_000_000) if eid % 3 == 0 else 0
            ts = start + dt.timedelta(seconds=rng.randrange(span), microseconds=micros)
        if eid % 41 == 0:
            quantity = SPECIAL_QUANTITIES[(eid // 41) % len(SPECIAL_QUANTITIES)]
        else:
            quantity = Decimal(rng.randrange(0, 50_000_000)) / 1_000_000
        if eid % 37 == 0:
            price = SPECIAL_PRICES[(eid // 37) % len(SPECIAL_PRICES)]
        else:
            price = Decimal(rng.randrange(1, 10**9)) / 10**10 * rng.choice([1, 10, 1000])
        events.rows.append(
            (
                eid,
                _maybe(rng, rng.randrange(1, N_CUSTOMERS + ORPHANS + 1), 0.03),
                _maybe(rng, METERS[rng.randrange(len(METERS))], 0.04),
                _maybe(rng, ts, 0.03),
                _maybe(rng, quantity, 0.04),
                _maybe(rng, price, 0.05),
                _maybe(rng, NOTES[rng.randrange(len(NOTES))], 0.3),
            )
        )

    prices = TableData(
        "dk.main.prices",
        [("plan", "VARCHAR"), ("meter", "VARCHAR"), ("price", "DECIMAL(12,6)"),
         ("valid_from", "DATE")],
    )
    for p_i, plan in enumerate([*PLAN_CODES, None]):
        for m_i, meter in enumerate([*METERS, None]):
            if (p_i + m_i) % 4 == 3:
                continue  # some combinations have no price
            for v_i, valid_from in enumerate(
                [dt.date(2024, 1, 1), dt.date(2024, 2, 29), dt.date(2024, 3, 31), None]
            ):
                if (p_i + m_i + v_i) % 3 == 0:
                    continue
                price = Decimal(rng.randrange(-1_000_000, 999_999_999)) / 1_000_000
                if (p_i, m_i, v_i) == (1, 1, 1):
                    price = Decimal("0.000001")
                if (p_i, m_i, v_i) == (2, 0, 2):
                    price = Decimal("123456.123456")
                prices.rows.append((plan, meter, _maybe(rng, price, 0.05), valid_from))

    adjustments = TableData(
        "dk.main.adjustments",
        [("id", "INTEGER"), ("customer_id", "INTEGER"), ("amount", "DECIMAL(18,6)"),
         ("reason", "VARCHAR"), ("created_at", "TIMESTAMP WITH TIME ZONE"),
         ("period", "DATE")],
    )
    reasons = ["refund", "goodwill", "late fee", "it's a credit", "Zoë's promo", "🎁", "", None]
    for aid in range(1, N_ADJUSTMENTS + 1):
        created = (
            SPECIAL_INSTANTS[aid % len(SPECIAL_INSTANTS)]
            if aid % 9 == 0
            else start + dt.timedelta(seconds=rng.randrange(span))
        )
        amount = Decimal(rng.randrange(-50_000_000_000, 50_000_000_000)) / 1_000_000
        if aid % 50 == 0:
            amount = Decimal("12345678.123456") * (-1 if aid % 100 else 1)
        if aid % 77 == 0:
            amount = Decimal("0.000001")
        adjustments.rows.append(
            (
                None if aid % 131 == 0 else aid,
                _maybe(rng, rng.randrange(1, N_CUSTOMERS + ORPHANS + 30), 0.05),
                _maybe(rng, amount, 0.05),
                reasons[aid % len(reasons)],
                _maybe(rng, created, 0.05),
                _maybe(rng, created.astimezone(UTC).date().replace(day=1), 0.05),
            )
        )

    return Dataset(events, plans, customers, prices, adjustments, build_edge_cases())


#: Column types of the edge-case table per source, as each source declares them.
EDGE_COLUMNS = {
    "pg": [("id", "integer PRIMARY KEY"), ("a", "integer"), ("b", "integer"),
           ("d", "numeric(18,6)"), ("n", "numeric"), ("r", "double precision"), ("s", "text"),
           ("s2", "text"), ("g", "text"), ("ts", "timestamp with time zone"), ("day", "date"),
           ("flag", "boolean")],
    "lite": [("id", "INTEGER"), ("a", "INTEGER"), ("b", "INTEGER"), ("d", "DECIMAL(18,6)"),
             ("n", "NUMERIC"), ("r", "REAL"), ("s", "TEXT"), ("s2", "TEXT"), ("g", "TEXT"),
             ("ts", "TIMESTAMP"), ("day", "DATE"), ("flag", "BOOLEAN")],
    "dk": [("id", "INTEGER"), ("a", "INTEGER"), ("b", "INTEGER"), ("d", "DECIMAL(18,6)"),
           ("n", "DECIMAL(38,10)"), ("r", "DOUBLE"), ("s", "VARCHAR"), ("s2", "VARCHAR"),
           ("g", "VARCHAR"), ("ts", "TIMESTAMP WITH TIME ZONE"), ("day", "DATE"),
           ("flag", "BOOLEAN")],
}
EDGE_TABLES = {"pg": "pg.public.edge_cases", "lite": "lite.main.edge_cases",
               "dk": "dk.main.edge_cases"}
#: Text that sorts differently bytewise and under a linguistic (ICU) collation, changes length
#: or case in unicode, and holds LIKE's wildcards.
EDGE_TEXT = [
    "apple", "Apple", "banana", "Banana", "M", "m", "Mango", "mango", "Zoë", "zoe", "émile",
    "Émile", "ÉMILE", "straße", "東京", "🎉 party", "", "  padded  ", "a_b", "a%b", "aXb", "abc",
    "_x", "Ñandú", "zulu", "Z", None, "İstanbul", "ǅemal", None,
]
EDGE_TEXT2 = ["x", None, "", "Y", "-", None, "ü"]
EDGE_GROUPS = ["north", "South", "east", None, "Ünter", "south"]
#: Integer pairs for division: both signs, zero numerators, zero and NULL divisors.
EDGE_A = [7, -7, 7, -7, 0, None, 1, -1, 9, -9, 100, 5, 2147483647, -2147483648, 3]
EDGE_B = [2, 2, -2, -2, 3, 4, None, 3, -4, 4, 7, 0, 2, 3, None]
EDGE_D = [
    Decimal("0.000001"), Decimal("-3.500000"), Decimal("12345678.123456"), Decimal("1.005"),
    Decimal("2.675"), Decimal("-2.675"), Decimal("0.5"), Decimal("-0.5"), None, Decimal("0"),
    Decimal("0.1"), Decimal("99999.999999"), Decimal("-0.000001"),
]
EDGE_N = [
    Decimal("0.0123456789"), Decimal("1.0000000001"), Decimal("-0.3333333333"), Decimal("100"),
    None, Decimal("2.5"), Decimal("-2.5"), Decimal("12345678.1234"), Decimal("0.1"),
    Decimal("-0.0000000001"), Decimal("1.5"),
]
EDGE_R = [0.1, 2.5, -2.5, 0.125, None, 1.005, -0.0, 1e-7, 12345678.123456, 0.5, 3.0]
#: Instants on month ends and across the US and EU daylight-saving changes.
EDGE_INSTANTS = [
    *SPECIAL_INSTANTS,
    dt.datetime(2024, 3, 10, 6, 59, 59, tzinfo=UTC),  # 01:59:59 in New York, before DST
    dt.datetime(2024, 3, 10, 7, 0, 0, tzinfo=UTC),  # 03:00 in New York, after DST
    dt.datetime(2024, 11, 3, 5, 30, 0, tzinfo=UTC),  # 01:30 EDT in New York
    dt.datetime(2024, 11, 3, 6, 30, 0, tzinfo=UTC),  # 01:30 EST in New York (again)
    dt.datetime(2024, 10, 27, 0, 30, 0, tzinfo=UTC),  # 02:30 CEST in Berlin
    dt.datetime(2024, 10, 27, 1, 30, 0, tzinfo=UTC),  # 02:30 CET in Berlin (again)
    dt.datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    None,
]
EDGE_DAYS = [dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 1), None,
             dt.date(2024, 12, 31), dt.date(2023, 2, 28), dt.date(2024, 3, 10)]
EDGE_FLAGS = [True, False, None, True, False]
N_EDGE = 36


def build_edge_cases() -> dict[str, TableData]:
    """The edge-case rows (no randomness: each column cycles through its own list)."""
    cycles = (EDGE_A, EDGE_B, EDGE_D, EDGE_N, EDGE_R, EDGE_TEXT, EDGE_TEXT2, EDGE_GROUPS,
              EDGE_INSTANTS, EDGE_DAYS, EDGE_FLAGS)
    rows = [(i + 1, *(values[i % len(values)] for values in cycles)) for i in range(N_EDGE)]
    tables = {}
    for source, columns in EDGE_COLUMNS.items():
        table = TableData(EDGE_TABLES[source], columns, list(rows))
        if source == "lite":
            # SQLite has no instants: it keeps the same moments as naive UTC timestamps.
            table.rows = [row[:9] + (_naive_utc(row[9]),) + row[10:] for row in rows]
        tables[source] = table
    return tables


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


# -- loading into the sources ---------------------------------------------------------------


def _pg_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def create_postgres(pg_cluster: Any, dbname: str, data: Dataset) -> str:
    """Create ``dbname`` (with an ICU collation where the server has one, so text sorts as in
    a real deployment, not bytewise) and load the PostgreSQL tables; returns its URI."""
    try:
        pg_cluster.run_sql(
            f'CREATE DATABASE "{dbname}" TEMPLATE template0 LOCALE_PROVIDER icu '
            "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    except RuntimeError:
        pg_cluster.create_database(dbname)
    statements = []
    for table in (data.plans, data.events, data.edge_cases["pg"]):
        name = table.name.split(".", 1)[1]
        cols = ", ".join(f"{c} {t}" for c, t in table.columns)
        statements.append(f"CREATE TABLE {name} ({cols});")
        values = ",\n".join(
            "(" + ", ".join(_pg_literal(v) for v in row) + ")" for row in table.rows
        )
        statements.append(f"INSERT INTO {name} VALUES\n{values};")
    statements.append("ANALYZE;")
    pg_cluster.run_sql("\n".join(statements), dbname=dbname)
    return pg_cluster.uri(dbname)


def sqlite_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def create_sqlite(path: Path, data: Dataset) -> Path:
    con = sqlite3.connect(path)
    try:
        for table in (data.customers, data.edge_cases["lite"]):
            name = table.name.split(".")[-1]
            cols = ", ".join(f"{c} {t}" for c, t in table.columns)
            con.execute(f"CREATE TABLE {name} ({cols})")
            marks = ", ".join("?" for _ in table.columns)
            con.executemany(
                f"INSERT INTO {name} VALUES ({marks})",
                [tuple(sqlite_value(v) for v in row) for row in table.rows],
            )
        con.commit()
    finally:
        con.close()
    return path


def arrow_table(table: TableData, duckdb_types: dict[str, str]) -> pa.Table:
    """The rows as Arrow, typed by the DuckDB types (as the catalog reports them)."""
    from meterql.dialects.arrow_types import arrow_type

    columns = {}
    for i, name in enumerate(table.column_names):
        typ = arrow_type(duckdb_types[name])
        columns[name] = pa.array([row[i] for row in table.rows], type=typ)
    return pa.table(columns)


def create_duckdb(path: Path, data: Dataset) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        for table in (data.prices, data.adjustments, data.edge_cases["dk"]):
            name = table.name.split(".", 1)[1]
            cols = ", ".join(f"{c} {t}" for c, t in table.columns)
            con.execute(f"CREATE TABLE {name} ({cols})")
            rows = arrow_table(table, dict(table.columns))  # noqa: F841 - read by DuckDB
            con.execute(f"INSERT INTO {name} SELECT * FROM rows")
    finally:
        con.close()
    return path


def create_reference(data: Dataset, catalog_types: dict[str, dict[str, str]]):
    """An in-memory DuckDB with ``pg``, ``lite`` and ``dk`` attached, holding the same rows with
    the DuckDB types the catalog reports (``catalog_types[table][column]``)."""
    con = duckdb.connect(":memory:")
    con.execute("SET GLOBAL TimeZone = 'UTC'")  # GLOBAL: queries run on cursors
    attached: set[str] = set()
    for table in data.tables():
        source, schema, name = table.name.split(".")
        if source not in attached:
            con.execute(f"ATTACH ':memory:' AS {source}")
            attached.add(source)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {source}.{schema}")
        types = catalog_types[table.name]
        cols = ", ".join(f'"{c}" {types[c]}' for c in table.column_names)
        con.execute(f"CREATE TABLE {table.name} ({cols})")
        rows = arrow_table(table, types)  # noqa: F841 - read by DuckDB
        con.execute(f"INSERT INTO {table.name} SELECT * FROM rows")
    return con


@dataclass
class Billing:
    """The dataset in its three sources, registered in a workspace, plus the reference."""

    data: Dataset
    ws: Any  # meterql.Workspace
    ref: duckdb.DuckDBPyConnection
    pg_uri: str
    sqlite_path: Path
    duckdb_path: Path

    def close(self) -> None:
        self.ref.close()
        self.ws.close()


@contextlib.contextmanager
def host_timezone(name: str) -> Iterator[None]:
    """Run the block as if the machine's local time zone were ``name``.

    DuckDB takes an instance's default TimeZone from the process when the instance is created,
    so a workspace opened here computes as it would on such a machine.
    """
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


#: The local zone the billing workspace is opened in: answers must not depend on it.
HOST_TIMEZONE = "America/New_York"


def open_billing(pg_cluster: Any, folder: Path, dbname: str = "billing") -> Billing:
    import meterql

    data = build_dataset()
    pg_uri = create_postgres(pg_cluster, dbname, data)
    sqlite_path = create_sqlite(folder / "customers.sqlite", data)
    duckdb_path = create_duckdb(folder / "prices.duckdb", data)
    with host_timezone(HOST_TIMEZONE):
        ws = meterql.connect(folder / "home")
    try:
        with host_timezone(HOST_TIMEZONE):
            ws.sources.add("pg", pg_uri)
            ws.sources.add("lite", f"sqlite://{sqlite_path}")
            ws.sources.add("dk", f"duckdb://{duckdb_path}")
        types = {
            t.full_name: {c.name: c.type for c in t.columns} for t in ws.tables()
        }
        ref = create_reference(data, types)
    except BaseException:
        ws.close()
        raise
    return Billing(data, ws, ref, pg_uri, sqlite_path, duckdb_path)
