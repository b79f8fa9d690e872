"""The spark engine (setting ``engine = spark``): the same catalog and SQL, the residual run in
Spark SQL on a Spark Connect server in local mode, started once per test run.

The differential queries run on a workspace with ``pg`` in sync mode (its replica read by Spark
from a Parquet snapshot), ``lite`` and ``dk`` direct (their fragments handed to Spark as Arrow);
every answer must equal DuckDB's over the same data, in rows and in Arrow types, or be a clear
refusal. A part of the differential suite is run, chosen to keep the suite within its time
budget (SPARK_QUERIES); all of it runs with ``pytest tests/test_spark_engine.py`` after
widening that selection.
"""

from __future__ import annotations

import json
import stat
from decimal import Decimal

import duckdb
import pytest

import meterql
from meterql.errors import MeterqlError, QueryError, SourceUnavailableError
from tests.test_differential import QUERIES, assert_same_rows, reference
from tests.test_sync_parity import PG_QUERIES, assert_same_as_direct

pytestmark = pytest.mark.postgres


def _combines(sql: str) -> bool:
    return sum(f"{s}." in sql for s in ("pg", "lite", "dk")) > 1


#: every other edge query, each once, over a replica and a fragment; every query combining
#: sources; every 12th of the others
SPARK_QUERIES = [q for q in QUERIES if q.id.startswith("edge_pg+lite_")][::2] + [
    q for i, q in enumerate(QUERIES)
    if not q.id.startswith("edge_") and (_combines(q.sql) or i % 12 == 0)]

#: What the spark engine refuses, each with its reason (docs/scale-out.md); a refusal is a
#: clear error, never a different answer.
REFUSED = {
    "ASOF JOIN", "AT TIME ZONE of a wall-clock TIMESTAMP", "timezone() of a wall-clock TIMESTAMP",
    "a comparison of a TIMESTAMP with a TIMESTAMPTZ",
    "a comparison of a TIMESTAMP with text holding a time zone offset",
    "substring with a start that is not a positive number",
}
#: Spark's own refusals of valid DuckDB SQL (its error reaches the caller as a QueryError).
SPARK_REFUSES = ("UNRESOLVED_COLUMN", "ASSIGNMENT_ARITY_MISMATCH", "CAST_INVALID_INPUT",
                 "INCOMPATIBLE_COLUMN_TYPE", "would lose data")
OUTCOMES: dict[str, str] = {}


def assert_a_listed_refusal(exc: QueryError) -> None:
    """A refusal of the spark engine's (REFUSED) or of Spark's own (SPARK_REFUSES)."""
    reason = str(exc)
    assert any(f"does not run {r}:" in reason for r in REFUSED) \
        or any(code in reason for code in SPARK_REFUSES), reason


@pytest.fixture(scope="module")
def spark_ws(billing, spark_server, tmp_path_factory):
    ws = meterql.connect(tmp_path_factory.mktemp("spark") / "home")
    ws.sources.add("pg", billing.pg_uri, mode="sync")
    ws.sources.add("lite", f"sqlite://{billing.sqlite_path}")
    ws.sources.add("dk", f"duckdb://{billing.duckdb_path}")
    assert [r.error for r in ws.sync()] == [None]
    ws.settings.set("engine", "spark")
    ws.settings.set("spark_remote", spark_server.remote)
    yield ws
    ws.close()


def test_the_part_run_is_representative():
    assert len(SPARK_QUERIES) >= 60
    assert sum(_combines(q.sql) for q in SPARK_QUERIES) >= 10


