"""A Spark Connect session: I/O only. Arrow in (tables the query reads), Spark SQL run, Arrow
out; Spark's and gRPC's errors become meterql's at this boundary.

pyspark is imported on first use: the embedded DuckDB engine never loads it.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from meterql.errors import MeterqlError, QueryError, SourceQueryError, SourceUnavailableError

#: What a Spark session of meterql's is set to, whatever the server's defaults: instants in
#: UTC (meterql shows them in the caller's zone), ANSI arithmetic (an overflow is an error,
#: never a wrapped or NULL number), no decimal precision dropped to fit 38 digits.
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
}


#: Seconds to wait for the server's port before calling it unreachable.
PROBE_S = 5.0


class SparkConnection:
    """One Spark Connect session to ``remote`` (``sc://host:port``), opened on first use."""

    def __init__(self, remote: str) -> None:
        self.remote = remote
        self._session: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        with self._lock:
            if self._session is None:
                try:
                    from pyspark.sql import SparkSession
                except ImportError:
                    raise QueryError(
                        "the spark engine needs pyspark, which is not installed",
                        hint="pip install 'meterql[spark]', or set engine to duckdb") from None
                self._probe()
                try:
                    session = SparkSession.builder.remote(self.remote).create()
                    # A server that goes away fails the query in seconds, not after the
                    # client's default ten minutes of retries (the error is retryable):
                    # 4 retries from 50 ms, x4, at most 2 s apart (about 3 s in all).
                    from pyspark.sql.connect.client.retries import DefaultPolicy

                    session.client.set_retry_policies([DefaultPolicy(
                        max_retries=4, initial_backoff=50, backoff_multiplier=4.0,
                        max_backoff=2000)])
                    for key, value in SESSION_CONF.items():
                        session.conf.set(key, value)
                except Exception as exc:
                    raise self._translate(exc) from None
                self._session = session
            return self._session

    def _probe(self, timeout: float = PROBE_S) -> None:
        """Fail at once when nothing listens at the address (pyspark's client would retry
        for minutes first)."""
        from urllib.parse import urlsplit

        url = urlsplit(self.remote)
        try:
            with socket.create_connection((url.hostname, url.port), timeout=timeout):
                pass
        except OSError as exc:
            raise SourceUnavailableError(
                f"the Spark Connect server at {self.remote} cannot be reached: "
                f"{exc.strerror or exc}",
                hint="check that it runs and that this machine reaches it; run the query "
                     "again, or set engine to duckdb") from None

    def view_name(self, what: str) -> str:
        """A temporary view name no other query of this session uses."""
        return f"__meterql_{what}_{uuid.uuid4().hex[:12]}"

    def register_arrow(self, name: str, table: pa.Table) -> None:
        self._call(lambda s: s.createDataFrame(table).createOrReplaceTempView(name))

    def register_parquet(self, name: str, paths: list[str], schema: pa.Schema) -> None:
        def register(s: Any) -> None:
            if paths:
                s.read.parquet(*paths).createOrReplaceTempView(name)
            else:  # an empty table: its columns, no file
                s.createDataFrame(schema.empty_table()).createOrReplaceTempView(name)

        self._call(register)

    def register_jdbc(self, name: str, options: Mapping[str, str],
                      columns: list[str] | None = None,
                      casts: Mapping[str, str] | None = None) -> None:
        """A view ``name`` over ``spark.read.format("jdbc")`` with ``options`` (read by Spark's
        executors; see engine/spark/jdbc.py), the columns in ``casts`` cast to their Spark
        type, and the columns renamed to ``columns``. Spark resolves the read's schema here
        (one query at the source); an error has the password removed."""
        def register(s: Any) -> None:
            frame = s.read.format("jdbc").options(**options).load()
            for column, spark_type in (casts or {}).items():
                frame = frame.withColumn(column, frame[column].cast(spark_type))
            if columns is not None:
                frame = frame.toDF(*columns)
            frame.createOrReplaceTempView(name)

        try:
            self._call(register)
        except MeterqlError as exc:
            if "ClassNotFoundException" in exc.message and options.get("driver", "") \
                    in exc.message:
                raise SourceUnavailableError(
                    f"the Spark cluster at {self.remote} has no JDBC driver "
                    f"{options['driver']} to read the source with",
                    hint="start the Spark Connect server with the driver on its class path "
                         "(--jars /usr/share/java/postgresql.jar), or set engine to duckdb "
                         "(docs/scale-out.md)") from None
            raise self._redacted(exc, [options.get("password", "")]) from None

    @staticmethod
    def _redacted(exc: MeterqlError, secrets: list[str]) -> MeterqlError:
        """``exc`` with every secret removed from its message and hint (a new error of its
        class)."""
        from meterql.catalog.uri import redact_text

        secrets = [s for s in secrets if s]
        if not secrets:
            return exc
        hint = redact_text(exc.hint, secrets) if exc.hint else exc.hint
        return type(exc)(redact_text(exc.message, secrets), hint=hint, source=exc.source,
                         table=exc.table)

    def drop_views(self, names: list[str]) -> None:
        for name in names:
            try:
                self._call(lambda s, n=name: s.catalog.dropTempView(n))
            except MeterqlError:
                pass  # the session is gone with them

    def run(self, sql: str, args: Mapping[str, Any], max_rows: int | None,
            tag: str) -> pa.Table:
        """Run ``sql``, its operations tagged ``tag`` (for :meth:`interrupt`)."""
        def run(s: Any) -> pa.Table:
            s.addTag(tag)  # (tags belong to the calling thread: queries run side by side)
            try:
                frame = s.sql(sql, args=dict(args) or None)
                if max_rows is not None:
                    frame = frame.limit(max_rows + 1)
                return frame.toArrow()
            finally:
                s.removeTag(tag)

        return self._call(run)

    def interrupt(self, tag: str) -> None:
        """Stop the operations tagged ``tag`` (a cancelled or timed-out query's), only them."""
        session = self._session
        if session is not None:
            try:
                session.interruptTag(tag)
            except Exception:  # the session is gone: nothing runs
                pass

    def close(self) -> None:
        """End the session on the server; a server that no longer answers has nothing to
        release (pyspark would spend its retries on it)."""
        with self._lock:
            session, self._session = self._session, None
        if session is None:
            return
        try:
            self._probe(timeout=1.0)
        except SourceUnavailableError:
            return
        try:
            session.stop()
        except Exception:
            pass

    def _call(self, fn: Any) -> Any:
        session = self._open()
        try:
            return fn(session)
        except Exception as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: Exception) -> Exception:
        text = str(exc)
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        if _unreachable(exc):
            return SourceUnavailableError(
                f"the Spark Connect server at {self.remote} cannot be reached: {first[:300]}",
                hint="check that it runs and that this machine reaches it; run the query "
                     "again, or set engine to duckdb")
        name = type(exc).__name__
        if name in ("AnalysisException", "ParseException", "ArithmeticException",
                    "NumberFormatException", "DateTimeException", "SparkRuntimeException",
                    "IllegalArgumentException"):
            return QueryError(f"Spark failed the query: {first[:500]}",
                              hint="the query's combining part ran on the spark engine")
        return SourceQueryError(f"Spark failed the query: {first[:500]}",
                                hint="run the query again; if it fails again, set engine to "
                                     "duckdb and report it")


def _unreachable(exc: Exception) -> bool:
    try:
        import grpc  # type: ignore[import-untyped]
    except ImportError:
        return False
    if isinstance(exc, grpc.RpcError):
        return True
    text = str(exc)
    return "StatusCode.UNAVAILABLE" in text or "failed to connect" in text.lower() \
        or "Connection refused" in text
