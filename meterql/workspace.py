"""A workspace: the folder holding the catalog (and later replicas and local data).

One process owns a workspace at a time (DuckDB locks its files); a second one gets a clear error.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from meterql.access.keys import KeyStore
from meterql.catalog import Catalog, Source, Table
from meterql.catalog.model import Mode
from meterql.catalog.uri import file_exists, file_path, parse_uri
from meterql.dialects import dialect_for
from meterql.engine.limits import DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_S
from meterql.engine.pending import PendingResult
from meterql.engine.workers import Workers
from meterql.errors import InvalidSourceError, MeterqlError, ParameterError, WorkspaceError
from meterql.file_modes import private_folder, private_opener, private_workspace
from meterql.local import EVENT_LOG
from meterql.namespaces import Settings, Sources, Sync, Tables, Uploads
from meterql.sync.config import (
    Strategy,
    TableSyncConfig,
    choose_strategy,
    partition_columns,
    table_configs,
)
from meterql.sync.replica import (
    STATE_SCHEMA,
    ReplicaWatermark,
    attach,
    detach,
    replica_folder,
    replica_path,
    watermarks,
)

if TYPE_CHECKING:
    # The modules behind these import pyarrow, sqlglot and the rest of the engine: they are
    # imported when the workspace opens its engine (``_open_parts``), not when it opens.
    from meterql.aggregates.book import AggregateBook
    from meterql.connectors import Connector
    from meterql.engine import Engine, Plan, QueryControl, Result
    from meterql.local.events import EventStreams
    from meterql.local.manual import ManualTables
    from meterql.local.store import LocalStore
    from meterql.local.uploads import UploadReport
    from meterql.sync.runner import SyncReport

DEFAULT_HOME = "meterql_home"


def default_home() -> Path:
    """``$METERQL_HOME``, else ``./meterql_home``."""
    return Path(os.environ.get("METERQL_HOME") or DEFAULT_HOME)


def connect(home: str | os.PathLike[str] | None = None) -> Workspace:
    """Open (or create) a workspace.

    Args:
        home: the workspace folder; default ``$METERQL_HOME`` or ``./meterql_home``.

    Example:
        >>> import tempfile, meterql
        >>> with meterql.connect(tempfile.mkdtemp()) as ws:
        ...     ws.sources()
        []
    """
    return Workspace(Path(home) if home is not None else default_home())


@dataclass(frozen=True)
class _Parts:
    """What a workspace opens on first use (``Workspace._open``)."""

    engine: Engine
    local: LocalStore
    events: EventStreams
    manual: ManualTables
    aggregates: AggregateBook


class RunningQuery(PendingResult):
    """A query running in the background: ``result()`` waits for it, ``cancel()`` stops it."""

    def __init__(self, control: QueryControl) -> None:
        super().__init__()
        self._control = control

    def cancel(self) -> None:
        """Stop the query at every source and in DuckDB; ``result()`` then raises."""
        self._control.cancel()


class Workspace:
    """Sources, tables and queries: the Python API that the CLI calls.

    Use :func:`connect` to open one; close it (or use ``with``) to release the folder.
    """

    def __init__(self, home: Path) -> None:
        self.home = home.resolve()
        try:
            private_folder(self.home)  # (0700; its files are made 0600 below)
            self._lock_file = open(self.home / ".lock", "a+",  # held while open
                                   opener=private_opener)
        except OSError as exc:
            raise WorkspaceError(
                f"cannot create the workspace folder {self.home}: {exc.strerror}",
                hint="choose another folder with --home or METERQL_HOME",
            ) from exc
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            owner = self._lock_file.read().strip() or "another process"
            self._lock_file.close()
            raise WorkspaceError(
                f"the workspace {self.home} is in use by {owner}",
                hint=("work through the server: meterql commands beside it do so by "
                      "themselves, Python with meterql.connect(URL, key=...) (docs/http-api.md,"
                      " 'A running server')")
                if owner.startswith("meterql serve")
                else "close the other meterql process, or use another --home",
            ) from None
        except OSError as exc:
            self._lock_file.close()
            raise WorkspaceError(
                f"cannot lock the workspace {self.home}: {exc.strerror}",
                hint="use a folder on a local disk",
            ) from exc
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"process {os.getpid()}")
        self._lock_file.flush()
        catalog_db: duckdb.DuckDBPyConnection | None = None
        try:
            catalog_db = duckdb.connect(str(self.home / "catalog.duckdb"))
            self.catalog = Catalog(catalog_db)
        except BaseException as exc:
            # Whatever went wrong (a newer catalog, a damaged file), leave nothing held open:
            # the folder must not stay locked by a workspace that never opened.
            if catalog_db is not None:
                with contextlib.suppress(Exception):
                    catalog_db.close()
            self._release()
            if isinstance(exc, duckdb.Error):
                raise WorkspaceError(
                    f"cannot open the catalog in {self.home}: {exc}",
                    hint="check the folder's permissions",
                ) from exc
            raise
        self._catalog_db = catalog_db
        self._closed = False
        #: Sources: ``add``, ``get``, ``remove``, ``refresh``, ``set_mode``, ``set_options``,
        #: ``test``; ``ws.sources()`` lists them.
        self.sources = Sources(self)
        #: Tables as ``source.schema.table``: ``ws.tables()`` lists, ``ws.tables.get(name)``.
        self.tables = Tables(self)
        #: Replicas: ``ws.sync()`` / ``run``, ``watermarks``, ``set_strategy``.
        self.sync = Sync(self)
        #: Settings: ``ws.settings()``, ``get``, ``set``.
        self.settings = Settings(self)
        #: CSV uploads: ``load``.
        self.uploads = Uploads(self)
        self._keys = KeyStore(catalog_db)
        self._connectors: dict[str, Connector] = {}
        self._connectors_lock = threading.Lock()
        self._watermarks: dict[str, dict[tuple[str, str], ReplicaWatermark]] = {}
        self._sync_lock = threading.Lock()
        # submitted queries run on reused threads, each at once (engine/workers.py)
        self._query_threads = Workers("meterql-query")
        # The engine and the workspace's own data open on first use (_open), so that what
        # reads only the catalog (``meterql source list``) imports no pyarrow or sqlglot.
        self._parts: _Parts | None = None
        self._parts_lock = threading.Lock()
        try:
            private_workspace(self.home)  # what DuckDB just created; older workspaces' files
        except OSError as exc:
            self.close()
            raise WorkspaceError(f"cannot make the files of {self.home} private: {exc}",
                                 hint="run meterql as the user who owns the folder") from exc
        if _holds_data(self.home / EVENT_LOG):
            # answered events a crash left unapplied: applied now, when the workspace opens
            try:
                self._open()
            except BaseException:
                self.close()
                raise

    def _open(self) -> _Parts:
        """The engine and the workspace's own data, opened on first use (once, whichever
        thread asks first; the others wait for it)."""
        parts = self._parts
        if parts is not None:
            return parts
        with self._parts_lock:
            self._check_open()
            if self._parts is None:
                self._parts = self._open_parts()
            return self._parts

    def _open_parts(self) -> _Parts:
        """Open the engine (with the replicas of the sources in sync mode attached), the local
        store and its event streams (recovering the event log), the manual tables and the
        aggregates. They open together: a read of ``local.events`` must find the event log
        applied, and the replicas attached. On failure nothing of them stays open (the
        workspace stays open; the next use tries again)."""
        from meterql.aggregates.book import AggregateBook
        from meterql.aggregates.store import AggregateStore
        from meterql.engine import Engine
        from meterql.local.events import EventStreams
        from meterql.local.manual import ManualTables
        from meterql.local.store import LocalStore
        from meterql.sync.delta import ReplicaDeltas

        # DuckDB checkpoints (rewriting changed row groups and whole indexes, such as the event
        # id index) once its write-ahead log reaches checkpoint_threshold; the default, 16 MB,
        # meant a checkpoint every 50,000 events or so under a steady push load, a quarter of
        # the cost of applying them. The price: a longer log to replay after a crash.
        engine = Engine(self.catalog, self._connector, self._before_reading,
                        files=[self.home / "local.duckdb"],
                        folders=[replica_folder(self.home)],
                        settings={"checkpoint_threshold": "256MB",
                                  # what spills past memory stays in the workspace (0700)
                                  "temp_directory": str(self.home / "tmp")},
                        deltas=ReplicaDeltas(self.catalog, self._connector, lambda: engine.duck),
                        lake=self.home / "lake", time_columns=self._time_columns)
        events: EventStreams | None = None
        try:
            # the workspace's own data (local.events, local.uploads, local.manual)
            local = LocalStore(engine.duck, self.home, self.catalog)
            events = EventStreams(local, lambda: self.catalog.settings)
            # pushes answered but still in the event log reach DuckDB before a query reads them
            local.before_read("events", events.flush)
            for source in self.catalog.sources():
                if source.replicated:
                    self._attach_to(engine.duck, source.name)
            try:
                private_workspace(self.home)  # what DuckDB just created
            except OSError as exc:
                raise WorkspaceError(f"cannot make the files of {self.home} private: {exc}",
                                     hint="run meterql as the user who owns the folder") from exc
            aggregates = AggregateBook(AggregateStore(self._catalog_db), engine, self.catalog,
                                       self.query, self.submit)
        except BaseException:
            if events is not None:
                with contextlib.suppress(Exception):
                    events.close()
            with contextlib.suppress(Exception):
                engine.close()
            self._watermarks.clear()
            raise
        return _Parts(engine, local, events, ManualTables(local), aggregates)

    def _time_columns(self, table: str) -> tuple[str, ...]:
        """The columns ``table``'s Parquet snapshots may be partitioned by on the spark engine:
        an event stream's timestamp field, or a replica's (sync.config.partition_columns)."""
        source, schema, name = table.split(".", 2)
        try:
            if source == "local":
                parts = self._parts
                if schema != "events" or parts is None:
                    return ()
                return (parts.events.stream(name).timestamp_field,)
            row = self.catalog.sync_configs(source).get((schema, name))
        except MeterqlError:  # (dropped meanwhile: the snapshot's read says so)
            return ()
        return partition_columns(None if row is None else TableSyncConfig.stored(*row))

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        with self._parts_lock:  # (a part being opened now is opened, then closed here)
            if self._closed:
                return
            self._closed = True
            parts = self._parts
        if parts is not None:
            parts.events.close()  # queued events are written before the store closes
        for connector in self._connectors.values():
            with contextlib.suppress(Exception):
                connector.close()
        if parts is not None:
            parts.engine.close()
        self._catalog_db.close()
        self._release()

    def open_parts(self) -> None:
        """Open the engine, the local store and the event streams now rather than on first
        use (``meterql serve`` does, so that a part that cannot open is reported at start and
        the event log is recovered before the first request)."""
        self._open()

    def label_owner(self, owner: str) -> None:
        """Say who holds the workspace (``meterql serve on URL (pid N)``): the text another
        process is shown when it finds the workspace in use (by default ``process <pid>``)."""
        self._check_open()
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(owner)
        self._lock_file.flush()

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the parts' own namespaces (each checks that the workspace is open, as the others do) --
    @property
    def keys(self) -> KeyStore:
        """API keys of the HTTP API (``meterql.access.keys``)."""
        self._check_open()
        return self._keys

    @property
    def aggregates(self) -> AggregateBook:
        """Aggregates: ``save``, ``apply``, ``list``, ``get``, ``evaluate``, ``dry_run``,
        ``log``."""
        self._check_open()
        return self._open().aggregates

    @property
    def events(self) -> EventStreams:
        """Usage event streams: ``ingest``, ``amend``, ``void``, backfills."""
        self._check_open()
        return self._open().events

    @property
    def manual(self) -> ManualTables:
        """Tables edited by hand, with an audit of every change."""
        self._check_open()
        return self._open().manual

    @property
    def _engine(self) -> Engine:
        return self._open().engine

    @property
    def _local(self) -> LocalStore:
        return self._open().local

    def _check_open(self) -> None:
        if self._closed:
            raise WorkspaceError(
                f"the workspace {self.home} is closed",
                hint="open it again with meterql.connect()",
            )

    def _connector(self, name: str) -> Connector:
        self._check_open()
        with self._connectors_lock:
            if name not in self._connectors:
                from meterql.connectors import connector_for  # (pyarrow, on first use)

                self._connectors[name] = connector_for(self.catalog.source(name))
            return self._connectors[name]

    def _drop_connector(self, name: str) -> None:
        with self._connectors_lock:
            connector = self._connectors.pop(name, None)
        if connector is not None:
            connector.close()

    # -- sources -------------------------------------------------------------------------------
    def _add_source(
        self,
        name: str,
        uri: str,
        mode: Mode = "direct",
        options: Mapping[str, Any] | None = None,
    ) -> Source:
        """Register a database and read its tables.

        Args:
            name: a lowercase identifier, the first part of its table names.
            uri: ``postgresql://user:env:PGPASSWORD@host:5432/db``, ``sqlite:///path.db``
                or ``duckdb:///path.duckdb``.
            mode: ``direct`` (query the source at query time), ``sync`` (query its replica)
                or ``auto`` (synced; each query reads the replica or the source per table,
                by the freshness bound ``max_staleness``).
            options: ``statement_timeout_ms``, ``numeric_scale``.

        Raises:
            InvalidSourceError, SourceExistsError: the definition is wrong; nothing is stored.
            SourceError: the source cannot be reached or read; nothing is stored.

        Example:
            >>> ws.sources.add("lite", "sqlite:///data/usage.db")  # doctest: +SKIP
        """
        self._check_open()
        kind = Catalog.kind_of(uri)
        uri = _normalise_uri(kind, uri)
        source = Source(name, kind, uri, mode, dict(options or {}))
        self.catalog.validate_source(source)
        from meterql.connectors import connector_for

        connector = connector_for(source)
        try:
            tables = connector.introspect()
            self.catalog.add_source(source, tables)
        except BaseException:
            connector.close()
            raise
        with self._connectors_lock:
            self._connectors[name] = connector
        self._refresh_statistics(source.name, tables)
        if mode in ("sync", "auto"):
            self._attach(name)
        return source

    def _sources(self) -> list[Source]:
        self._check_open()
        return self.catalog.sources()

    def _source(self, name: str) -> Source:
        self._check_open()
        return self.catalog.source(name)

    def _remove_source(self, name: str) -> Source:
        """Forget a source and its tables (the source itself is never touched)."""
        self._check_open()
        source = self.catalog.remove_source(name)
        self._drop_connector(source.name)
        if source.replicated:
            self._detach(source.name, delete=True)
        return source

    def _refresh_source(self, name: str) -> list[Table]:
        """Read a source's tables and columns again (after its schema changed)."""
        self._check_open()
        source = self.catalog.source(name)
        tables = self._connector(source.name).introspect()
        self.catalog.replace_tables(source.name, tables)
        self.catalog.replace_statistics(
            source.name, self._connector(source.name).statistics(tables))
        return tables

    def _refresh_if_changed(self, name: str) -> list[Table]:
        """Re-read a source's tables; store them only if a table or column changed (storing
        makes a new catalog version, which drops cached plans). Returns them."""
        tables = self._connector(name).introspect()
        known = self.catalog.tables(name)
        if _shape(tables) != _shape(known):
            self.catalog.replace_tables(name, tables)
        return tables

    def _calibrate(self, name: str) -> dict[str, float]:
        """Measure a source's costs per row (and its replica's, when synced) with a few short
        probes, store them for routing and return them (``meterql.engine.calibrate``)."""
        self._check_open()
        from meterql.engine.calibrate import calibrate

        source = self.catalog.source(name)
        tables = self.catalog.tables(source.name)
        stats = {t.full_name: s for t in tables
                 if (s := self.catalog.statistics(t.full_name)) is not None}
        replica_rows: dict[str, int] = {}
        if source.replicated:
            self._open()  # (the replicas' watermarks are read when they are attached)
            replica_rows = {mark.table: mark.rows
                            for mark in self._watermarks.get(source.name, {}).values()}
        measured = calibrate(self._connector(source.name), tables, stats,
                             self._engine.duck if replica_rows else None, replica_rows)
        self.catalog.set_cost_constants(source.name, measured)
        return measured

    def _refresh_statistics(self, name: str, tables: list[Table]) -> None:
        """Read a source's statistics again (rows, column statistics, indexes). They only
        guide routing, so a source that fails to give them keeps those it had."""
        try:
            self.catalog.replace_statistics(name, self._connector(name).statistics(tables))
        except MeterqlError:
            pass

    # -- sync mode ------------------------------------------------------------------------------
    def _set_mode(self, name: str, mode: Mode) -> Source:
        """Switch a source between querying it directly and querying its local replica.

        The SQL stays the same: ``pg.public.events`` names the source's table in direct mode
        and its replica in sync mode. A replica is kept when switching back to direct, so a
        later switch to sync continues from it; run :meth:`sync` before querying.
        """
        self._check_open()
        source = self.catalog.set_mode(name, mode)
        if mode in ("sync", "auto"):
            self._attach(source.name)
        return source

    def _set_source_options(self, name: str, options: Mapping[str, Any]) -> Source:
        """Change source options (``statement_timeout_ms``, ``cdc_slot``, ...); a value of
        None removes an option. Connections pick the new values up on their next use."""
        self._check_open()
        source = self.catalog.set_options(name, dict(options))
        self._drop_connector(source.name)
        return source

    def _set_sync_strategy(
        self,
        table: str,
        strategy: Strategy,
        cursor: str | None = None,
        lag: int = 0,
        soft_delete: str | None = None,
        cluster_by: Sequence[str] | None = None,
    ) -> None:
        """Choose how one table is synced.

        ``full`` copies the table whole (exact; the default, except that primary-key tables of
        a PostgreSQL source with the ``cdc_slot`` option default to ``cdc``); ``append`` reads
        a monotonic ``cursor`` column; ``merge`` an ``updated_at``-style ``cursor`` plus the
        primary key (exact: deletes are reconciled by reading the key column, or, with
        ``soft_delete`` naming the column that marks deleted rows, arrive as updates);
        ``cdc`` reads PostgreSQL's change log (exact; see docs/guide.md for the source-side
        setup). ``lag`` re-reads that many units (seconds for timestamps) before the last
        cursor. ``cluster_by`` (columns, e.g. ``["customer_id", "ts"]``) keeps the replica's
        rows in that order: a copy of the whole table is sorted, and each batch a sync adds;
        reads on the key's first column then skip the other row groups (takes effect at the
        next whole copy)."""
        self._check_open()
        entry = self.catalog.table(table)
        config = choose_strategy(entry, self.catalog.source(entry.source).kind, strategy,
                                 cursor, lag, soft_delete, cluster_by)
        self.catalog.set_sync_config(entry, config.strategy, config.cursor, config.lag,
                                     config.soft_delete, config.cluster_by)

    def _sync(
        self, name: str | None = None, progress: Callable[[str, int], None] | None = None
    ) -> list[SyncReport]:
        """Copy what changed at the source(s) into the replicas now.

        Each table's new rows and its state commit in one transaction; a source that fails is
        reported in its :class:`SyncReport` and never blocks the others.
        """
        self._check_open()
        names = [name] if name is not None else [
            s.name for s in self.catalog.sources() if s.replicated
        ]
        from meterql.sync.runner import SyncReport, sync_source

        reports = []
        with self._sync_lock:
            for source_name in names:
                source = self.catalog.source(source_name)
                if not source.replicated:
                    raise InvalidSourceError(
                        f"source '{source.name}' is in {source.mode} mode",
                        source=source.name,
                        hint=f"switch it with 'meterql source set {source.name} --mode sync'",
                    )
                try:
                    # New or changed columns at the source reach the replica with this run.
                    introspected = self._refresh_if_changed(source.name)
                except MeterqlError as exc:
                    reports.append(SyncReport(source.name, error=exc))
                    continue
                tables = [t for t in self.catalog.tables(source.name) if t.kind == "table"]
                configs = table_configs(source, tables, self.catalog.sync_configs(source.name))
                reports.append(sync_source(
                    self._engine.duck, self._connector(source.name), source, tables, configs,
                    progress, self.catalog.settings["sync_full_copy_on_schema_change"],
                ))
                if reports[-1].rows:
                    self._reattach(source.name)  # (which reads the watermarks again)
                else:
                    self._watermarks[source.name] = watermarks(self._engine.duck, source.name)
                if reports[-1].error is None:
                    self._refresh_statistics(source.name, introspected)
                self._export_snapshots(reports[-1], progress)
        return reports

    def _export_snapshots(self, report: SyncReport,
                          progress: Callable[[str, int], None] | None) -> None:
        """On the spark engine, the Parquet snapshots of the tables a sync wrote, written now
        (docs/scale-out.md), with their rows told to ``progress`` as ``TABLE (Parquet
        snapshot)``; one that cannot be is written by the first query that reads it."""
        if self.catalog.settings["engine"] != "spark":
            return
        for table in report.tables:
            if table.error is None:
                name = f"{table.table} (Parquet snapshot)"
                shown = None if progress is None else (
                    lambda rows, name=name: progress(name, rows))
                try:
                    table.snapshot = self._engine.export_snapshot(table.table, shown)
                except Exception as exc:  # (the sync is committed: it stands)
                    reason = exc.message if isinstance(exc, MeterqlError) \
                        else f"{type(exc).__name__}: {exc}"
                    table.snapshot = (f"Parquet snapshot not written ({reason}); the first "
                                      "query reading it writes it")

    def _reattach(self, name: str) -> None:
        """Attach a replica again once a sync wrote to it, when no query reads: DuckDB keeps
        the rows a connection wrote in the form it wrote them until the file is attached
        again, and reads that form more slowly (a join of a month of events with 11k customers
        after a 56M-row copy: 73 ms, 32 ms once attached again)."""
        from meterql.sync.replica import detach

        with self._engine.replicas.exclusive():
            detach(self._engine.duck, name)
            self._attach_to(self._engine.duck, name)

    def _replica_watermarks(self, name: str) -> list[ReplicaWatermark]:
        """The last committed sync of each replica table of a source."""
        self._check_open()
        self._open()  # (the replicas' watermarks are read when they are attached)
        return list(self._watermarks.get(self.catalog.source(name).name, {}).values())

    def _before_reading(self, table: str) -> dict[str, Any] | None:
        """The engine's call, once a query is planned and before it runs, for each table it
        reads from DuckDB (replicas, ``local``): the table is brought up to date
        (``LocalStore.prepare_read``: answered pushes leave the event log), then its
        watermark is returned."""
        if table.startswith("local."):
            self._local.prepare_read([table])
        return self._watermark(table)

    def _watermark(self, table: str) -> dict[str, Any] | None:
        """A table's freshness (no side effect)."""
        self._open()  # (the replicas' watermarks are read when they are attached)
        source, schema, name = table.split(".", 2)
        if source == "local":
            return self._local.watermark(table)
        if schema == STATE_SCHEMA:
            return {"table": table, "kind": "sync state"}  # always there once attached
        mark = self._watermarks.get(source, {}).get((schema, name))
        return None if mark is None else mark.describe()

    def _function_names(self) -> list[str]:
        with self._engine.duck.cursor() as cur:
            return [r[0] for r in cur.execute(
                "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type IN "
                "('scalar', 'aggregate', 'macro') ORDER BY 1").fetchall()]

    def _attach(self, name: str) -> None:
        self._attach_to(self._engine.duck, name)

    def _attach_to(self, duck: duckdb.DuckDBPyConnection, name: str) -> None:
        attach(duck, self.home, name)
        self._watermarks[name] = watermarks(duck, name)

    def _detach(self, name: str, delete: bool) -> None:
        self._watermarks.pop(name, None)
        detach(self._engine.duck, name, replica_path(self.home, name) if delete else None)

    def _test_source(self, name: str) -> str:
        """Connect to a source and return what it says it is."""
        self._check_open()
        return self._connector(self.catalog.source(name).name).server_version()

    def _load_csv(self, data: bytes | str | Path, table: str, *, mode: str = "append",
                 key: list[str] | None = None, keep_good: bool = False,
                 columns: dict[str, str] | None = None,
                 round_decimals: bool = False) -> UploadReport:
        """Load a CSV file (a path, or its bytes) into ``local.uploads.<table>``: all rows or
        none (``keep_good`` loads the good ones); ``mode`` append, replace or upsert by
        ``key``; the same file loaded twice is not added twice. A number with more decimal
        places than its column keeps is a rejected row unless ``round_decimals``."""
        self._check_open()
        origin = "upload"
        if isinstance(data, (str, Path)):
            origin = str(data)
            try:
                data = Path(data).read_bytes()
            except OSError as exc:
                raise ParameterError(f"cannot read {origin}: {exc.strerror}") from None
        from meterql.local.uploads import load_csv

        return load_csv(self._local, data, table, mode=mode, key=key,  # type: ignore[arg-type]
                        keep_good=keep_good, columns=columns, origin=origin,
                        round_decimals=round_decimals)

    def _preview_csv(self, data: bytes, table: str, *, mode: str = "append",
                     columns: dict[str, str] | None = None,
                     round_decimals: bool = False) -> dict[str, Any]:
        """What ``_load_csv`` would read from ``data``, stored nowhere (see
        ``meterql.local.uploads.preview_csv``)."""
        self._check_open()
        from meterql.local.uploads import preview_csv

        return preview_csv(self._local, data, table, mode=mode,  # type: ignore[arg-type]
                           columns=columns, round_decimals=round_decimals)

    # -- settings -------------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        """Every setting with the value in force (see ``meterql settings``)."""
        self._check_open()
        return dict(self.catalog.settings)

    def _set_setting(self, name: str, value: Any) -> Any:
        """Change a setting for this workspace (``None`` restores the default).

        Example:
            >>> ws.settings.set("dynamic_filter", False)  # doctest: +SKIP
        """
        self._check_open()
        return self.catalog.set_setting(name, value)

    # -- tables --------------------------------------------------------------------------------
    def _tables(self, source: str | None = None) -> list[Table]:
        self._check_open()
        if source is None or self.catalog.source(source).name == "local":
            self._open()  # the local tables are known once the local store is open
        return self.catalog.tables(source)

    def _table(self, name: str) -> Table:
        """Resolve a table name (full, two-part or bare) to its catalog entry."""
        self._check_open()
        self._open()  # (a bare name may be a local table's)
        return self.catalog.table(name)

    # -- queries -------------------------------------------------------------------------------
    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        dialect: str = "duckdb",
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        max_rows: int | None = DEFAULT_MAX_ROWS,
        on_row_limit: Literal["truncate", "error"] = "truncate",
        tz: str | None = None,
        max_staleness: float | str | None = None,
    ) -> Result:
        """Run a SELECT over the registered sources.

        Args:
            sql: one SELECT / WITH / EXPLAIN statement; tables as ``source.schema.table``.
            params: values for named parameters (``:name`` or ``$name``); always bound.
            dialect: the SQL dialect the query is written in.
            timeout: seconds before the query is stopped (``QueryTimeoutError``).
            max_rows: the row cap; past it the result is cut and ``truncated`` set, or
                ``RowLimitError`` raised when ``on_row_limit="error"``.
            tz: the session's time zone (IANA name, e.g. ``Europe/Berlin``; UTC when
                ``None``): TIMESTAMPTZ values are shown in it, and a query that reads no table
                (``SELECT now()``, ``SELECT current_date``) evaluates in it. A
                ``SET TimeZone = 'zone'`` statement runs nothing; its ``Result.time_zone``
                is the zone to pass as ``tz`` from then on.
            max_staleness: the freshness bound for sources in ``auto`` mode: seconds or a
                duration (``"5m"``; ``0`` is live) or ``"none"`` (a replica of any age);
                ``None`` takes the workspace setting ``max_staleness``. A table is read from
                its replica when synced within the bound, else from the source;
                ``Result.watermarks`` carries each table's route.

        Example:
            >>> ws.query("SELECT count(*) AS n FROM pg.public.events WHERE customer_id = :c",
            ...          {"c": 42}).to_pylist()  # doctest: +SKIP
            [{'n': 17}]
        """
        self._check_open()
        _check_params_mapping(params)
        return self._engine.run(
            sql, params, dialect, timeout=timeout, max_rows=max_rows, on_row_limit=on_row_limit,
            tz=tz, max_staleness=max_staleness,
        )

    def submit(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        dialect: str = "duckdb",
        *,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        max_rows: int | None = DEFAULT_MAX_ROWS,
        on_row_limit: Literal["truncate", "error"] = "truncate",
        tz: str | None = None,
        max_staleness: float | str | None = None,
    ) -> RunningQuery:
        """Start a query in the background; the returned handle can cancel it (arguments as
        :meth:`query`'s)."""
        self._check_open()
        if tz is not None:
            from meterql.engine.time_zone import check_time_zone

            check_time_zone(tz)  # a wrong name fails here, not in the handle
        _check_params_mapping(params)
        self._engine.bound(max_staleness)  # a wrong bound fails here, not in the handle
        from meterql.engine import QueryControl

        control = QueryControl(timeout)
        running = RunningQuery(control)

        def work() -> None:
            try:
                result = self._engine.run(
                    sql,
                    params,
                    dialect,
                    timeout=timeout,
                    max_rows=max_rows,
                    on_row_limit=on_row_limit,
                    control=control,
                    tz=tz,
                    max_staleness=max_staleness,
                )
            except BaseException as exc:
                running._future.set_exception(exc)
            else:
                running._future.set_result(result)

        self._query_threads.run(work)
        return running

    def explain(self, sql: str, dialect: str = "duckdb",
                max_staleness: float | str | None = None) -> Plan:
        """The plan of a query: each fragment with its source and SQL, the residual, and the
        route of each table of an ``auto`` source under ``max_staleness`` (as :meth:`query`'s).
        """
        self._check_open()
        plan, _, _ = self._engine.plan(sql, dialect, max_staleness)
        return plan


def _check_params_mapping(params: object) -> None:
    """Parameters are named: a list or tuple would bind by position, which meterql refuses."""
    if params is not None and not isinstance(params, Mapping):
        raise ParameterError(
            f"parameters must be passed by name as a mapping, not as a {type(params).__name__}",
            hint="write :name in the SQL and pass params={'name': value}",
        )


def _holds_data(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _shape(tables: list[Table]) -> set[tuple]:
    return {(t.schema, t.name, t.kind, t.columns) for t in tables}


def _normalise_uri(kind: str, uri: str) -> str:
    """File sources are stored with an absolute path, so the workspace works from any folder."""
    if dialect_for(kind).file_uri:
        path = Path(file_path(uri)).expanduser()
        if not file_exists(path):
            raise InvalidSourceError(
                f"{kind} file {path} does not exist", hint="check the path in the URI"
            )
        scheme = parse_uri(uri).scheme
        return f"{scheme}://{path.resolve()}"
    return uri


__all__ = ["DEFAULT_HOME", "RunningQuery", "Workspace", "connect", "default_home", "MeterqlError"]