@pytest.mark.parametrize("q", [pytest.param(q, id=q.id) for q in SPARK_QUERIES])
def test_same_answer_as_duckdb_or_a_clear_refusal(billing, spark_ws, q):
    try:
        want = reference(billing.ref, q.sql, q.params)
    except duckdb.Error as exc:
        # DuckDB overflows or divides by zero: Spark (ANSI) raises too, or its exact
        # decimals hold a sum that DuckDB's 38 digits did not (then conform() checked that
        # the answer fits DuckDB's type exactly)
        assert "zero" in str(exc).lower() or "overflow" in str(exc).lower(), exc
        try:
            spark_ws.query(q.sql, q.params, max_rows=None)
            OUTCOMES[q.id] = "answered where DuckDB overflowed"
        except MeterqlError:
            OUTCOMES[q.id] = "refused as DuckDB"
        return
    try:
        got = spark_ws.query(q.sql, q.params, max_rows=None)
    except QueryError as exc:
        assert_a_listed_refusal(exc)
        OUTCOMES[q.id] = "refused"
        return
    assert_same_rows(got.table, want, q.ordered)
    assert got.table.schema.types == want.schema.types
    OUTCOMES[q.id] = "same"


def test_most_answers_are_the_same(spark_ws):
    """Runs after the queries: refusals stay few (they are listed in docs/scale-out.md)."""
    ran = [OUTCOMES[q.id] for q in SPARK_QUERIES if q.id in OUTCOMES]
    if len(ran) < len(SPARK_QUERIES):
        pytest.skip("run with the differential queries above")
    assert ran.count("same") >= 0.8 * len(ran), ran


def test_a_replica_is_read_from_one_parquet_snapshot_per_sync(billing, spark_ws, pg_cluster):
    sql = "SELECT count(*) AS n, sum(quantity) AS q FROM pg.public.events"
    first = spark_ws.query(sql)
    snapshots = [s for s in first.fragments if s.fragment == "snapshot of pg.public.events"]
    assert len(snapshots) == 1 and snapshots[0].rows == first.table.column("n")[0].as_py()
    folder = spark_ws.home / "lake" / "pg" / "public" / "events"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["rows"] == snapshots[0].rows
    files = [folder / f for part in manifest["parts"].values() for f in part["files"]]
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    again = spark_ws.query(sql)  # the same sync: the same snapshot, not written again
    assert json.loads((folder / "manifest.json").read_text())["snapshot"] == manifest["snapshot"]
    assert again.table.equals(first.table)


def test_an_unreachable_server_is_a_clear_retryable_error(billing, tmp_path):
    ws = meterql.connect(tmp_path / "home")
    try:
        ws.sources.add("dk", f"duckdb://{billing.duckdb_path}", mode="sync")
        ws.sync()
        ws.settings.set("engine", "spark")
        with pytest.raises(QueryError, match="spark_remote is not set"):
            ws.query("SELECT count(*) FROM dk.main.prices")
        ws.settings.set("spark_remote", "sc://127.0.0.1:9")
        with pytest.raises(SourceUnavailableError, match="sc://127.0.0.1:9 cannot be reached") \
                as caught:
            ws.query("SELECT count(*) FROM dk.main.prices")
        assert caught.value.retryable
    finally:
        ws.close()


def test_the_spark_settings_are_checked_and_never_repeat_a_secret(tmp_path):
    from meterql.errors import InvalidSettingError

    with meterql.connect(tmp_path / "home") as ws:
        with pytest.raises(InvalidSettingError, match="did you mean 'spark'"):
            ws.settings.set("engine", "spork")
        for secret in ("sc://ann:hunter2@spark:15002", "sc://spark:15002/;token=hunter2"):
            with pytest.raises(InvalidSettingError, match="no user, token or parameter") as bad:
                ws.settings.set("spark_remote", secret)
            assert "hunter2" not in str(bad.value) and "hunter2" not in str(bad.value.hint)
        with pytest.raises(InvalidSettingError, match="absolute folder path"):
            ws.settings.set("spark_storage", "relative/lake")
        assert ws.settings.set("spark_remote", "sc://Spark.internal:15002") \
            == "sc://spark.internal:15002"
        assert ws.settings()["engine"] == "duckdb"  # unchanged by the refused values


def test_a_time_limit_stops_the_spark_operation_and_the_session_goes_on(spark_ws):
    import time

    from meterql.errors import QueryTimeoutError

    endless = ("SELECT count(*) AS n FROM pg.public.events a JOIN pg.public.events b "
               "ON a.id <> b.id JOIN pg.public.events c ON b.id <> c.id")
    start = time.monotonic()
    with pytest.raises(QueryTimeoutError):
        spark_ws.query(endless, timeout=2)
    assert time.monotonic() - start < 20  # interrupted, not run to its end
    after = spark_ws.query("SELECT count(*) AS n FROM pg.public.events")
    assert after.table.column("n")[0].as_py() > 0


