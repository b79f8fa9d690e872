"""Workspace settings: named, typed, with defaults; stored in the catalog's ``meta`` table."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meterql.errors import InvalidSettingError
from meterql.wording import format_duration, parse_duration


def one_of(*choices: str) -> Callable[[str], str]:
    """The check of a setting that takes one of ``choices``.

    >>> one_of("duckdb", "spark")("Spark")
    'spark'
    """
    def check(value: str) -> str:
        if value.lower() not in choices:
            close = difflib.get_close_matches(value.lower(), choices, n=1)
            guess = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"takes {' or '.join(choices)}, not {value!r}{guess}")
        return value.lower()

    return check


def spark_remote(value: str) -> str:
    """The check of ``spark_remote``: empty, or a Spark Connect address ``sc://host:port``
    with nothing after it (a token or a user would end up in logs and errors).

    >>> spark_remote("sc://spark.internal:15002")
    'sc://spark.internal:15002'
    """
    if not value:
        return ""
    from urllib.parse import urlsplit

    try:
        url = urlsplit(value)
        port = url.port
    except ValueError:
        port = None
        url = None
    if url is not None and (url.username or url.password or ";" in value or url.query):
        # (the value is not repeated: it holds what may be a secret)
        raise ValueError("takes sc://host:port with no user, token or parameter in it")
    if url is None or url.scheme != "sc" or not url.hostname or port is None \
            or url.path not in ("", "/"):
        raise ValueError(f"takes sc://host:port, not {value!r}")
    return f"sc://{url.hostname}:{port}"


def storage_folder(value: str) -> str:
    """The check of ``spark_storage``: empty (the workspace's ``lake`` folder) or an absolute
    path (object-store URLs are not taken yet).

    >>> storage_folder("/mnt/shared/meterql-lake")
    '/mnt/shared/meterql-lake'
    """
    if value and (not value.startswith("/") or "://" in value):
        raise ValueError(f"takes an absolute folder path the cluster also reads, not {value!r}")
    return value.rstrip("/") if value != "/" else value


def parse_staleness(value: Any) -> float | None:
    """A freshness bound in seconds: a duration (``0`` is live) or ``none`` (``None``: a
    replica of any age is fine).

    >>> parse_staleness("5m"), parse_staleness(0), parse_staleness("none")
    (300.0, 0.0, None)

    Raises:
        ValueError: neither a duration nor ``none``.
    """
    if value is None or str(value).strip().lower() == "none":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a negative bound: {value}")
        return float(value)
    return parse_duration(str(value))


@dataclass(frozen=True)
class Setting:
    """One setting: its type, default, allowed range and what it does."""

    name: str
    type: type
    default: Any
    help: str
    low: int | None = None
    high: int | None = None
    #: for a text setting, the checks that make a value of it (or raise ``ValueError``)
    check: Callable[[str], str] | None = None

    def parse(self, value: Any) -> Any:
        """The typed value, or :class:`InvalidSettingError` saying what is allowed."""
        if self.check is not None:
            try:
                return self.check(str(value).strip())
            except ValueError as exc:
                raise InvalidSettingError(f"setting {self.name}: {exc}", hint=self.help) from None
        if self.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("on", "true", "1", "yes"):
                return True
            if text in ("off", "false", "0", "no"):
                return False
            raise InvalidSettingError(
                f"setting {self.name} takes on or off, not {value!r}", hint=self.help
            )
        if self.type is str:  # a duration, or none
            try:
                seconds = parse_staleness(value)
            except ValueError:
                raise InvalidSettingError(
                    f"setting {self.name} takes a duration (0, 30s, 5m, 1h) or none, "
                    f"not {value!r}", hint=self.help) from None
            return "none" if seconds is None else format_duration(seconds)
        try:
            number = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or (self.low is not None and number < self.low) or (
            self.high is not None and number > self.high
        ):
            raise InvalidSettingError(
                f"setting {self.name} takes a whole number from {self.low} to {self.high}, "
                f"not {value!r}",
                hint=self.help,
            )
        return number


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "dynamic_filter",
            bool,
            True,
            "push the join keys of a join's small side into the other side's scan",
        ),
        Setting(
            "dynamic_filter_max_keys",
            int,
            10_000,
            "most distinct keys pushed as a list; past it a min/max range is pushed instead",
            1,
            1_000_000,
        ),
        Setting(
            "dynamic_filter_max_build_rows",
            int,
            1_000_000,
            "most rows the small side may be estimated to have for a dynamic filter",
            1,
            2**62,
        ),
        Setting(
            "eager_aggregation",
            bool,
            True,
            "aggregate the big side of a join at its source before joining it with small or "
            "local tables, when that is exact and pays",
        ),
        Setting(
            "sync_full_copy_on_schema_change",
            bool,
            True,
            "copy a synced table whole when its columns changed at the source (off: report "
            "the change and keep the replica as it was)",
        ),
        Setting(
            "plan_cache_size",
            int,
            256,
            "plans kept per workspace (0 turns the cache off)",
            0,
            1_000_000,
        ),
        Setting(
            "events_max_age_days",
            int,
            35,
            "usage events older than this many days are rejected (backfills take older ones)",
            1,
            36_500,
        ),
        Setting(
            "events_max_future_s",
            int,
            300,
            "usage events more than this many seconds in the future are rejected",
            0,
            86_400 * 366,
        ),
        Setting(
            "events_max_fields",
            int,
            200,
            "most fields (holding a value) one usage event may have; an event with more is "
            "rejected",
            3,
            10_000,
        ),
        Setting(
            "events_max_columns",
            int,
            500,
            "most columns an event stream may have; an event whose new fields would pass it "
            "is rejected, and a declared stream with more is refused",
            3,
            10_000,
        ),
        Setting(
            "events_max_depth",
            int,
            32,
            "deepest JSON nesting of a usage event (the event itself is level 1); a deeper "
            "event is rejected",
            1,
            500,
        ),
        Setting(
            "events_max_number_digits",
            int,
            100,
            "most digits of a number in a usage event (and the reach of its exponent); an "
            "event with a longer number is rejected",
            38,
            4_000,
        ),
        Setting(
            "max_staleness",
            str,
            "none",
            "the default freshness bound of a query (0 = live, 5m, 1h, none = any age): a "
            "table of an auto source is read from its replica when synced within it, else "
            "from the source",
        ),
        Setting(
            "engine",
            str,
            "duckdb",
            "where queries that combine tables run: duckdb (embedded, the default) or spark "
            "(a Spark Connect server, spark_remote; see docs/scale-out.md)",
            check=one_of("duckdb", "spark"),
        ),
        Setting(
            "spark_remote",
            str,
            "",
            "the Spark Connect server of the spark engine, sc://host:port",
            check=spark_remote,
        ),
        Setting(
            "spark_storage",
            str,
            "",
            "the folder the spark engine writes replicas and local tables to as Parquet, "
            "which every Spark executor must read at the same path (empty: the workspace's "
            "lake folder, for a server on this machine)",
            check=storage_folder,
        ),
        Setting(
            "http_max_body_mb",
            int,
            1,
            "largest body in MB of an HTTP API request other than an event push or a CSV "
            "upload (queries, aggregates, keys, streams, rows); larger ones get a 413",
            1,
            1024,
        ),
        Setting(
            "http_max_events_mb",
            int,
            64,
            "largest body in MB of an event push over HTTP, as sent and once gzip is undone",
            1,
            1024,
        ),
        Setting(
            "http_max_upload_mb",
            int,
            64,
            "largest body in MB of a CSV upload over HTTP",
            1,
            1024,
        ),
    )
}


def setting(name: str) -> Setting:
    """The definition of a setting, with "did you mean" for a misspelt name."""
    try:
        return SETTINGS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(SETTINGS), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "settings: " + ", ".join(SETTINGS)
        raise InvalidSettingError(f"no setting named '{name}'", hint=hint) from None
