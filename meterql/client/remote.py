"""A workspace reached through a server: the same calls as :class:`meterql.Workspace`
(``query``, ``submit``, ``explain``, ``sources``, ``tables``, ``sync``, ``settings``, ``keys``,
``aggregates``, ``events``, ``uploads``, ``manual``), each one request to the HTTP API, answering
the same objects (a query's rows as Arrow, read from an Arrow IPC stream as it arrives) and
raising the same errors.

It is what the CLI and the REPL use beside a running ``meterql serve`` (through its owner's
socket) or with ``--server URL`` (a Bearer key), and what ``meterql.connect("https://...",
key=...)`` answers to a billing engine.
"""

from __future__ import annotations

import builtins
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from meterql import exact_json
from meterql.aggregates.definition import Aggregate, one_version
from meterql.aggregates.evaluate import Evaluation
from meterql.catalog import Column, ColumnStats, IndexInfo, Source, Table, TableStats
from meterql.catalog.settings import setting
from meterql.client.transport import DEFAULT_TIMEOUT_S, Transport, error_of
from meterql.engine.pending import PendingResult
from meterql.engine.result import Result
from meterql.engine.time_zone import check_time_zone
from meterql.errors import (
    InvalidSettingError,
    MeterqlError,
    ParameterError,
)
from meterql.local.events.outcomes import Outcome
from meterql.local.events.schemas import StreamConfig
from meterql.local.uploads import UploadReport
from meterql.sync.replica import ReplicaWatermark
from meterql.sync.runner import SyncReport, TableSyncReport
from meterql.sync.schedule import SyncAttempt

ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: A query's own limits, as the in-process defaults (the server may hold lower ones).
DEFAULT_QUERY_TIMEOUT_S = 300.0
DEFAULT_MAX_ROWS = 1_000_000


class Client:
    """A workspace behind a server. Close it (or use ``with``) to drop its connections.

    Example:
        >>> with meterql.connect("https://meterql.internal:8080", key=KEY) as ws:  # doctest: +SKIP
        ...     ws.query("SELECT count(*) AS n FROM pg.public.events").to_pylist()
        [{'n': 1000}]
    """

    def __init__(self, transport: Transport, home: Path | None = None) -> None:
        self.transport = transport
        #: the workspace folder when the server is local (the owner's socket), else None
        self.home = home
        self.sources = RemoteSources(self)
        self.tables = RemoteTables(self)
        self.sync = RemoteSync(self)
        self.settings = RemoteSettings(self)
        self.keys = RemoteKeys(self)
        self.aggregates = RemoteAggregates(self)
        self.events = RemoteEvents(self)
        self.uploads = RemoteUploads(self)
        self.manual = RemoteManual(self)

    def __repr__(self) -> str:
        return f"Client({self.transport.described!r})"

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries -------------------------------------------------------------------------------
    def query(self, sql: str, params: Mapping[str, Any] | None = None,
              dialect: str = "duckdb", *, timeout: float | None = DEFAULT_QUERY_TIMEOUT_S,
              max_rows: int | None = DEFAULT_MAX_ROWS, tz: str | None = None,
              max_staleness: float | str | None = None) -> Result:
        """Run a SELECT on the server; the rows arrive as Arrow. Ctrl-C (KeyboardInterrupt)
        cancels it at the server and its sources. ``tz``: the session's time zone, and
        ``max_staleness``: the freshness bound for auto sources, as in ``Workspace.query``."""
        running = self.submit(sql, params, dialect, timeout=timeout, max_rows=max_rows, tz=tz,
                              max_staleness=max_staleness)
        try:
            return running.result()
        except KeyboardInterrupt:
            running.cancel()
            raise

    def submit(self, sql: str, params: Mapping[str, Any] | None = None,
               dialect: str = "duckdb", *, timeout: float | None = DEFAULT_QUERY_TIMEOUT_S,
               max_rows: int | None = DEFAULT_MAX_ROWS, tz: str | None = None,
               max_staleness: float | str | None = None) -> RemoteQuery:
        """Start a query; the handle's ``cancel()`` stops it at the server and its sources."""
        if params is not None and not isinstance(params, Mapping):
            raise ParameterError(
                f"parameters must be passed by name as a mapping, not as a "
                f"{type(params).__name__}",
                hint="write :name in the SQL and pass params={'name': value}")
        body = {"sql": sql,
                "params": {k: exact_json.param_json(v) for k, v in (params or {}).items()},
                "dialect": dialect, "timeout_s": timeout, "max_rows": max_rows}
        if tz is not None:
            body["time_zone"] = check_time_zone(tz)
        if max_staleness is not None:
            body["max_staleness"] = max_staleness
        return RemoteQuery(self.transport, body, sql, timeout)

    def explain(self, sql: str, dialect: str = "duckdb",
                max_staleness: float | str | None = None) -> RemotePlan:
        """The plan of a query, as the server would run it (``str()`` is its EXPLAIN)."""
        body: dict[str, Any] = {"sql": sql, "dialect": dialect}
        if max_staleness is not None:
            body["max_staleness"] = max_staleness
        try:
            answer = self.transport.json("POST", "/v1/explain", json=body)
        except MeterqlError as exc:
            raise _with_sql(exc, sql) from None
        return RemotePlan(answer["plan"], tuple(answer.get("params") or ()))

    def status(self) -> dict[str, Any]:
        """The server's ``GET /v1/status`` document."""
        answer: dict[str, Any] = self.transport.json("GET", "/v1/status")
        return answer