def test_a_local_table_changed_in_place_is_read_anew(spark_ws):
    """An upload replacing the rows (the same count, other values) gets a new snapshot: the
    spark engine never answers from the rows before the change."""
    sql = "SELECT sum(price) AS total, count(*) AS n FROM local.uploads.rates"
    spark_ws.uploads.load(b"sku,price\na,1.50\nb,2.25\n", "rates")
    assert Decimal(str(spark_ws.query(sql).table.column("total")[0].as_py())) == Decimal("3.75")
    spark_ws.uploads.load(b"sku,price\na,1.50\nb,9.25\n", "rates", mode="replace")
    again = spark_ws.query(sql).table
    assert Decimal(str(again.column("total")[0].as_py())) == Decimal("10.75")
    assert again.column("n")[0].as_py() == 2


def test_a_server_lost_mid_session_is_a_retryable_error_in_seconds(billing, tmp_path):
    import time

    from devtools.sparkconnect import SparkConnectServer

    server = SparkConnectServer(cores=1)
    server.start()
    ws = meterql.connect(tmp_path / "home")
    try:
        ws.sources.add("dk", f"duckdb://{billing.duckdb_path}", mode="sync")
        ws.sync()
        ws.settings.set("engine", "spark")
        ws.settings.set("spark_remote", server.remote)
        sql = "SELECT count(*) AS n FROM dk.main.prices"
        assert ws.query(sql).table.column("n")[0].as_py() > 0
        server.stop()
        start = time.monotonic()
        with pytest.raises(SourceUnavailableError, match="cannot be reached") as caught:
            ws.query(sql)
        assert caught.value.retryable and time.monotonic() - start < 30
        start = time.monotonic()
        ws.close()  # nothing to release on a server that is gone: no retries
        assert time.monotonic() - start < 2.5
    finally:
        ws.close()
        server.stop()


#: Zones with daylight saving of every kind (half-hour shifts, southern summers, none, a
#: negative one in Dublin's rules) and one whose rules Java 17 and DuckDB 2.0 read differently.
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
         "Europe/Dublin", "America/St_Johns", "Africa/Casablanca"]


@pytest.fixture(scope="module")
def instants(spark_server, tmp_path_factory):
    """A workspace on spark reading (from a replica's snapshot) a DuckDB file of instants every
    30 minutes around the 2024 and 2026 daylight-saving changes, and a DuckDB connection to
    the same file."""
    folder = tmp_path_factory.mktemp("zones")
    path = folder / "instants.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TABLE t AS SELECT row_number() OVER () AS id, ts, "
                    "(epoch(ts)::BIGINT % 7)::DECIMAL(12, 2) AS qty FROM ("
                    "SELECT unnest(range(TIMESTAMPTZ '2024-03-01 00:00:00+00', "
                    "TIMESTAMPTZ '2024-04-10 00:00:00+00', INTERVAL 30 MINUTE)) AS ts UNION ALL "
                    "SELECT unnest(range(TIMESTAMPTZ '2026-09-20 00:00:00+00', "
                    "TIMESTAMPTZ '2026-11-10 00:00:00+00', INTERVAL 30 MINUTE)) UNION ALL "
                    "SELECT NULL)")
    ws = meterql.connect(folder / "home")
    ws.sources.add("tz", f"duckdb://{path}", mode="sync")  # read by Spark from Parquet
    assert [r.error for r in ws.sync()] == [None]
    ws.settings.set("engine", "spark")
    ws.settings.set("spark_remote", spark_server.remote)
    ref = duckdb.connect()
    ref.execute("SET TimeZone = 'UTC'")
    ref.execute(f"ATTACH '{path}' AS tz (READ_ONLY)")
    yield ws, ref
    ws.close()
    ref.close()


