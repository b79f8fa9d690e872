"""A small dataset built to break federated engines, for the random differential suite.

The same rows live in PostgreSQL (``pg``), SQLite (``lite``) and a DuckDB file (``duck``), and in
a DuckDB reference database under the same names with the DuckDB types the catalog reports, so
one SQL text runs through meterql and straight in DuckDB (as tests/support/dataset.py does for the
billing dataset). The values are the ones engines disagree on:

- NULLs in every nullable column, NULL join keys, duplicate keys and keys one side lacks
  (``customer_id`` runs over different ranges in each table);
- PostgreSQL ``char(n)`` holding padded values ('FR' and 'FR ' are both 'FR ' there), compared
  with text columns holding 'FR', 'FR ' and ' FR';
- PostgreSQL ``real`` (float4) holding 0.1, 16777217 (read back 16777216), 3.4e38 and tiny
  values; SQLite ``REAL`` and DuckDB ``FLOAT``/``DOUBLE`` beside them;
- ``HUGEINT`` and ``UHUGEINT`` in the DuckDB file, up to their limits; bigints near 2^63;
  decimals with 38 digits; doubles past the bigint range and halves (2.5 rounds differently);
- instants on the daylight-saving changes of Europe/Berlin and America/New_York and on day and
  year ends; unicode, empty strings, leading and trailing spaces; booleans.

Tables (source.schema.table, rows):

- ``pg.public.accounts`` (240): the char(3), real, double, bigint, numeric(38,10), numeric and
  timestamptz columns
- ``pg.public.invoices`` (160): varchar(12), char(5), numeric(20,4), real, date, naive timestamp
- ``lite.main.payments`` (300), ``lite.main.tags`` (70): SQLite's loose types
- ``duck.main.sessions`` (220): HUGEINT, UHUGEINT, TIMESTAMPTZ, DECIMAL(38,10)
- ``duck.main.devices`` (40): UBIGINT, FLOAT

Example:
    >>> data = build_random_data()
    >>> [t.name for t in data.tables]  # doctest: +NORMALIZE_WHITESPACE
    ['pg.public.accounts', 'pg.public.invoices', 'lite.main.payments', 'lite.main.tags',
     'duck.main.sessions', 'duck.main.devices', 'ducku.main.counters']
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from tests.support.dataset import host_timezone, sqlite_value

UTC = dt.UTC
DATA_SEED = 15


@dataclass(frozen=True)
class Column:
    """A column as its source declares it, and what the random queries may do with it.

    ``family`` is the generator's type family: int, hugeint, decimal, float, real, text, char,
    bool, tstz, ts, date. ``key`` marks join keys (customer ids).
    """

    name: str
    declared: str
    family: str
    nullable: bool = True
    key: bool = False
    char_len: int | None = None


@dataclass
class RandomTable:
    """One table: its full name, columns and rows (values as the source stores them)."""

    name: str
    columns: list[Column]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def source(self) -> str:
        return self.name.split(".")[0]

    @property
    def short(self) -> str:
        return self.name.split(".")[-1]


@dataclass
class RandomData:
    tables: list[RandomTable]

    def table(self, name: str) -> RandomTable:
        return next(t for t in self.tables if t.name == name or t.short == name)


# -- value pools -------------------------------------------------------------------------------

#: Country-like codes: padded, unpadded, leading spaces, case, empty, unicode.
COUNTRIES = ["FR", "FR ", " FR", "DE", "de", "US", "", " ", "Zoë", "東京", "é"]
REGIONS = ["north", "North", "north ", "", "süd", "FR", "FR ", "a%b", "it's", "  ", "Ω"]
NAMES = ["Ann", "ann", "Zoë Ltd", "東京 Trading", "Rocket 🚀", "", " lead", "trail ", "O'Brien",
         "back\\slash", "tab\there", "ß", "ẞ"]
REALS = [0.1, 16777217.0, 3.4e38, 1e-38, 1.5, -0.0, 0.5, 2.25, -2.5, 0.3, 100.0, 1e-7, 7.0,
         16777216.0, 0.2]
#: No large negative double: sums of 1e19 and -1e19 depend on the order rows arrive in.
DOUBLES = [0.1, 1e19, -123.5, 2.5, -2.5, 0.5, 1.5, 123456789.123, 9.223372036854776e18, 3.0,
           1e-300, -0.0, 0.30000000000000004, 7.0]
BIGINTS = [2**63 - 1, -(2**63), 2**63 - 2, 2**62, 0, 1, -1, 2**62 + 1, 123, 7, -7, 2**31]
BALANCES = ["1234567890123456789012345678.0123456789", "-0.0000000001", "0", "3.1415926535",
            "-1234567.5", "0.1", "2.675", "-2.675", "99.9999999999", "100"]
AMOUNTS = ["0.1", "0.0000000001", "12345678901234567890.123", "-5", "2.675", "7", "-0.5", "1"]
#: Instants around the daylight-saving changes, day ends and the year end.
INSTANTS = [
    dt.datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC),  # Berlin, 01:59:59 CET, before DST
    dt.datetime(2024, 3, 31, 1, 0, 0, tzinfo=UTC),  # Berlin, 03:00 CEST
    dt.datetime(2024, 10, 27, 0, 30, 0, tzinfo=UTC),  # Berlin, 02:30 CEST
    dt.datetime(2024, 10, 27, 1, 30, 0, tzinfo=UTC),  # Berlin, 02:30 CET (again)
    dt.datetime(2024, 3, 10, 6, 59, 59, tzinfo=UTC),  # New York, 01:59:59 EST
    dt.datetime(2024, 3, 10, 7, 0, 0, tzinfo=UTC),  # New York, 03:00 EDT
    dt.datetime(2024, 11, 3, 5, 30, 0, tzinfo=UTC),  # New York, 01:30 EDT
    dt.datetime(2024, 11, 3, 6, 30, 0, tzinfo=UTC),  # New York, 01:30 EST (again)
    dt.datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    dt.datetime(2025, 1, 1, 1, 0, 0, tzinfo=UTC),  # 2025-01-01 03:00:00+02
    dt.datetime(2024, 2, 29, 23, 30, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    dt.datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC),
]
DAYS = [dt.date(2024, 2, 29), dt.date(2024, 3, 31), dt.date(2024, 12, 31), dt.date(2025, 1, 1),
        dt.date(2024, 3, 10), dt.date(2023, 12, 31)]
HUGEINTS = [2**127 - 1, -(2**127), 2**100, -(2**100), 2**64, 123, 0, 1, 7]
UHUGEINTS = [2**128 - 1, 2**127, 2**64, 0, 1, 123, 2**64 - 1]
TAGS = ["vip", "VIP", "vip ", "", "trial", "churn", "東京", None]
METHODS = ["card", "Card", "sepa", "", " card", None, "wire"]
STATUSES = ["paid", "open", "void", "", "Paid", "open "]
CODES = ["A1", "A1   ", "B", "", "ZZZZZ", "é"]
DEVICES = ["ios", "android", "web", "", "Web", "web "]


def _pick(rng: random.Random, pool: list, null_rate: float = 0.08) -> Any:
    return None if rng.random() < null_rate else pool[rng.randrange(len(pool))]


def _instant(rng: random.Random) -> dt.datetime:
    if rng.random() < 0.35:
        return INSTANTS[rng.randrange(len(INSTANTS))]
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    return start + dt.timedelta(seconds=rng.randrange(366 * 86400),
                                microseconds=rng.choice([0, 0, 500000, 1]))


def _key(rng: random.Random, low: int, high: int, null_rate: float = 0.06) -> int | None:
    return None if rng.random() < null_rate else rng.randint(low, high)


def _pad(value: str | None, n: int) -> str | None:
    """What PostgreSQL's char(n) stores and hands back: the value padded with spaces."""
    return None if value is None else value.ljust(n)