@dataclass(frozen=True)
class RemotePlan:
    """A plan as the server explains it: its text, and the names of its parameters."""

    text: str
    params: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.text


class RemoteQuery(PendingResult):
    """A query running on the server: ``result()`` waits for it, ``cancel()`` stops it."""

    def __init__(self, transport: Transport, body: dict[str, Any], sql: str,
                 timeout: float | None) -> None:
        super().__init__()
        self._transport = transport
        self.id = uuid.uuid4().hex
        self._sql = sql
        wait = None if timeout is None else timeout + DEFAULT_TIMEOUT_S
        threading.Thread(target=self._run, args=(body, wait), daemon=True,
                         name="meterql-remote-query").start()

    def _run(self, body: dict[str, Any], wait: float | None) -> None:
        started = time.perf_counter()
        try:
            headers = {"Accept": ARROW_STREAM, "X-Meterql-Query-Id": self.id}
            with self._transport.stream("POST", "/v1/query", json=body, headers=headers,
                                        timeout=wait) as response:
                # (buffered: Arrow asks for whole messages, a raw read returns one chunk)
                table = pa.ipc.open_stream(io.BufferedReader(_Body(response.iter_bytes()))
                                           ).read_all()
                result = Result(
                    table, plan=None,
                    truncated=response.headers.get("X-Meterql-Truncated") == "true",
                    seconds=time.perf_counter() - started,
                    watermarks=json.loads(response.headers.get("X-Meterql-Watermarks", "[]")),
                    warnings=json.loads(response.headers.get("X-Meterql-Warnings", "[]")))
        except MeterqlError as exc:
            self._future.set_exception(_with_sql(exc, self._sql))
        except BaseException as exc:
            self._future.set_exception(exc)
        else:
            self._future.set_result(result)

    def cancel(self) -> None:
        """Stop the query at the server, its sources and DuckDB; ``result()`` then raises
        ``QueryCancelledError``."""
        if self._future.done():
            return
        try:
            self._transport.request("POST", f"/v1/queries/{self.id}/cancel", ok=(404,))
        except MeterqlError:
            pass  # (the server is gone: nothing runs there any more)