@pytest.mark.parametrize("zone", ZONES)
def test_an_instant_at_a_time_zone_is_duckdbs_wall_clock_or_refused(instants, zone):
    ws, ref = instants
    sql = (f"SELECT date_trunc('day', ts AT TIME ZONE '{zone}') AS day, count(*) AS n, "
           f"sum(qty) AS qty, min(timezone('{zone}', ts)) AS first, "
           f"max(extract(hour FROM ts AT TIME ZONE '{zone}')) AS last_hour "
           "FROM tz.main.t GROUP BY 1 ORDER BY 1 NULLS FIRST")
    want = ref.sql(sql).to_arrow_table()
    try:
        got = ws.query(sql, max_rows=None)
    except QueryError as exc:
        # Java's rules for this zone are not DuckDB's: refused, never a different answer
        assert f"does not run AT TIME ZONE '{zone}': Spark's time zone rules" in str(exc)
        assert zone == "Africa/Casablanca", str(exc)
        return
    assert zone != "Africa/Casablanca", "its rules differ in Java 17 (the check let it pass)"
    assert got.table.schema.types == want.schema.types
    assert got.table.to_pylist() == want.to_pylist()


def test_a_wall_clock_timestamp_at_a_time_zone_is_refused(instants):
    """In a daylight-saving overlap DuckDB takes the later instant and Java the earlier."""
    ws, _ = instants
    for sql in ("SELECT CAST(ts AS TIMESTAMP) AT TIME ZONE 'Europe/Berlin' AS i FROM tz.main.t",
                "SELECT timezone('Europe/Berlin', CAST(ts AS TIMESTAMP)) AS i FROM tz.main.t"):
        with pytest.raises(QueryError, match="of a wall-clock TIMESTAMP: a time in a daylight"):
            ws.query(sql)
    with pytest.raises(QueryError, match="zone that is not a literal IANA name"):
        ws.query("SELECT ts AT TIME ZONE 'CET' AS w FROM tz.main.t")


def test_an_instant_outside_the_years_compared_fails_the_query(instants):
    """The zones' rules are compared from 1970 to 2099; before 1970 the IANA database makes no
    promise and builds differ (Europe/Dublin in 1925): such an instant is an error, not a
    guess."""
    ws, _ = instants
    sql = ("SELECT min((ts - INTERVAL 60 YEAR) AT TIME ZONE 'Europe/Berlin') AS w "
           "FROM tz.main.t")
    with pytest.raises(QueryError, match="takes instants from 1970 to 2099"):
        ws.query(sql)


def test_a_snapshot_view_the_session_lost_is_registered_again(spark_ws):
    """Snapshot views live as long as the Spark session; one the server no longer has (a
    restarted server) is registered again and the query answers."""
    sql = "SELECT count(*) AS n FROM pg.public.plans"
    first = spark_ws.query(sql).table
    executor = spark_ws._engine._spark
    views = [v for known in executor._views.values() for v in known]
    assert views  # the snapshot views are kept between queries
    executor.spark.drop_views(views)  # as a restarted server would have lost them
    assert spark_ws.query(sql).table.equals(first)



def _snapshot_note(result, table: str) -> str:
    [done] = [s for s in result.fragments if s.fragment == f"snapshot of {table}"]
    return done.note


def _same_on_both_engines(ws, sql: str):
    """The answer on spark, checked against the same workspace's answer on duckdb."""
    ws.settings.set("engine", "duckdb")
    want = ws.query(sql, max_rows=None).table
    ws.settings.set("engine", "spark")
    got = ws.query(sql, max_rows=None)
    assert_same_rows(got.table, want, True)
    assert got.table.schema.types == want.schema.types
    return got


