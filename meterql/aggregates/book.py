"""The workspace's aggregates: ``ws.aggregates.save(...)``, ``.evaluate(...)``, ``.dry_run(...)``.

Example:
    >>> ws.aggregates.save("api_calls", '''
    ...     SELECT customer_id, count(*) AS quantity FROM pg.public.events
    ...     WHERE ts >= :period_start AND ts < :period_end GROUP BY customer_id''', unit="call")
    ... # doctest: +SKIP
    >>> ev = ws.aggregates.evaluate("api_calls", date(2026, 10, 1), date(2026, 11, 1),
    ...                             tz="Europe/Berlin")  # doctest: +SKIP
"""

from __future__ import annotations

import builtins  # (the class's method list hides the type in its annotations)
import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from meterql.aggregates.definition import (
    Aggregate,
    new_aggregate,
    one_version,
    parse_definition,
    sql_line,
)
from meterql.aggregates.evaluate import Cancel, Evaluation, Window, diff, evaluate, validate
from meterql.aggregates.store import AggregateStore
from meterql.catalog import Catalog
from meterql.engine import DEFAULT_TIMEOUT_S, Engine, Result
from meterql.errors import InvalidAggregateError, QueryCancelledError, UnknownAggregateError
from meterql.wording import format_duration

#: An aggregate returns one row per customer, window and dimension; this caps a runaway one.
MAX_AGGREGATE_ROWS = 10_000_000