class _Body(io.RawIOBase):
    """An HTTP body as a file, read as it arrives (for Arrow's stream reader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _with_sql(exc: MeterqlError, sql: str) -> MeterqlError:
    """The error with the SQL it is about, so a position shows with a caret."""
    if exc.sql is None and exc.line is not None:
        exc.sql = sql
    return exc


# -- the catalog -----------------------------------------------------------------------------
def source_of(doc: dict[str, Any]) -> Source:
    """A source as the server shows it (its URI with a written password as ***)."""
    return Source(doc["name"], doc["kind"], doc["uri"], doc["mode"], dict(doc["options"]))


def table_of(doc: dict[str, Any]) -> Table:
    """A table as ``GET /v1/tables/{name}`` shows it."""
    return Table(doc["source"], doc["schema"], doc["table"],
                 tuple(Column(c["name"], c["type"], c["source_type"], c["nullable"])
                       for c in doc["columns"]),
                 doc["kind"], doc.get("rows"), tuple(doc.get("primary_key") or ()))


class RemoteSources:
    """``ws.sources`` through the server (``meterql.namespaces.Sources``)."""

    def __init__(self, client: Client) -> None:
        self._t = client.transport

    def __call__(self) -> list[Source]:
        return [source_of(d) for d in self._t.json("GET", "/v1/sources")]

    def list(self) -> builtins.list[Source]:
        return self()

    def get(self, name: str) -> Source:
        return source_of(self._t.json("GET", f"/v1/sources/{_quote(name)}"))

    def add(self, name: str, uri: str, mode: str = "direct",
            options: Mapping[str, Any] | None = None) -> Source:
        return source_of(self._t.json("POST", "/v1/sources", json={
            "name": name, "uri": uri, "mode": mode, "options": dict(options or {})}))

    def remove(self, name: str) -> Source:
        source = self.get(name)
        self._t.json("DELETE", f"/v1/sources/{_quote(name)}")
        return source

    def refresh(self, name: str) -> builtins.list[Table]:
        self._t.json("POST", f"/v1/sources/{_quote(name)}/refresh")
        return [table_of(d) for d in self._t.json("GET", "/v1/tables",
                                                  params={"source": name, "detail": "true"})]

    def calibrate(self, name: str) -> dict[str, float]:
        constants: dict[str, float] = self._t.json(
            "POST", f"/v1/sources/{_quote(name)}/calibrate")["constants"]
        return constants

    def set_mode(self, name: str, mode: str) -> Source:
        return source_of(self._t.json("PATCH", f"/v1/sources/{_quote(name)}",
                                      json={"mode": mode}))

    def set_options(self, name: str, options: Mapping[str, Any]) -> Source:
        return source_of(self._t.json("PATCH", f"/v1/sources/{_quote(name)}",
                                      json={"options": dict(options)}))

    def test(self, name: str) -> str:
        version: str = self._t.json("POST", f"/v1/sources/{_quote(name)}/test")["version"]
        return version


class RemoteTables:
    """``ws.tables`` through the server (``meterql.namespaces.Tables``)."""

    def __init__(self, client: Client) -> None:
        self._t = client.transport

    def __call__(self, source: str | None = None) -> list[Table]:
        params = {"detail": "true", **({"source": source} if source is not None else {})}
        return [table_of(d) for d in self._t.json("GET", "/v1/tables", params=params)]

    def get(self, name: str) -> Table:
        return table_of(self._describe(name))

    def freshness(self, name: str) -> dict[str, Any] | None:
        freshness: dict[str, Any] | None = self._describe(name).get("freshness")
        return freshness

    def statistics(self, name: str) -> TableStats | None:
        """Rows, indexes, distinct counts and null fractions (the server keeps the values of
        bounds and histograms)."""
        described = self._describe(name)
        doc = described.get("statistics")
        if doc is None:
            return None
        return TableStats(
            table_of(described).full_name, doc["rows"],
            {c["name"].lower(): ColumnStats(c["name"], c["distinct"], c["null_frac"])
             for c in doc["columns"]},
            tuple(IndexInfo(i["name"], tuple(i["columns"]), i["unique"])
                  for i in doc["indexes"]), doc["read_at"])

    def functions(self) -> list[str]:
        names: list[str] = self._t.json("GET", "/v1/functions")
        return names

    def _describe(self, name: str) -> dict[str, Any]:
        doc: dict[str, Any] = self._t.json("GET", f"/v1/tables/{_quote(name)}",
                                           params={"sample": 0})
        return doc


class RemoteSync:
    """``ws.sync`` through the server (``meterql.namespaces.Sync``)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._t = client.transport

    def __call__(self, name: str | None = None,
                 progress: Callable[[str, int], None] | None = None) -> list[SyncReport]:
        return self.run(name, progress)

    def run(self, name: str | None = None,
            progress: Callable[[str, int], None] | None = None) -> list[SyncReport]:
        """Sync one source (or every source in sync mode) now, with the server's schedule's
        retries; ``progress(table, rows)`` is called as the server reports it."""
        return self.run_due(None if name is None else [name],
                            progress=lambda source, table, rows: progress(table, rows)
                            if progress is not None else None)

    def run_due(self, names: builtins.list[str] | None = None, *,
                progress: Callable[[str, str, int], None] | None = None,
                notify: Callable[[SyncAttempt], None] | None = None
                ) -> builtins.list[SyncReport]:
        """Sync these sources (default: every source in sync mode) now, as
        :meth:`meterql.sync.schedule.SyncSchedule.run_due` does in-process:
        ``progress(source, table, rows)`` as rows arrive, ``notify(attempt)`` for each attempt
        tried again and each source's last report."""
        reports: builtins.list[SyncReport] = []
        with self._t.stream("POST", "/v1/sync", json={"sources": names},
                            headers={"Accept": "application/x-ndjson"}, timeout=None) as answer:
            for line in answer.iter_lines():
                event = json.loads(line) if line.strip() else {}
                kind = event.get("event")
                if kind == "progress" and progress is not None:
                    progress(event["source"], event["table"], event["rows"])
                elif kind == "retry" and notify is not None:
                    notify(SyncAttempt(SyncReport(event["source"],
                                                  error=error_of(event["error"])),
                                       event["attempt"], event["retry_in_s"], None))
                elif kind == "error":
                    raise error_of(event)
                elif kind == "done":
                    reports = [report_of(r) for r in event["reports"]]
        for report in reports:
            if notify is not None:
                notify(SyncAttempt(report, 1, None, None))
        return reports

    def watermarks(self, name: str) -> list[ReplicaWatermark]:
        doc = self._t.json("GET", f"/v1/sources/{_quote(name)}")
        return [ReplicaWatermark(w["table"], w["strategy"], datetime.fromisoformat(w["synced_at"]),
                                 w["rows"], w.get("cursor_column"), w.get("cursor"))
                for w in doc["watermarks"]]

    def set_strategy(self, table: str, strategy: str, cursor: str | None = None,
                     lag: int = 0, soft_delete: str | None = None,
                     cluster_by: Sequence[str] | None = None) -> None:
        self._t.json("PUT", f"/v1/tables/{_quote(table)}/sync", json={
            "strategy": strategy, "cursor": cursor, "lag": lag, "soft_delete": soft_delete,
            "cluster_by": list(cluster_by) if cluster_by else None})


