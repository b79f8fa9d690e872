"""Whether Spark converts instants to a zone's wall-clock time as DuckDB does.

DuckDB reads time zone rules from ICU's database, Spark from its JVM's; releases of the two
disagree on some zones: rules before 1970 (which the IANA database does not promise, and
builds cut differently) and future ones a government changed (between DuckDB 2.0 and Java
17.0.15, 31 of 489 zones differ somewhere in 1900-2100). So the first time a session uses a
zone, both engines convert the same instants (every 61 hours from 1970 to 2100, which falls
on every hour of the day) and their per-year sums are compared: a zone on which they differ
is refused with the first year they differ in, and an instant outside the years compared
fails the query in Spark (:func:`in_checked_years`).
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb
from sqlglot import exp

from meterql.errors import QueryError

#: The instants checked: seconds since 1970 from 1970-01-01 to 2100-01-01, every 61 hours.
FIRST_S, LAST_S, STEP_S = 0, 4_102_444_800, 61 * 3600
#: Buckets of the sums (a Julian year of seconds).
BUCKET_S = 31_557_600

_DUCKDB_SQL = (
    "SELECT floor(s / $bucket)::BIGINT AS b, "
    "sum(epoch(timezone($zone, to_timestamp(s)))::HUGEINT) AS w "
    "FROM range($first, $last, $step) AS r(s) GROUP BY 1")
_SPARK_SQL = (
    "SELECT CAST(floor(s / :bucket) AS BIGINT) AS b, "
    "sum(CAST(unix_timestamp(from_utc_timestamp(timestamp_seconds(s), :zone)) AS DECIMAL(38, 0)))"
    " AS w FROM (SELECT explode(sequence(CAST(:first AS BIGINT), CAST(:last AS BIGINT) - 1, "
    "CAST(:step AS BIGINT))) AS s) AS r GROUP BY 1")


def in_checked_years(value: exp.Expression) -> exp.Expression:
    """``value`` (an instant, in Spark SQL) where it lies in the years compared, else an
    error raised by Spark naming them."""
    lo = exp.Anonymous(this="timestamp_seconds", expressions=[exp.Literal.number(FIRST_S)])
    hi = exp.Anonymous(this="timestamp_seconds", expressions=[exp.Literal.number(LAST_S)])
    outside = exp.or_(exp.LT(this=value.copy(), expression=lo),
                      exp.GTE(this=value.copy(), expression=hi))
    error = exp.Anonymous(this="raise_error", expressions=[exp.Literal.string(
        "AT TIME ZONE on the spark engine takes instants from 1970 to 2099 (the years whose "
        "zone rules are compared with DuckDB's); set engine to duckdb for this query")])
    return exp.Case(ifs=[exp.If(this=outside, true=error)], default=value.copy())


class ZoneRules:
    """What a Spark session was found to do with each zone it used: ``None`` when it converts
    as DuckDB does, else the first year they differ in (a zone is compared once)."""

    def __init__(self) -> None:
        self._found: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def check(self, zone: str, duck: duckdb.DuckDBPyConnection, spark: Any) -> None:
        """Return when ``spark`` (a SparkConnection) converts instants to ``zone`` as DuckDB
        does; raise QueryError naming the first year they differ in otherwise."""
        with self._lock:
            known = zone in self._found
            year = self._found.get(zone)
        if not known:
            year = self._compare(zone, duck, spark)
            with self._lock:
                self._found[zone] = year
        if year is not None:
            raise QueryError(
                f"the spark engine does not run AT TIME ZONE '{zone}': Spark's time zone rules "
                f"for it differ from DuckDB's (first around {year})",
                hint="the two engines' time zone databases are of different releases; set "
                     "engine to duckdb for this query, or update the cluster's Java")

    @staticmethod
    def _compare(zone: str, duck: duckdb.DuckDBPyConnection, spark: Any) -> int | None:
        args = {"zone": zone, "bucket": BUCKET_S, "first": FIRST_S, "last": LAST_S,
                "step": STEP_S}
        cur = duck.cursor()
        try:
            want = {int(b): int(w) for b, w in cur.execute(_DUCKDB_SQL, args).fetchall()}
        except duckdb.Error as exc:
            raise QueryError(f"DuckDB does not know the time zone '{zone}': {exc}",
                             hint="give an IANA zone name, e.g. 'Europe/Berlin'") from None
        finally:
            cur.close()
        got_table = spark.run(_SPARK_SQL, args, None, spark.view_name("zone"))
        got = {int(b): int(w) for b, w in zip(got_table.column("b").to_pylist(),
                                              got_table.column("w").to_pylist(), strict=True)}
        differ = sorted(b for b in want.keys() | got.keys() if want.get(b) != got.get(b))
        return 1970 + differ[0] if differ else None