def build_random_data(seed: int = DATA_SEED) -> RandomData:
    """The rows (no I/O): seeded, so every run builds the same data."""
    rng = random.Random(seed)
    C = Column
    accounts = RandomTable("pg.public.accounts", [
        C("id", "bigint PRIMARY KEY", "int", nullable=False),
        C("customer_id", "integer", "int", key=True),
        C("country", "char(3)", "char", char_len=3),
        C("region", "text", "text"),
        C("score", "real", "real"),
        C("ratio", "double precision", "float"),
        C("big", "bigint", "int"),
        C("balance", "numeric(38,10)", "decimal"),
        C("amount", "numeric", "decimal"),
        C("seen", "timestamp with time zone", "tstz"),
        C("opened", "date", "date"),
        C("active", "boolean", "bool"),
        C("name", "text", "text"),
    ])
    for i in range(1, 241):
        accounts.rows.append((
            i, _key(rng, 1, 60), _pad(_pick(rng, COUNTRIES), 3), _pick(rng, REGIONS),
            _pick(rng, REALS), _pick(rng, DOUBLES), _pick(rng, BIGINTS),
            _maybe_decimal(rng, BALANCES), _maybe_decimal(rng, AMOUNTS), _maybe(rng, _instant),
            _pick(rng, DAYS, 0.1), _pick(rng, [True, False]), _pick(rng, NAMES),
        ))
    invoices = RandomTable("pg.public.invoices", [
        C("id", "integer PRIMARY KEY", "int", nullable=False),
        C("account_id", "bigint", "int", key=True),
        C("customer_id", "integer", "int", key=True),
        C("status", "varchar(12)", "text"),
        C("code", "char(5)", "char", char_len=5),
        C("total", "numeric(20,4)", "decimal"),
        C("tax", "real", "real"),
        C("issued", "date", "date"),
        C("due", "timestamp without time zone", "ts"),
        C("paid", "boolean", "bool"),
    ])
    for i in range(1, 161):
        due = _maybe(rng, _instant)
        invoices.rows.append((
            i, _key(rng, 1, 260), _key(rng, 10, 75), _pick(rng, STATUSES),
            _pad(_pick(rng, CODES), 5),
            _maybe(rng, lambda r: Decimal(r.randrange(-10**8, 10**12)) / 10**4),
            _pick(rng, REALS), _pick(rng, DAYS),
            None if due is None else due.astimezone(UTC).replace(tzinfo=None),
            _pick(rng, [True, False]),
        ))
    payments = RandomTable("lite.main.payments", [
        C("id", "INTEGER", "int", nullable=False),
        C("customer_id", "INTEGER", "int", key=True),
        C("amount", "DECIMAL(18,4)", "decimal"),
        C("fee", "REAL", "float"),
        C("country", "TEXT", "text"),
        C("method", "TEXT", "text"),
        C("paid_at", "TIMESTAMP", "ts"),
        C("ok", "BOOLEAN", "bool"),
        C("note", "TEXT", "text"),
    ])
    for i in range(1, 301):
        paid = _maybe(rng, _instant)
        payments.rows.append((
            i, _key(rng, 1, 80), _maybe(rng, lambda r: Decimal(r.randrange(-10**7, 10**9)) / 10**4),
            _pick(rng, DOUBLES), _pick(rng, COUNTRIES), _pick(rng, METHODS),
            None if paid is None else paid.astimezone(UTC).replace(tzinfo=None),
            _pick(rng, [True, False]), _pick(rng, NAMES, 0.3),
        ))
    tags = RandomTable("lite.main.tags", [
        C("customer_id", "INTEGER", "int", key=True),
        C("tag", "TEXT", "text"),
        C("weight", "REAL", "float"),
        C("since", "DATE", "date"),
    ])
    for _ in range(70):
        tags.rows.append((_key(rng, 20, 70), _pick(rng, TAGS, 0.0), _pick(rng, DOUBLES),
                          _pick(rng, DAYS)))
    sessions = RandomTable("duck.main.sessions", [
        C("id", "INTEGER", "int", nullable=False),
        C("customer_id", "HUGEINT", "hugeint", key=True),
        C("bytes", "HUGEINT", "hugeint"),
        C("started", "TIMESTAMPTZ", "tstz"),
        C("country", "VARCHAR", "text"),
        C("duration", "DOUBLE", "float"),
        C("cost", "DECIMAL(38,10)", "decimal"),
        C("flag", "BOOLEAN", "bool"),
        C("device", "VARCHAR", "text"),
        C("big", "BIGINT", "int"),
    ])
    for i in range(1, 221):
        customer = _key(rng, 1, 65) if rng.random() < 0.9 else _pick(rng, HUGEINTS)
        sessions.rows.append((
            i, customer, _pick(rng, HUGEINTS) if rng.random() < 0.4 else _key(rng, 1, 200),
            _maybe(rng, _instant), _pick(rng, COUNTRIES),
            _pick(rng, DOUBLES), _maybe_decimal(rng, BALANCES), _pick(rng, [True, False]),
            _pick(rng, DEVICES), _pick(rng, BIGINTS),
        ))
    devices = RandomTable("duck.main.devices", [
        C("id", "INTEGER", "int", nullable=False),
        C("customer_id", "BIGINT", "int", key=True),
        C("kind", "VARCHAR", "text"),
        C("weight", "FLOAT", "real"),
        C("serial", "UBIGINT", "int"),
        C("added", "DATE", "date"),
    ])
    for i in range(1, 41):
        devices.rows.append((
            i, _key(rng, 30, 90), _pick(rng, DEVICES), _pick(rng, REALS),
            _pick(rng, [0, 1, 2**64 - 1, 2**63, 123]), _pick(rng, DAYS),
        ))
    counters = RandomTable("ducku.main.counters", [
        C("id", "INTEGER", "int", nullable=False),
        C("customer_id", "INTEGER", "int", key=True),
        C("hits", "UHUGEINT", "hugeint"),
        C("label", "VARCHAR", "text"),
    ])
    for i in range(1, 31):
        counters.rows.append((i, _key(rng, 40, 100), _pick(rng, UHUGEINTS), _pick(rng, TAGS)))
    for table in (payments, tags):
        # SQLite keeps no -0.0 (a REAL with no fraction is stored as an integer).
        table.rows = [tuple(0.0 if isinstance(v, float) and v == 0 else v for v in row)
                      for row in table.rows]
    return RandomData([accounts, invoices, payments, tags, sessions, devices, counters])