def report_of(doc: dict[str, Any]) -> SyncReport:
    """A sync report as the server answers it."""
    error = doc.get("error")
    return SyncReport(
        doc["source"],
        [TableSyncReport(t["table"], t["strategy"], t["rows"], t["seconds"], None, t.get("note"),
                         t.get("changes"), t.get("read"),
                         None if t.get("error") is None else error_of(t["error"]),
                         t.get("snapshot"))
         for t in doc["tables"]],
        doc.get("seconds", 0.0),
        None if error is None else error_of(error))


class RemoteSettings:
    """``ws.settings`` through the server (``meterql.namespaces.Settings``)."""

    def __init__(self, client: Client) -> None:
        self._t = client.transport

    def __call__(self) -> dict[str, Any]:
        return {entry["name"]: entry["value"] for entry in self.describe()}

    def get(self, name: str) -> Any:
        for entry in self.describe():
            if entry["name"] == name:
                return entry["value"]
        setting(name)  # (an unknown name: InvalidSettingError with "did you mean")
        raise InvalidSettingError(f"the server has no setting named '{name}'",
                                  hint="it runs another version of meterql")

    def set(self, name: str, value: Any) -> Any:
        return self._t.json("PUT", f"/v1/settings/{_quote(name)}", json={"value": value})["value"]

    def describe(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self._t.json("GET", "/v1/settings")
        return entries


class RemoteKeys:
    """``ws.keys`` through the server (``meterql.access.keys.KeyStore``)."""

    def __init__(self, client: Client) -> None:
        self._t = client.transport

    def create(self, scope: str, name: str | None = None) -> tuple[str, str]:
        """A new key: (its id, the key), shown only now."""
        doc = self._t.json("POST", "/v1/keys", json={"scope": scope, "name": name})
        return doc["id"], doc["key"]

    def list(self) -> list[dict[str, Any]]:
        return [{**k, "created_at": _instant(k.get("created_at")),
                 "revoked_at": _instant(k.get("revoked_at"))}
                for k in self._t.json("GET", "/v1/keys")]

    def revoke(self, key_id: str) -> bool:
        """Revoke an active key; False if there is no active key with that id."""
        active = [k for k in self.list() if k["id"] == key_id and k["revoked_at"] is None]
        if not active:
            return False
        self._t.request("DELETE", f"/v1/keys/{_quote(key_id)}")
        return True


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _quote(name: str) -> str:
    """A name as one URL path segment."""
    from urllib.parse import quote

    return quote(name, safe="")


class RemoteAggregates:
    """``ws.aggregates`` through the server (``meterql.aggregates.AggregateBook``)."""

    def __init__(self, client: Client) -> None:
        self._t = client.transport

    def list(self) -> builtins.list[Aggregate]:
        return [aggregate_of(d) for d in self._t.json("GET", "/v1/aggregates")]

    def versions(self, name: str) -> builtins.list[Aggregate]:
        return [aggregate_of(d) for d in self._t.json("GET", f"/v1/aggregates/{_quote(name)}")]

    def get(self, name: str, version: int | None = None) -> Aggregate:
        return one_version(name, self.versions(name), version)

    def apply(self, folder: str | Path) -> builtins.list[tuple[Aggregate, bool]]:
        """Send every ``FOLDER/*.sql`` definition; the server saves them all or none."""
        files = [{"origin": str(p), "text": p.read_text()}
                 for p in sorted(Path(folder).glob("*.sql"))]
        answer = self._t.json("POST", "/v1/aggregates/apply", json={"definitions": files})
        return [(aggregate_of(d), bool(d["new"])) for d in answer]

    def evaluate(self, name: str, start: date | datetime, end: date | datetime, *,
                 customers: Sequence[str] | None = None, tz: str = "UTC",
                 window: str | None = None, version: int | None = None,
                 max_staleness: float | str | None = None) -> Evaluation:
        """Billable usage per customer for a period, logged by the server with its
        provenance; the rows keep their exact types (Arrow). ``max_staleness``: as
        ``AggregateBook.evaluate``'s."""
        table, about = self._arrow(f"/v1/aggregates/{_quote(name)}/evaluate", {
            **_period(start, end, customers, tz, window, max_staleness), "version": version})
        return evaluation_of(table, about)

    def dry_run(self, draft: Aggregate, start: date | datetime, end: date | datetime, *,
                customers: Sequence[str] | None = None, tz: str = "UTC",
                window: str | None = None,
                max_staleness: float | str | None = None) -> dict[str, Any]:
        """Evaluate ``draft`` without saving it: ``{"current_version", "diff", "draft"}``."""
        table, about = self._arrow(f"/v1/aggregates/{_quote(draft.name)}/dry-run", {
            **_period(start, end, customers, tz, window, max_staleness), "sql": draft.sql,
            "description": draft.description, "unit": draft.unit, "dialect": draft.dialect,
            "customer_column": draft.customer_column, "freshness": draft.freshness})
        return {"current_version": about["current_version"], "diff": about["diff"],
                "draft": evaluation_of(table, about)}

    def log(self, name: str | None = None, limit: int = 100) -> builtins.list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, **({"aggregate": name} if name else {})}
        entries: builtins.list[dict[str, Any]] = self._t.json("GET", "/v1/evaluations",
                                                              params=params)
        return entries

    def _arrow(self, path: str, body: dict[str, Any]) -> tuple[pa.Table, dict[str, Any]]:
        response = self._t.request("POST", path, json=body, timeout=None,
                                   headers={"Accept": ARROW_STREAM})
        table = pa.ipc.open_stream(response.content).read_all()
        about = json.loads((table.schema.metadata or {}).get(b"meterql", b"{}"))
        rest = {k: v for k, v in (table.schema.metadata or {}).items() if k != b"meterql"}
        return table.replace_schema_metadata(rest or None), about