def test_an_append_sync_rewrites_only_the_days_it_brought(pg_cluster, spark_server, tmp_path,
                                                          monkeypatch):
    """A replica clustered by (customer, ts) is partitioned by ts's UTC day: an append sync
    writes again only the days holding new rows, as part of the sync, and the answers stay
    DuckDB's."""
    from meterql.engine.spark import lake

    monkeypatch.setattr(lake, "PARTITION_ROWS", 50)  # days of 100 rows: partitioned by day
    pg_cluster.create_database("spark_append")
    pg_cluster.run_sql(
        "CREATE TABLE usage (id bigint PRIMARY KEY, customer text, ts timestamptz, "
        "qty numeric(12, 2)); INSERT INTO usage SELECT i, 'c' || i % 7, "
        "TIMESTAMPTZ '2026-03-01 00:30:00+00' + i * INTERVAL '14 minutes', i % 13 + 0.25 "
        "FROM generate_series(1, 1000) AS i", "spark_append")
    ws = meterql.connect(tmp_path / "home")
    try:
        ws.sources.add("sa", pg_cluster.uri("spark_append"), mode="sync")
        ws.sync.set_strategy("sa.public.usage", "append", "id", cluster_by=["customer", "ts"])
        assert [r.error for r in ws.sync()] == [None]
        ws.settings.set("spark_remote", spark_server.remote)
        sql = ("SELECT customer, count(*) AS n, sum(qty) AS qty, min(ts) AS first, "
               "max(ts) AS last FROM sa.public.usage GROUP BY customer ORDER BY customer")
        first = _same_on_both_engines(ws, sql)
        note = _snapshot_note(first, "sa.public.usage")
        assert "by day of ts: 10 partitions, 10 written now" in note, note
        pg_cluster.run_sql(  # the last day's end, and a new day
            "INSERT INTO usage SELECT i, 'c' || i % 5, TIMESTAMPTZ '2026-03-10 20:00:00+00' "
            "+ (i - 1000) * INTERVAL '9 minutes', 1.5 FROM generate_series(1001, 1060) AS i",
            "spark_append")
        seen: list[tuple[str, int]] = []
        # on the spark engine, a sync writes the snapshot itself, its rows shown as they go
        [report] = ws.sync(progress=lambda table, rows: seen.append((table, rows)))
        assert report.error is None
        [synced] = report.tables
        assert "11 partitions, 2 written now" in synced.snapshot, synced.line()
        assert synced.snapshot in synced.line()
        written = [rows for table, rows in seen if table == "sa.public.usage (Parquet snapshot)"]
        assert written and 60 < written[-1] < 1060  # the two days' rows, not the table's
        after = _same_on_both_engines(ws, sql)
        note = _snapshot_note(after, "sa.public.usage")
        assert note.endswith("by day of ts: 11 partitions"), note  # (nothing left to write)
        assert sum(after.table.column("n").to_pylist()) == 1060
    finally:
        ws.close()


def test_an_event_stream_is_exported_by_day_and_an_amend_rewrites_one_day(spark_server,
                                                                        tmp_path, monkeypatch):
    """Pushed events are partitioned by the stream's timestamp field: a new push, an amend
    and a void each write one day again, and no answer is read from the rows before."""
    from meterql.engine.spark import lake

    monkeypatch.setattr(lake, "PARTITION_ROWS", 20)
    ws = meterql.connect(tmp_path / "home")
    try:
        ws.settings.set("spark_remote", spark_server.remote)
        from datetime import UTC, datetime, timedelta

        today = datetime.now(UTC).date()  # (pushes are accepted for recent days only)
        days = [(today - timedelta(days=6 - d)).isoformat() for d in range(5)]
        ws.events.ingest("calls", [
            {"id": f"e{d}-{i}", "timestamp": f"{day}T{i % 24:02d}:15:00Z",
             "customer_id": f"c{i % 3}", "units": i}
            for d, day in enumerate(days) for i in range(40)])
        sql = ("SELECT customer_id, count(*) AS n, sum(units) AS units FROM local.events.calls "
               "GROUP BY customer_id ORDER BY customer_id")
        note = _snapshot_note(_same_on_both_engines(ws, sql), "local.events.calls")
        assert "by day of timestamp: 5 partitions, 5 written now" in note, note
        ws.events.ingest("calls", [{"id": "late", "timestamp": f"{days[2]}T12:00:00Z",
                                    "customer_id": "c9", "units": 1000}])
        note = _snapshot_note(_same_on_both_engines(ws, sql), "local.events.calls")
        assert "5 partitions, 1 written now" in note, note
        ws.events.amend("calls", "e1-7", {"id": "e1-7", "timestamp": f"{days[1]}T07:15:00Z",
                                          "customer_id": "c1", "units": 7000})
        ws.events.void("calls", "e4-5")
        got = _same_on_both_engines(ws, sql)
        assert "5 partitions, 2 written now" in _snapshot_note(got, "local.events.calls")
        assert sum(got.table.column("n").to_pylist()) == 5 * 40 + 1 - 1
        assert sum(got.table.column("units").to_pylist()) == \
            5 * sum(range(40)) + 1000 - 7 + 7000 - 5
    finally:
        ws.close()


