"""The catalog: table names, "did you mean", refresh/remove, invalid sources, sqlglot's Schema.

One module-wide workspace holds three sources with overlapping names:

    pg    public.events, public.customers, public.daily (view), public."CamelCase",
          billing.invoices
    lite  main.customers, main.plans, main."Usage" (mixed-case columns)
    duck  main.meters, main.plans
"""

from __future__ import annotations

import socket
import sqlite3
from decimal import Decimal

import duckdb
import pytest
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify

import meterql
from meterql.catalog import Catalog, Column, Source, Table
from meterql.errors import (
    AmbiguousNameError,
    CatalogError,
    InvalidSourceError,
    SourceError,
    SourceExistsError,
    SourceUnavailableError,
    UnknownColumnError,
    UnknownSourceError,
    UnknownTableError,
    WorkspaceError,
)

pytestmark = pytest.mark.postgres

PG_SETUP = """
CREATE TABLE events (
    id integer PRIMARY KEY, customer_id bigint NOT NULL, amount numeric(18,6),
    at timestamptz, payload jsonb, note text
);
INSERT INTO events
SELECT g, g % 3, g * 1.5, timestamptz '2024-01-01 00:00+00' + g * interval '1 hour', '{}', 'n'
FROM generate_series(1, 10) AS g;
CREATE TABLE customers (id integer, name text);
INSERT INTO customers VALUES (0, 'zero'), (1, 'one'), (2, 'two');
CREATE VIEW daily AS SELECT customer_id, sum(amount) AS total FROM events GROUP BY 1;
CREATE TABLE "CamelCase" ("Id" integer, "customerName" text);
INSERT INTO "CamelCase" VALUES (1, 'x');
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id integer, total numeric(12,2));
INSERT INTO billing.invoices VALUES (1, 9.99);
"""

ALL_TABLES = {
    "pg.public.events",
    "pg.public.customers",
    "pg.public.daily",
    "pg.public.CamelCase",
    "pg.billing.invoices",
    "lite.main.customers",
    "lite.main.plans",
    "lite.main.Usage",
    "duck.main.meters",
    "duck.main.plans",
}