class AggregateBook:
    """``ws.aggregates``. It needs of the workspace only what it is given: the engine (to
    validate a definition without data), the catalog (to describe the sources read), and the
    workspace's ``query`` and ``submit`` (so evaluations run as every query does)."""

    def __init__(self, store: AggregateStore, engine: Engine, catalog: Catalog,
                 query: Callable[..., Result], submit: Callable[..., Any]) -> None:
        self._store = store
        self._engine, self._catalog = engine, catalog
        self._query, self._submit = query, submit

    # -- definitions ---------------------------------------------------------------------------
    def save(self, name: str, sql: str, **fields: Any) -> tuple[Aggregate, bool]:
        """Validate and store a definition as the aggregate's next version (versions are
        immutable). Saving the same definition again creates nothing. Returns the version in
        force and whether it is new."""
        return self.save_draft(new_aggregate(name, sql, **fields))

    def save_draft(self, draft: Aggregate) -> tuple[Aggregate, bool]:
        validate(self._engine, draft)
        return self._store.save(draft)

    def apply(self, folder: str | Path) -> list[tuple[Aggregate, bool]]:
        """Load every ``*.sql`` file of a folder (see :mod:`meterql.aggregates.definition`)
        with :meth:`apply_definitions`: all are validated first and none is saved unless all
        are valid."""
        path = Path(folder)
        if not path.is_dir():
            raise InvalidAggregateError(f"{path} is not a folder",
                                        hint="give the folder holding the .sql files")
        files = sorted(path.glob("*.sql"))
        if not files:
            raise InvalidAggregateError(f"{path} holds no .sql files",
                                        hint="write one aggregate per .sql file")
        return self.apply_definitions([(str(file), file.read_text()) for file in files])

    def apply_definitions(self, definitions: Iterable[tuple[str, str]]
                          ) -> builtins.list[tuple[Aggregate, bool]]:
        r"""Validate a set of definitions, each ``(origin, text)``: a file's name and its text
        (a header, then the SQL), and save each one that changed as a new version. All are
        validated first and none is saved unless all are valid; an error names the origin,
        and its line is the line in that text. Returns each version in force (in the order
        given) and whether it is new.

        Example::

            ws.aggregates.apply_definitions([("calls.sql", "-- name: calls\nSELECT ...")])
        """
        drafts: dict[str, tuple[str, Aggregate]] = {}
        for origin, text in definitions:
            draft = self.check_definition(origin, text)
            if draft.name in drafts:
                raise InvalidAggregateError(
                    f"{origin} and {drafts[draft.name][0]} both define '{draft.name}'",
                    hint="give each aggregate its own name")
            drafts[draft.name] = (origin, draft)
        if not drafts:
            raise InvalidAggregateError("no aggregate definitions were given",
                                        hint="give one definition per aggregate")
        return [self._store.save(draft) for _, draft in drafts.values()]

    def check_definition(self, origin: str, text: str) -> Aggregate:
        """The draft of one definition's text (a header, then the SQL), validated as
        :meth:`apply_definitions` validates each, without saving it: an error names the origin,
        and its line is the line in ``text``."""
        draft = parse_definition(text, origin=origin)
        try:
            validate(self._engine, draft)
        except InvalidAggregateError as exc:
            exc.message = f"{origin}: {exc.message}"
            if exc.line is not None and exc.sql == draft.sql:  # (a line of the SQL)
                exc.line += sql_line(text) - 1
                exc.sql = text
            raise
        return draft

    def list(self) -> list[Aggregate]:
        """The latest version of every aggregate."""
        latest: dict[str, Aggregate] = {}
        for aggregate in self._store.versions():
            latest[aggregate.name] = aggregate
        return list(latest.values())

    def versions(self, name: str) -> builtins.list[Aggregate]:
        versions = self._store.versions(name)
        if not versions:
            raise self._unknown(name)
        return versions

    def get(self, name: str, version: int | None = None) -> Aggregate:
        return one_version(name, self.versions(name), version)

    def _unknown(self, name: str) -> UnknownAggregateError:
        names = [a.name for a in self.list()]
        close = difflib.get_close_matches(name, names, n=1)
        return UnknownAggregateError(
            f"no aggregate named '{name}'",
            hint=f"did you mean '{close[0]}'?" if close else
            ("aggregates: " + ", ".join(names)) if names else
            "create one with 'meterql aggregate apply DIR' or POST /v1/aggregates")

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(
        self,
        name: str,
        start: date | datetime,
        end: date | datetime,
        *,
        customers: Sequence[str] | None = None,
        tz: str = "UTC",
        window: Window | None = None,
        version: int | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        cancel: Cancel | None = None,
        max_staleness: float | str | None = None,
    ) -> Evaluation:
        """Evaluate a saved aggregate over ``[start, end)`` (dates are midnights in ``tz``),
        per ``window`` if given; customers asked for and without usage get a zero. The
        evaluation is logged with its provenance (see :meth:`log`): the bound it ran under,
        and the route, watermark and staleness of every table read.

        ``max_staleness``: the freshness bound for sources in ``auto`` mode (as
        ``Workspace.query``'s); ``None`` takes the aggregate's header ``-- freshness:``, and
        without one the workspace setting ``max_staleness``."""
        aggregate = self.get(name, version)
        result = self._evaluate(aggregate, start, end, customers, tz, window, timeout, cancel,
                                max_staleness)
        self._store.log_evaluation({
            "id": result.id, "aggregate": aggregate.name, "version": aggregate.version,
            "started_at": result.provenance["evaluated_at"], "seconds": result.seconds,
            "rows": result.table.num_rows, "result_hash": result.result_hash,
            "provenance": result.provenance,
        })
        return result

    def dry_run(
        self,
        draft: Aggregate,
        start: date | datetime,
        end: date | datetime,
        *,
        customers: Sequence[str] | None = None,
        tz: str = "UTC",
        window: Window | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        cancel: Cancel | None = None,
        max_staleness: float | str | None = None,
    ) -> dict[str, Any]:
        """Evaluate a draft without saving it, next to the current version's result for the
        same period, and what would change. ``max_staleness``: as :meth:`evaluate`'s (each
        side otherwise takes its own header's bound)."""
        validate(self._engine, draft)
        current = None
        if self._store.versions(draft.name):
            current = self._evaluate(self.get(draft.name), start, end, customers, tz, window,
                                     timeout, cancel, max_staleness)
        evaluated = self._evaluate(replace(draft, version=None), start, end, customers, tz,
                                   window, timeout, cancel, max_staleness)
        return {
            "draft": evaluated,
            "current_version": None if current is None else current.aggregate.version,
            "diff": diff(None if current is None else current.table, evaluated.table, draft),
        }

    def log(self, name: str | None = None, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """The latest evaluations (newest first) with their provenance."""
        return self._store.evaluations(name, limit)

    def freshness(self, aggregate: Aggregate,
                  max_staleness: float | str | None = None) -> dict[str, Any]:
        """The bound an evaluation of ``aggregate`` runs under, and where it comes from: the
        argument ``max_staleness`` if given, else the aggregate's header ``-- freshness:``,
        else the workspace setting. A bound that is not a duration or ``none`` is a
        ``QueryError``.

        Returns ``{"max_staleness": "5m" | "0s" | "none", "from": "argument" | "header" |
        "setting"}``."""
        if max_staleness is not None:
            where, value = "argument", max_staleness
        elif aggregate.freshness is not None:
            where, value = "header", aggregate.freshness
        else:
            where, value = "setting", self._catalog.settings["max_staleness"]
        seconds = self._engine.bound(value)
        return {"max_staleness": "none" if seconds is None else format_duration(seconds),
                "from": where}

    def _evaluate(self, aggregate, start, end, customers, tz, window, timeout,
                  cancel, max_staleness=None) -> Evaluation:
        freshness = self.freshness(aggregate, max_staleness)
        bound = freshness["max_staleness"]

        def run(sql: str, params: dict[str, Any], dialect: str) -> Result:
            if cancel is None:
                return self._query(sql, params, dialect, timeout=timeout,
                                   max_rows=MAX_AGGREGATE_ROWS, max_staleness=bound)
            if cancel.cancelled.is_set():
                raise QueryCancelledError(f"evaluation of '{aggregate.name}' was cancelled")
            running = self._submit(sql, params, dialect, timeout=timeout,
                                   max_rows=MAX_AGGREGATE_ROWS, max_staleness=bound)
            cancel.current = running
            try:
                return running.result()
            finally:
                cancel.current = None

        return evaluate(run, aggregate, start, end, customers=customers, tz=tz, window=window,
                        sources=self._sources, freshness=freshness)

    def _sources(self, result: Result) -> builtins.list[dict[str, Any]]:
        plan = result.plan
        if plan is None:
            return []
        names = {f.source for f in plan.fragments} | {
            t.split(".", 1)[0] for t in plan.local_tables}
        out = []
        for name in sorted(names):
            source = self._catalog.source(name)
            out.append({"name": source.name, "kind": source.kind, "mode": source.mode})
        return out