def _period(start: date | datetime, end: date | datetime, customers: Sequence[str] | None,
            tz: str, window: str | None, max_staleness: float | str | None) -> dict[str, Any]:
    return {"from": start.isoformat(), "to": end.isoformat(),
            "customers": None if customers is None else [str(c) for c in customers],
            "tz": tz, "window": window,
            **({} if max_staleness is None else {"max_staleness": max_staleness})}


def aggregate_of(doc: dict[str, Any]) -> Aggregate:
    """An aggregate version as the server describes it."""
    return Aggregate(doc["name"], doc["sql"], doc.get("description"), doc.get("unit"),
                     doc.get("dialect", "duckdb"), doc.get("customer_column", "customer_id"),
                     doc.get("version"), _instant(doc.get("created_at")),
                     freshness=doc.get("freshness"))


def evaluation_of(table: pa.Table, about: dict[str, Any]) -> Evaluation:
    ev = about["evaluation"]
    return Evaluation(ev["id"], aggregate_of(about["aggregate"]), table, ev["provenance"],
                      ev["result_hash"], ev["seconds"])


class RemoteEvents:
    """``ws.events`` through the server (``meterql.local.events.EventStreams``)."""

    def __init__(self, client: Client) -> None:
        self._t = client.transport

    def create_stream(self, name: str, *, id_field: str = "id",
                      timestamp_field: str = "timestamp", customer_field: str = "customer_id",
                      schema: dict[str, str] | None = None) -> StreamConfig:
        doc = self._t.json("PUT", f"/v1/events/{_quote(name)}", json={
            "id_field": id_field, "timestamp_field": timestamp_field,
            "customer_field": customer_field, "columns": schema})
        return StreamConfig(doc["stream"], doc["id_field"], doc["timestamp_field"],
                            doc["customer_field"], doc["declared"], doc["columns"])

    def ingest_body(self, stream: str, data: bytes, content_type: str, *,
                    backfill: str | None = None) -> builtins.list[Outcome]:
        """Events in a request body (JSON, NDJSON): each one's outcome."""
        response = self._t.request(
            "POST", f"/v1/events/{_quote(stream)}", content=data,
            headers={"Content-Type": content_type},
            params={"backfill": backfill} if backfill else None, ok=(422,))
        answer = response.json()
        if response.status_code == 422 and answer.get("title") != "EventsRejected":
            raise error_of(answer)
        return [Outcome(r["index"], r.get("id"), r["status"], r.get("reason"))
                for r in answer["results"]]

    def amend(self, stream: str, event_id: str, event: dict[str, Any]) -> Outcome:
        doc = self._t.json("POST", f"/v1/events/{_quote(stream)}/{_quote(event_id)}/amend",
                           content=exact_json.dumps(event).encode(),
                           headers={"Content-Type": "application/json"})
        return Outcome(doc.get("index", 0), doc.get("id"), doc["status"], doc.get("reason"))

    def void(self, stream: str, event_id: str) -> Outcome:
        doc = self._t.json("POST", f"/v1/events/{_quote(stream)}/{_quote(event_id)}/void")
        return Outcome(doc.get("index", 0), doc.get("id"), doc["status"], doc.get("reason"))

    def open_backfill(self, stream: str, start: datetime, end: datetime) -> str:
        doc = self._t.json("POST", f"/v1/events/{_quote(stream)}/backfills",
                           json={"start": start.isoformat(), "end": end.isoformat()})
        backfill: str = doc["id"]
        return backfill

    def close_backfill(self, backfill: str) -> dict[str, Any]:
        return self._backfill("POST", f"{_quote(backfill)}/close")

    def revert_backfill(self, backfill: str) -> dict[str, Any]:
        return self._backfill("POST", f"{_quote(backfill)}/revert")

    def backfill(self, backfill: str) -> dict[str, Any]:
        return self._backfill("GET", _quote(backfill))

    def _backfill(self, method: str, path: str) -> dict[str, Any]:
        doc: dict[str, Any] = self._t.json(method, f"/v1/backfills/{path}")
        return doc