#: The sync parity queries (tests/test_sync_parity.py) not among SPARK_QUERIES, every 10th: the
#: replica read by Spark answers as PostgreSQL read directly by DuckDB.
PARITY_QUERIES = [q for q in PG_QUERIES if q not in SPARK_QUERIES][::10]


@pytest.mark.parametrize("q", [pytest.param(q, id=q.id) for q in PARITY_QUERIES])
def test_sync_parity_on_spark(billing, spark_ws, q):
    try:
        assert_same_as_direct(billing, spark_ws, q)
    except QueryError as exc:  # (spark refused what DuckDB answers directly)
        assert_a_listed_refusal(exc)


def test_aggregates_and_the_http_api_answer_on_spark_as_on_duckdb(spark_ws, monkeypatch):
    """Aggregate evaluation and `meterql serve` run unchanged on the spark engine: the same
    evaluation (rows and result hash) and the same HTTP answers as on duckdb, computed by
    Spark."""
    from datetime import date

    from fastapi.testclient import TestClient

    from meterql.access.keys import create_key
    from meterql.connectors.spark_connect import SparkConnection
    from meterql.server.app import create_app

    ran: list[str] = []
    run = SparkConnection.run

    def counted(self, sql, *args, **kwargs):
        ran.append(sql)
        return run(self, sql, *args, **kwargs)

    monkeypatch.setattr(SparkConnection, "run", counted)
    spark_ws.aggregates.save(
        "spark_usage", "SELECT customer_id, sum(quantity) AS quantity, count(*) AS events "
        "FROM pg.public.events WHERE ts >= :period_start AND ts < :period_end "
        "GROUP BY customer_id", unit="unit")
    key = create_key(spark_ws.keys, "read", "spark test")[1]
    body = {"from": "2024-02-01", "to": "2024-04-01", "tz": "Europe/Berlin", "window": "month"}
    query = {"sql": "SELECT meter, count(*) AS n, sum(quantity) AS q FROM pg.public.events "
                    "GROUP BY meter ORDER BY meter NULLS FIRST"}
    answers = {}
    for engine in ("duckdb", "spark"):
        spark_ws.settings.set("engine", engine)
        before = len(ran)
        evaluation = spark_ws.aggregates.evaluate("spark_usage", date(2024, 2, 1),
                                                  date(2024, 4, 1), tz="Europe/Berlin",
                                                  window="month")
        with TestClient(create_app(spark_ws)) as client:
            headers = {"Authorization": f"Bearer {key}"}
            over_http = client.post("/v1/aggregates/spark_usage/evaluate", json=body,
                                    headers=headers)
            queried = client.post("/v1/query", json=query, headers=headers)
        assert over_http.status_code == 200 and queried.status_code == 200, queried.text
        assert (len(ran) > before) == (engine == "spark")  # computed by Spark there
        answers[engine] = (evaluation.table.sort_by([("period_start", "ascending"),
                                                     ("customer_id", "ascending")]),
                           evaluation.result_hash,
                           over_http.json()["evaluation"]["result_hash"],
                           queried.json()["rows"], queried.json()["columns"])
    duck, spark = answers["duckdb"], answers["spark"]
    assert spark[0].equals(duck[0]) and spark[0].num_rows > 10
    assert spark[1:] == duck[1:]