def _maybe(rng: random.Random, make, null_rate: float = 0.08) -> Any:
    return None if rng.random() < null_rate else make(rng)


def _maybe_decimal(rng: random.Random, pool: list[str]) -> Decimal | None:
    if rng.random() < 0.08:
        return None
    if rng.random() < 0.5:
        return Decimal(pool[rng.randrange(len(pool))])
    return Decimal(rng.randrange(-10**9, 10**9)) / 10**4


# -- loading --------------------------------------------------------------------------------------


def sql_literal(value: Any) -> str:
    """A literal both PostgreSQL and DuckDB read into any column type: NULL, TRUE/FALSE, or a
    quoted string the column's type parses exactly (floats by their shortest exact repr)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        text = str(value)
    return "'" + text.replace("'", "''") + "'"


def _values(table: RandomTable) -> str:
    return ",\n".join("(" + ", ".join(sql_literal(v) for v in row) + ")" for row in table.rows)


def _create_sql(table: RandomTable, types: dict[str, str] | None = None, name: str = "") -> str:
    cols = ", ".join(f'"{c.name}" {types[c.name] if types else c.declared}'
                     for c in table.columns)
    return f"CREATE TABLE {name or table.short} ({cols})"


def create_postgres(pg_cluster: Any, dbname: str, data: RandomData) -> str:
    """Create ``dbname`` (linguistic ICU collation where the server has it) and load ``pg``."""
    try:
        pg_cluster.run_sql(
            f'CREATE DATABASE "{dbname}" TEMPLATE template0 LOCALE_PROVIDER icu '
            "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    except RuntimeError:
        pg_cluster.create_database(dbname)
    statements = []
    for table in data.tables:
        if table.source == "pg":
            statements.append(_create_sql(table) + ";")
            statements.append(f"INSERT INTO {table.short} VALUES\n{_values(table)};")
    statements.append("ANALYZE;")
    pg_cluster.run_sql("\n".join(statements), dbname=dbname)
    return pg_cluster.uri(dbname)


def create_sqlite(path: Path, data: RandomData) -> Path:
    con = sqlite3.connect(path)
    try:
        for table in data.tables:
            if table.source == "lite":
                con.execute(_create_sql(table))
                marks = ", ".join("?" for _ in table.columns)
                con.executemany(f"INSERT INTO {table.short} VALUES ({marks})",
                                [tuple(sqlite_value(v) for v in row) for row in table.rows])
        con.commit()
    finally:
        con.close()
    return path


def create_duckdb(path: Path, data: RandomData, source: str = "duck") -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        for table in data.tables:
            if table.source == source:
                con.execute(_create_sql(table))
                con.execute(f"INSERT INTO {table.short} VALUES {_values(table)}")
    finally:
        con.close()
    return path


def create_reference(data: RandomData,
                     catalog_types: dict[str, dict[str, str]]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with ``pg``, ``lite`` and ``duck`` attached, holding the same rows
    under the same names with the DuckDB types the catalog reports."""
    con = duckdb.connect(":memory:")
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    for source in dict.fromkeys(t.source for t in data.tables):
        con.execute(f"ATTACH ':memory:' AS {source}")
    for table in data.tables:
        source, schema, _ = table.name.split(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {source}.{schema}")
        con.execute(_create_sql(table, catalog_types[table.name], table.name))
        con.execute(f"INSERT INTO {table.name} VALUES {_values(table)}")
    return con


@dataclass
class RandomEnv:
    """The dataset in its sources: a direct workspace, a sync workspace, and the reference.

    ``unsynced`` names the sources the sync workspace reads directly because their sync
    failed, with the error (a UHUGEINT column fails the sync of its whole source today).
    """

    data: RandomData
    direct: Any  # meterql.Workspace, every source in direct mode
    sync: Any  # meterql.Workspace, every source in sync mode (replicas synced)
    ref: duckdb.DuckDBPyConnection
    folder: Path
    unsynced: dict[str, str] = field(default_factory=dict)
    uris: dict[str, str] = field(default_factory=dict)
    hybrid: Any = None  # every source in auto mode, bound 0: tables read as replica + delta

    def workspace(self, mode: str) -> Any:
        if mode == "hybrid":
            if self.hybrid is None:
                self.hybrid = open_hybrid(self.folder / "home-hybrid", self.uris)
            return self.hybrid
        return self.direct if mode == "direct" else self.sync

    def reopen(self, mode: str) -> None:
        """Close and open a workspace again (its engine's DuckDB is new; replicas stay)."""
        import meterql

        self.workspace(mode).close()
        with host_timezone("America/New_York"):
            ws = meterql.connect(self.folder / f"home-{mode}")
        if mode == "direct":
            self.direct = ws
        elif mode == "hybrid":
            self.hybrid = ws
        else:
            self.sync = ws

    def close(self) -> None:
        self.ref.close()
        self.direct.close()
        self.sync.close()
        if self.hybrid is not None:
            self.hybrid.close()


#: Types a table's first column of which may serve as an append cursor.
_CURSOR_TYPES = ("INTEGER", "BIGINT", "SMALLINT", "DECIMAL", "DATE", "TIMESTAMP", "DOUBLE",
                 "VARCHAR")


def open_hybrid(home: Path, uris: dict[str, str]) -> Any:
    """A workspace with every source in auto mode and the bound 0: each table with a column
    fit for a cursor is synced ``append`` on it, and then read as its replica plus the delta
    (the rows at or past the cursor's last value, read again from the source)."""
    import meterql

    with host_timezone("America/New_York"):
        ws = meterql.connect(home)
    for name, uri in uris.items():
        ws.sources.add(name, uri, mode="auto")
    for table in ws.tables():
        for column in table.columns:
            if column.type.upper().startswith(_CURSOR_TYPES):
                ws.sync.set_strategy(table.full_name, "append", column.name)
                break
    for report in ws.sync():
        if report.error is not None:
            ws.sources.set_mode(report.source, "direct")
    ws.settings.set("max_staleness", "0")
    return ws


def open_random_env(pg_cluster: Any, folder: Path, dbname: str = "randomsql") -> RandomEnv:
    """Load the sources, register them in two workspaces (direct, sync) and build the reference.

    The workspaces are opened with the host in New York time, as the billing workspace is:
    answers must not depend on the machine's zone.
    """
    import meterql

    data = build_random_data()
    uris = {
        "pg": create_postgres(pg_cluster, dbname, data),
        "lite": f"sqlite://{create_sqlite(folder / 'payments.sqlite', data)}",
        "duck": f"duckdb://{create_duckdb(folder / 'sessions.duckdb', data)}",
        "ducku": f"duckdb://{create_duckdb(folder / 'counters.duckdb', data, 'ducku')}",
    }
    opened = []
    unsynced = {}
    try:
        for mode in ("direct", "sync"):
            with host_timezone("America/New_York"):
                ws = meterql.connect(folder / f"home-{mode}")
                opened.append(ws)
                for name, uri in uris.items():
                    ws.sources.add(name, uri, mode=mode)
        for report in opened[1].sync():
            if report.error is not None:
                unsynced[report.source] = f"{type(report.error).__name__}: {report.error}"
                opened[1].set_mode(report.source, "direct")
        types = {t.full_name: {c.name: c.type for c in t.columns} for t in opened[0].tables()}
        ref = create_reference(data, types)
    except BaseException:
        for ws in opened:
            ws.close()
        raise
    return RandomEnv(data, opened[0], opened[1], ref, folder, unsynced, uris)