class RemoteUploads:
    """``ws.uploads`` through the server (``meterql.namespaces.Uploads``)."""

    def __init__(self, client: Client) -> None:
        self._t = client.transport

    def load(self, data: bytes | str | Path, table: str, *, mode: str = "append",
             key: list[str] | None = None, keep_good: bool = False,
             columns: dict[str, str] | None = None,
             round_decimals: bool = False) -> UploadReport:
        """Send a CSV file (a path or its bytes): all rows or none unless ``keep_good``."""
        content = data if isinstance(data, bytes) else Path(data).read_bytes()
        params: dict[str, Any] = {"mode": mode, "keep_good": keep_good, "round": round_decimals,
                                  "key": key or [],
                                  "column": [f"{n}:{t}" for n, t in (columns or {}).items()]}
        doc = self._t.json("POST", f"/v1/tables/{_quote(table)}/upload", params=params,
                           files={"file": ("upload.csv", content, "text/csv")}, timeout=None)
        return UploadReport(doc["table"], doc["mode"], doc["status"], doc["rows"],
                            doc["rejected"], doc.get("note"))


class RemoteManual:
    """``ws.manual`` through the server (``meterql.local.manual.ManualTables``); changes are
    audited under the key's id (the owner's socket: ``owner``)."""

    def __init__(self, client: Client) -> None:
        self._t = client.transport

    def create(self, name: str, columns: dict[str, str], key: builtins.list[str],
               actor: str | None = None) -> str:
        doc = self._t.json("POST", "/v1/manual", json={"name": name, "columns": columns,
                                                       "key": key})
        created: str = doc["table"]
        return created

    def insert(self, table: str, values: dict[str, Any], actor: str | None = None, *,
               round_decimals: bool = False) -> dict[str, Any]:
        return self._row("POST", table, {"values": values}, round_decimals)

    def update(self, table: str, key: dict[str, Any], changes: dict[str, Any],
               actor: str | None = None, *, round_decimals: bool = False) -> dict[str, Any]:
        return self._row("PATCH", table, {"key": key, "values": changes}, round_decimals)

    def delete(self, table: str, key: dict[str, Any], actor: str | None = None) -> None:
        self._t.request("DELETE", f"/v1/tables/{_quote(table)}/rows",
                        content=exact_json.dumps({"key": key}).encode(),
                        headers={"Content-Type": "application/json"})

    def audit(self, table: str | None = None) -> builtins.list[dict[str, Any]]:
        entries = self._t.json("GET", "/v1/audit",
                               params={"table": table} if table else None)
        return [{**e, "changed_at": _instant(e["changed_at"])} for e in entries]

    def _row(self, method: str, table: str, body: dict[str, Any],
             round_decimals: bool) -> dict[str, Any]:
        row: dict[str, Any] = self._t.json(
            method, f"/v1/tables/{_quote(table)}/rows", params={"round": round_decimals},
            content=exact_json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        return row
