"""The workspace's namespaces: ``ws.sources``, ``ws.tables``, ``ws.sync``, ``ws.settings`` and
``ws.uploads`` (beside ``ws.events``, ``ws.manual``, ``ws.aggregates`` and ``ws.keys``).

The :class:`~meterql.Workspace` itself is the composition root and the query API (``query``,
``submit``, ``explain``); everything else is reached through one of these, all in the same
style. They hold no state: each forwards to the workspace, which owns the catalog, the
connectors, the replicas and the local store. Where a listing is the common use, the namespace
itself can be called: ``ws.sources()``, ``ws.tables()``, ``ws.settings()``, ``ws.sync()``.

Example:
    >>> import tempfile, meterql
    >>> with meterql.connect(tempfile.mkdtemp()) as ws:
    ...     ws.sources(), ws.settings.get("plan_cache_size")
    ([], 256)
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meterql.catalog import Source, Table, TableStats
from meterql.catalog.model import Mode
from meterql.catalog.settings import SETTINGS, setting
from meterql.sync.config import Strategy

if TYPE_CHECKING:  # (the workspace imports the modules behind them on first use)
    from meterql.local.uploads import Mode as UploadMode
    from meterql.local.uploads import UploadReport
    from meterql.sync import ReplicaWatermark, SyncReport
    from meterql.workspace import Workspace


class Sources:
    """``ws.sources``: register, inspect, change and remove sources."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def __call__(self) -> builtins.list[Source]:
        """Every registered source (the same as :meth:`list`)."""
        return self.list()

    def list(self) -> builtins.list[Source]:
        return self._ws._sources()

    def get(self, name: str) -> Source:
        """One source by name ("did you mean" when there is none)."""
        return self._ws._source(name)

    def add(self, name: str, uri: str, mode: Mode = "direct",
            options: Mapping[str, Any] | None = None) -> Source:
        """Register a source and read its tables (see ``Workspace._add_source``)."""
        return self._ws._add_source(name, uri, mode, options)

    def remove(self, name: str) -> Source:
        return self._ws._remove_source(name)

    def refresh(self, name: str) -> builtins.list[Table]:
        """Read a source's tables again (after a schema change), and its statistics."""
        return self._ws._refresh_source(name)

    def calibrate(self, name: str) -> dict[str, float]:
        """Measure the source's costs per row for routing and store them (see
        ``Workspace._calibrate``)."""
        return self._ws._calibrate(name)

    def set_mode(self, name: str, mode: Mode) -> Source:
        return self._ws._set_mode(name, mode)

    def set_options(self, name: str, options: Mapping[str, Any]) -> Source:
        return self._ws._set_source_options(name, options)

    def test(self, name: str) -> str:
        """Connect and return the source's server version."""
        return self._ws._test_source(name)


class Tables:
    """``ws.tables``: every table as ``source.schema.table``."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def __call__(self, source: str | None = None) -> list[Table]:
        """Every table (of one source when given)."""
        return self._ws._tables(source)

    def get(self, name: str) -> Table:
        """A table by its full, two-part or bare name ("did you mean", candidates)."""
        return self._ws._table(name)

    def freshness(self, name: str) -> dict[str, Any] | None:
        """How fresh a table read from DuckDB is: a replica table's last committed sync, a
        local table's last ingest; ``None`` for a direct source's table (always live) or a
        replica not synced yet."""
        return self._ws._watermark(self.get(name).full_name)

    def statistics(self, name: str) -> TableStats | None:
        """A table's statistics at its source (rows, per-column statistics, indexes), as
        ``source refresh`` or the last sync read them; ``None`` when never read."""
        return self._ws.catalog.statistics(self.get(name).full_name)

    def functions(self) -> list[str]:
        """The names of the SQL functions a query may call (DuckDB's scalar and aggregate
        functions and macros), for completion."""
        return self._ws._function_names()


class Sync:
    """``ws.sync``: copy what changed at synced sources into their replicas."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def __call__(self, name: str | None = None,
                 progress: Callable[[str, int], None] | None = None) -> list[SyncReport]:
        """Sync one source, or every source in sync mode (the same as :meth:`run`)."""
        return self.run(name, progress)

    def run(self, name: str | None = None,
            progress: Callable[[str, int], None] | None = None) -> list[SyncReport]:
        return self._ws._sync(name, progress)

    def watermarks(self, name: str) -> list[ReplicaWatermark]:
        """How fresh each replica table of a source is."""
        return self._ws._replica_watermarks(name)

    def set_strategy(self, table: str, strategy: Strategy, cursor: str | None = None,
                     lag: int = 0, soft_delete: str | None = None,
                     cluster_by: Sequence[str] | None = None) -> None:
        """How a table is synced: full, append (with a cursor), merge or cdc, and the order
        its replica keeps (see ``Workspace._set_sync_strategy`` for each one's meaning)."""
        self._ws._set_sync_strategy(table, strategy, cursor, lag, soft_delete, cluster_by)


class Settings:
    """``ws.settings``: the workspace's settings (see meterql/catalog/settings.py)."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def __call__(self) -> dict[str, Any]:
        """Every setting in force."""
        return self._ws._settings()

    def get(self, name: str) -> Any:
        """A setting's value in force (an unknown name: InvalidSettingError, with "did you
        mean")."""
        return self._ws._settings()[setting(name).name]

    def set(self, name: str, value: Any) -> Any:
        """Set a setting (``None`` restores its default); returns the value in force."""
        return self._ws._set_setting(name, value)

    def describe(self) -> list[dict[str, Any]]:
        """Every setting: its value in force, its default and what it does."""
        return [{"name": name, "value": value, "default": SETTINGS[name].default,
                 "meaning": SETTINGS[name].help} for name, value in self().items()]


class Uploads:
    """``ws.uploads``: CSV files into ``local.uploads.<table>``."""

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def load(self, data: bytes | str | Path, table: str, *, mode: UploadMode = "append",
             key: list[str] | None = None, keep_good: bool = False,
             columns: dict[str, str] | None = None,
             round_decimals: bool = False) -> UploadReport:
        """Load a CSV file (a path or its bytes): all rows or none unless ``keep_good``."""
        return self._ws._load_csv(data, table, mode=mode, key=key, keep_good=keep_good,
                                  columns=columns, round_decimals=round_decimals)

    def preview(self, data: bytes, table: str, *, mode: UploadMode = "append",
                columns: dict[str, str] | None = None,
                round_decimals: bool = False) -> dict[str, Any]:
        """What :meth:`load` would read, stored nowhere: the columns with their types (as the
        load chooses them), the first rows, how many fit, and the rows that do not (line and
        reason)."""
        return self._ws._preview_csv(data, table, mode=mode, columns=columns,
                                     round_decimals=round_decimals)