def make_sqlite(path) -> str:
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE customers (id INTEGER, name TEXT);
        INSERT INTO customers VALUES (1, 'ann'), (2, 'bob');
        CREATE TABLE plans (id INTEGER, price DECIMAL(10, 2));
        INSERT INTO plans VALUES (1, '10.50');
        CREATE TABLE Usage (CustomerId INTEGER, Qty INTEGER);
        INSERT INTO Usage VALUES (1, 5), (2, 7);
        """
    )
    con.commit()
    con.close()
    return f"sqlite://{path}"


def make_duckdb(path) -> str:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meters (id INTEGER, unit VARCHAR)")
    con.execute("INSERT INTO meters VALUES (1, 'gb'), (3, 'cpu')")
    con.execute("CREATE TABLE plans (id INTEGER, name VARCHAR)")
    con.close()
    return f"duckdb://{path}"


@pytest.fixture(scope="module")
def cat_env(pg_cluster, pg_database, tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog")
    db = pg_database("catalog", PG_SETUP)
    uris = {
        "pg": pg_cluster.uri(db),
        "lite": make_sqlite(root / "lite.db"),
        "duck": make_duckdb(root / "duck.duckdb"),
    }
    ws = meterql.connect(root / "home")
    for name, uri in uris.items():
        ws.sources.add(name, uri)
    yield ws, uris
    ws.close()


@pytest.fixture
def cat_ws(cat_env):
    return cat_env[0]


def test_every_table_is_listed_by_its_full_name(cat_ws):
    assert {t.full_name for t in cat_ws.tables()} == ALL_TABLES
    assert {t.full_name for t in cat_ws.tables("lite")} == {
        "lite.main.customers",
        "lite.main.plans",
        "lite.main.Usage",
    }
    assert cat_ws.tables.get("pg.public.daily").kind == "view"
    assert cat_ws.tables.get("pg.public.events").kind == "table"


@pytest.mark.parametrize(
    ("name", "full"),
    [
        ("pg.public.events", "pg.public.events"),
        ("public.events", "pg.public.events"),  # schema.table
        ("pg.events", "pg.public.events"),  # source.table
        ("events", "pg.public.events"),  # bare
        ("PG.Public.EVENTS", "pg.public.events"),  # case-insensitive, as DuckDB
        ("billing.invoices", "pg.billing.invoices"),
        ("pg.invoices", "pg.billing.invoices"),
        ("invoices", "pg.billing.invoices"),
        ("lite.customers", "lite.main.customers"),
        ("duck.plans", "duck.main.plans"),
        ("main.meters", "duck.main.meters"),
        ("meters", "duck.main.meters"),
        ("usage", "lite.main.Usage"),
    ],
)
def test_short_names_resolve_when_unique(cat_ws, name, full):
    assert cat_ws.tables.get(name).full_name == full


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT count(*) AS n FROM events", [{"n": 10}]),
        ("SELECT count(*) AS n FROM pg.events", [{"n": 10}]),
        ("SELECT count(*) AS n FROM public.events WHERE customer_id = 1", [{"n": 4}]),
        ("SELECT total FROM invoices", [{"total": Decimal("9.99")}]),
        ("SELECT total FROM billing.invoices", [{"total": Decimal("9.99")}]),
        (
            "SELECT c.name, m.unit FROM lite.customers AS c JOIN meters AS m ON m.id = c.id",
            [{"name": "ann", "unit": "gb"}],
        ),
    ],
)
def test_short_names_work_in_queries(cat_ws, sql, expected):
    assert cat_ws.query(sql).to_pylist() == expected


@pytest.mark.parametrize(
    ("name", "candidates"),
    [
        ("customers", ["lite.main.customers", "pg.public.customers"]),
        ("plans", ["duck.main.plans", "lite.main.plans"]),
        ("main.plans", ["duck.main.plans", "lite.main.plans"]),
    ],
)
def test_ambiguous_name_lists_the_candidates(cat_ws, name, candidates):
    with pytest.raises(AmbiguousNameError) as excinfo:
        cat_ws.tables.get(name)
    err = excinfo.value
    assert isinstance(err, CatalogError)
    assert err.details["candidates"] == candidates
    for full in candidates:
        assert full in str(err)
    assert "source.schema.table" in err.hint
    # the same in a query, before any source is asked
    with pytest.raises(AmbiguousNameError) as excinfo:
        cat_ws.query(f"SELECT * FROM {name}")
    assert excinfo.value.details["candidates"] == candidates


@pytest.mark.parametrize(
    "name", ["evnts", "pg.public.evnts", "public.event", "pg.evnts", "pgg.public.events"]
)
def test_misspelt_table_suggests_the_full_name(cat_ws, name):
    with pytest.raises(UnknownTableError) as excinfo:
        cat_ws.tables.get(name)
    assert "did you mean 'pg.public.events'" in str(excinfo.value)
    assert excinfo.value.table == name
    with pytest.raises(UnknownTableError) as excinfo:
        cat_ws.query(f"SELECT id FROM {name}")
    assert "did you mean 'pg.public.events'" in str(excinfo.value)


def test_unrelated_table_name_gets_no_wild_guess(cat_ws):
    with pytest.raises(UnknownTableError) as excinfo:
        cat_ws.tables.get("zzqqxx")
    assert "did you mean" not in str(excinfo.value)
    assert "meterql tables" in excinfo.value.hint


def test_misspelt_source_name(cat_ws):
    with pytest.raises(UnknownSourceError) as excinfo:
        cat_ws.sources.get("pgg")
    assert "did you mean 'pg'" in str(excinfo.value)
    assert excinfo.value.source == "pgg"
    with pytest.raises(UnknownSourceError, match="did you mean 'lite'"):
        cat_ws.tables("lit")
    with pytest.raises(UnknownSourceError, match="did you mean 'pg'"):
        cat_ws.sources.refresh("pgx")
    with pytest.raises(UnknownSourceError, match="did you mean 'duck'"):
        cat_ws.sources.remove("duk")
    with pytest.raises(UnknownSourceError, match="did you mean 'duck'"):
        cat_ws.sources.test("dukc")
    assert {s.name for s in cat_ws.sources()} == {"pg", "lite", "duck"}


@pytest.mark.parametrize(
    ("sql", "column", "suggestion"),
    [
        ("SELECT amont FROM pg.public.events", "amont", "amount"),
        ("SELECT id FROM pg.public.events WHERE custmer_id = 1", "custmer_id", "customer_id"),
        (
            "SELECT c.id FROM lite.customers AS c JOIN meters AS m ON m.id = c.id AND nme = 'a'",
            "nme",
            "name",
        ),
    ],
)
def test_misspelt_column_gets_did_you_mean(cat_ws, sql, column, suggestion):
    with pytest.raises(UnknownColumnError) as excinfo:
        cat_ws.query(sql)
    err = excinfo.value
    assert f"'{column}'" in err.message
    assert f"did you mean '{suggestion}'" in str(err)
    assert err.line == 1 and err.column is not None
    assert column in err.caret().splitlines()[0]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT e.ammount FROM events AS e",
        "SELECT c.nme FROM lite.customers AS c JOIN meters AS m ON m.id = c.id",
    ],
)
def test_misspelt_qualified_column_gets_did_you_mean(cat_ws, sql):
    with pytest.raises(UnknownColumnError, match="did you mean"):
        cat_ws.query(sql)


def test_mixed_case_columns_of_file_sources_resolve(cat_ws):
    # Regression: the schema kept 'CustomerId' as written while the optimizer normalised the
    # query's identifiers to lowercase, so these were "unknown" and SELECT * lost columns.
    expected = [{"CustomerId": 1, "Qty": 5}, {"CustomerId": 2, "Qty": 7}]
    assert cat_ws.query("SELECT * FROM lite.main.Usage ORDER BY 1").to_pylist() == expected
    rows = cat_ws.query("SELECT CustomerId, qty FROM usage ORDER BY CustomerId").rows()
    assert rows == [(1, 5), (2, 7)]
    rows = cat_ws.query('SELECT "CustomerId" AS c FROM lite.Usage WHERE qty > 5').rows()
    assert rows == [(2,)]


def test_mixed_case_postgres_table(cat_ws):
    rows = cat_ws.query('SELECT "Id", "customerName" FROM pg.public."CamelCase"').to_pylist()
    assert rows == [{"Id": 1, "customerName": "x"}]


def test_catalog_is_a_sqlglot_schema_with_the_right_types(cat_ws):
    schema = cat_ws.catalog.schema
    assert isinstance(schema, sqlglot.schema.Schema)
    events = exp.to_table("pg.public.events")
    assert schema.column_names(events) == ["id", "customer_id", "amount", "at", "payload", "note"]
    types = {
        ("pg.public.events", "id"): "INT",
        ("pg.public.events", "customer_id"): "BIGINT",
        ("pg.public.events", "amount"): "DECIMAL(18, 6)",
        ("pg.public.events", "at"): "TIMESTAMPTZ",
        ("pg.public.events", "payload"): "JSON",
        ("pg.public.events", "note"): "TEXT",
        ("pg.billing.invoices", "total"): "DECIMAL(12, 2)",
        ("lite.main.plans", "price"): "DECIMAL(10, 2)",
        ("lite.main.Usage", "CustomerId"): "BIGINT",
        ("duck.main.meters", "unit"): "TEXT",
    }
    for (table, column), expected in types.items():
        got = schema.get_column_type(exp.to_table(table), column)
        assert got.sql("duckdb") == exp.DataType.build(expected).sql("duckdb"), (table, column)
    assert schema.has_column(events, "amount")
    assert not schema.has_column(events, "amont")


def test_sqlglot_optimizer_reads_types_from_the_catalog(cat_ws):
    tree = sqlglot.parse_one("SELECT amount * 2 AS x, note FROM pg.public.events", read="duckdb")
    typed = annotate_types(
        qualify(tree, schema=cat_ws.catalog.schema, dialect="duckdb"),
        schema=cat_ws.catalog.schema,
        dialect="duckdb",
    )
    x, note = typed.selects
    assert x.type.is_type(exp.DataType.Type.DECIMAL)
    assert note.type.is_type(exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT)


# -- refresh and remove ----------------------------------------------------------------------


def test_refresh_source_picks_up_new_tables_and_columns(pg_cluster, pg_database, tmp_path):
    db = pg_database("refresh", "CREATE TABLE usage (id int); INSERT INTO usage VALUES (1);")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("r", pg_cluster.uri(db))
        version = ws.catalog.version
        pg_cluster.run_sql(
            "ALTER TABLE usage ADD COLUMN qty int DEFAULT 7;"
            "CREATE TABLE extra (a int); INSERT INTO extra VALUES (42);",
            dbname=db,
        )
        with pytest.raises(UnknownColumnError, match="qty"):
            ws.query("SELECT qty FROM r.public.usage")
        with pytest.raises(UnknownTableError):
            ws.query("SELECT a FROM r.public.extra")

        tables = ws.sources.refresh("r")

        assert {t.full_name for t in tables} == {"r.public.usage", "r.public.extra"}
        assert ws.catalog.version > version
        assert ws.query("SELECT id, qty FROM r.public.usage").rows() == [(1, 7)]
        assert ws.query("SELECT a FROM extra").rows() == [(42,)]
        assert ws.catalog.schema.column_names(exp.to_table("r.public.usage")) == ["id", "qty"]

        pg_cluster.run_sql("DROP TABLE extra", dbname=db)
        ws.sources.refresh("r")
        with pytest.raises(UnknownTableError):
            ws.tables.get("extra")
    with meterql.connect(tmp_path / "home") as ws:  # the refreshed tables were stored
        assert {t.full_name for t in ws.tables()} == {"r.public.usage"}
        assert [c.name for c in ws.tables.get("usage").columns] == ["id", "qty"]


def _meterql_backends(pg_cluster, db: str) -> int:
    out = pg_cluster.run_sql(
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' "
        "AND application_name = 'meterql'",
        tuples_only=True,
    )
    return int(out.strip())


def test_remove_source_forgets_it_and_closes_its_connections(pg_cluster, pg_database, tmp_path):
    import time

    db = pg_database("remove", "CREATE TABLE usage (id int); INSERT INTO usage VALUES (1), (2);")
    lite = make_sqlite(tmp_path / "lite.db")
    with meterql.connect(tmp_path / "home") as ws:
        ws.sources.add("gone", pg_cluster.uri(db))
        ws.sources.add("lite", lite)
        assert ws.query("SELECT count(*) AS n FROM gone.public.usage").rows() == [(2,)]
        assert _meterql_backends(pg_cluster, db) >= 1

        removed = ws.sources.remove("gone")

        assert removed.name == "gone"
        assert [s.name for s in ws.sources()] == ["lite"]
        assert {t.source for t in ws.tables()} == {"lite"}
        with pytest.raises(UnknownSourceError):
            ws.sources.get("gone")
        with pytest.raises(UnknownTableError):
            ws.query("SELECT id FROM gone.public.usage")
        assert ws.query("SELECT count(*) AS n FROM lite.main.customers").rows() == [(2,)]
        deadline = time.monotonic() + 5
        while _meterql_backends(pg_cluster, db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _meterql_backends(pg_cluster, db) == 0
    # the source itself is never touched
    count = pg_cluster.run_sql("SELECT count(*) FROM usage", dbname=db, tuples_only=True)
    assert count.strip() == "2"
    with meterql.connect(tmp_path / "home") as ws:
        assert [s.name for s in ws.sources()] == ["lite"]
        ws.sources.add("gone", pg_cluster.uri(db))  # the name is free again
        assert ws.query("SELECT count(*) AS n FROM gone.usage").rows() == [(2,)]


# -- invalid sources are refused and nothing is stored ---------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def small_ws(tmp_path):
    lite = make_sqlite(tmp_path / "lite.db")
    ws = meterql.connect(tmp_path / "home")
    ws.sources.add("lite", lite)
    yield ws, lite, tmp_path
    ws.close()


def _listing(ws):
    return [s.describe() for s in ws.sources()], sorted(t.full_name for t in ws.tables())


def _stored(home):
    with meterql.connect(home) as ws:
        return _listing(ws)


INVALID = [
    ("Lite2", "{lite}", {}, "not a valid source name"),
    ("2lite", "{lite}", {}, "not a valid source name"),
    ("bad-name", "{lite}", {}, "not a valid source name"),
    ("bad.name", "{lite}", {}, "not a valid source name"),
    ("", "{lite}", {}, "not a valid source name"),
    ("x" * 64, "{lite}", {}, "not a valid source name"),
    ("local", "{lite}", {}, "reserved"),
    ("x", "mysql://u:pw@h/db", {}, "unknown source kind 'mysql'"),
    ("x", "not a uri", {}, "not a source URI"),
    ("x", "", {}, "not a source URI"),
    ("fx", "prices.csv", {}, "is a CSV file, which is loaded"),
    ("fx", "file:///data/PRICES.CSV", {}, "is a CSV file, which is loaded"),
    ("x", "postgresql://u:pw@h:notaport/db", {}, "bad port"),
    ("x", "sqlite:///nonexistent/dir/file.db", {}, "does not exist"),
    ("x", "duckdb:///nonexistent/dir/file.duckdb", {}, "does not exist"),
    ("x", "{lite}", {"mode": "turbo"}, "unknown mode 'turbo'"),
    ("x", "{lite}", {"options": {"statement_timeout": 5}}, "unknown source option"),
    ("x", "{lite}", {"options": {"numeric_scale": "abc"}}, "numeric_scale='abc'"),
    ("x", "{lite}", {"options": {"numeric_scale": 39}}, "numeric_scale=39"),
    ("x", "{lite}", {"options": {"statement_timeout_ms": 0}}, "statement_timeout_ms=0"),
    (
        "x",
        "postgresql://u@127.0.0.1:1/db",
        {"options": {"statement_timeout_ms": "soon"}},
        "statement_timeout_ms='soon'",
    ),
]


def test_invalid_sources_are_refused_and_nothing_stored(small_ws):
    ws, lite, tmp_path = small_ws
    before = _listing(ws)
    before_version = ws.catalog.version  # (after the listing opened the local store)
    for name, uri, kwargs, message in INVALID:
        case = (name, uri, kwargs)
        with pytest.raises(InvalidSourceError) as excinfo:
            ws.sources.add(name, uri.format(lite=lite), **kwargs)
        assert message in str(excinfo.value), case
        assert excinfo.value.hint, case
        assert "pw@" not in str(excinfo.value), case  # a password in a bad URI is not echoed
        assert ws.catalog.version == before_version, case
        assert _listing(ws) == before, case
    ws.close()
    assert _stored(tmp_path / "home") == before


def test_misspelt_option_gets_did_you_mean(small_ws):
    ws, lite, _ = small_ws
    with pytest.raises(InvalidSourceError, match="did you mean 'statement_timeout_ms'"):
        ws.sources.add("x", lite, options={"statment_timeout_ms": 1000})
    source = ws.sources.add("x", lite, options={"statement_timeout_ms": 1000, "numeric_scale": 4})
    assert source.options == {"statement_timeout_ms": 1000, "numeric_scale": 4}


def test_duplicate_source_keeps_the_first(small_ws):
    ws, lite, tmp_path = small_ws
    other = make_duckdb(tmp_path / "other.duckdb")
    with pytest.raises(SourceExistsError) as excinfo:
        ws.sources.add("lite", other)
    assert excinfo.value.source == "lite"
    assert ws.sources.get("lite").uri == lite
    assert ws.tables.get("lite.customers").full_name == "lite.main.customers"


def test_unreachable_or_missing_postgres_is_refused(small_ws, pg_cluster):
    ws, _, tmp_path = small_ws
    before = [s.describe() for s in ws.sources()]
    with pytest.raises(SourceUnavailableError) as excinfo:
        ws.sources.add("down", f"postgresql://u:Pw-Down-77@127.0.0.1:{_closed_port()}/db")
    assert excinfo.value.retryable
    assert excinfo.value.source == "down"
    assert "Pw-Down-77" not in str(excinfo.value)
    with pytest.raises(SourceError):
        ws.sources.add("nodb", pg_cluster.uri("no_such_database"))
    assert [s.describe() for s in ws.sources()] == before
    assert not any(t.source in ("down", "nodb") for t in ws.tables())
    ws.close()
    assert _stored(tmp_path / "home")[0] == before


# -- the store ---------------------------------------------------------------------------------


def test_adding_a_source_is_all_or_nothing():
    con = duckdb.connect(":memory:")
    catalog = Catalog(con)
    source = Source("x", "sqlite", "sqlite:///tmp/x.db")
    broken = [Table("x", "main", "t", (Column("a", "INTEGER", "int", None),))]  # NOT NULL breaks
    with pytest.raises(duckdb.Error):
        catalog.add_source(source, broken)
    assert catalog.sources() == []
    assert catalog.tables() == []
    assert con.execute("SELECT count(*) FROM sources").fetchone() == (0,)
    # the store is usable afterwards (no transaction left open)
    good = [Table("x", "main", "t", (Column("a", "INTEGER", "int", True),))]
    catalog.add_source(source, good)
    assert [t.full_name for t in Catalog(con).tables()] == ["x.main.t"]


def test_catalog_from_a_newer_meterql_is_refused_and_leaves_the_folder_free(tmp_path):
    home = tmp_path / "home"
    meterql.connect(home).close()
    con = duckdb.connect(str(home / "catalog.duckdb"))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(WorkspaceError, match="newer meterql") as first:
        meterql.connect(home)
    # Regression: the failed open kept the lock, so trying again said "in use by process <me>".
    with pytest.raises(WorkspaceError, match="newer meterql"):
        meterql.connect(home)
    assert "in use" not in str(first.value)


def test_the_catalog_imports_nothing_above_it():
    """The catalog is the bottom layer (docs/architecture.md): aggregates and API keys are
    stored in its file by their own modules, which import the catalog, never the reverse."""
    import ast
    from pathlib import Path

    above = ("meterql.aggregates", "meterql.server", "meterql.access", "meterql.workspace",
             "meterql.sync", "meterql.engine", "meterql.local", "meterql.cli")
    found = []
    for path in sorted((Path(meterql.__file__).parent / "catalog").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}: {n}" for n in names if n.startswith(above)]
    assert found == []
