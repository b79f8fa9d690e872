"""When synced sources are synced, and how a failed run is tried again: one schedule for the
server's background sync (``meterql serve --sync``) and ``meterql sync [--watch]``.

The policy (:data:`RETRY`, documented in docs/guide.md, "Keeping replicas fresh"):

- a source is due every ``sync_every_s`` (its option), else every ``every_s`` (the schedule's
  default), counted from the end of its last run;
- a run that fails with a retryable error (:attr:`MeterqlError.retryable`: the source is
  unreachable, or timed out) is tried again within the same turn after 1 s, then 2 s
  (3 attempts in all), which rides over a restart or a dropped connection;
- after the last attempt the source's next turn comes after 30 s if the error was retryable
  (or its interval, if that is shorter), else after its interval: an error that needs a
  person (refused credentials, a schema change the settings refuse) is reported once per
  interval rather than every 30 s.

Sources are synced one after the other on one thread (a workspace runs one sync at a time), so
one failing source delays the others by its retry waits only (3 s at most).

Example:
    >>> schedule = SyncSchedule(ws, every_s=900)  # doctest: +SKIP
    >>> reports = schedule.run_due()  # every synced source once, now  # doctest: +SKIP
    >>> schedule.start(); ...; schedule.stop()  # in the background  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from meterql.catalog import Source
from meterql.errors import MeterqlError
from meterql.sync.runner import SyncReport
from meterql.wording import count, format_duration


class SourceList(Protocol):
    """``ws.sources``: called, every source; ``get(name)``, one."""

    def __call__(self) -> list[Source]: ...

    def get(self, name: str) -> Source: ...


class Syncable(Protocol):
    """What a schedule needs of a workspace (:class:`meterql.Workspace` is one): its sources
    and its ``sync`` (called with a source's name, it syncs that source)."""

    @property
    def sources(self) -> SourceList: ...

    @property
    def sync(self) -> Callable[..., list[SyncReport]]: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed sync run is tried again.

    Example:
        >>> [RETRY.wait_before(n) for n in (2, 3)]
        [1.0, 2.0]
        >>> from meterql.errors import SourceUnavailableError, SourceAuthError
        >>> RETRY.next_turn_in(SourceUnavailableError("down"), every_s=900.0)
        30.0
        >>> RETRY.next_turn_in(SourceAuthError("refused"), every_s=900.0)
        900.0
    """

    #: Runs per turn when the error is retryable (the first one included).
    attempts: int = 3
    #: Seconds before the second attempt; doubled before each further one.
    first_wait_s: float = 1.0
    #: After a turn that failed with a retryable error, the source is due again this soon
    #: (or after its interval, if that is shorter).
    retry_after_s: float = 30.0

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2, 3, ...) of a turn."""
        return self.first_wait_s * 2 ** (attempt - 2)

    def next_turn_in(self, error: MeterqlError | None, every_s: float) -> float:
        """Seconds from the end of a turn to the source's next one."""
        if error is not None and error.retryable:
            return min(self.retry_after_s, every_s)
        return every_s


#: The one policy of the server and the CLI.
RETRY = RetryPolicy()


@dataclass(frozen=True)
class SyncAttempt:
    """One run of one source, as the schedule reports it to its ``notify`` callback."""

    report: SyncReport
    #: 1 for the first run of a turn, 2 and 3 for the retries.
    attempt: int
    #: Seconds until this turn's next attempt, or None when the turn is over.
    retry_in: float | None
    #: When the turn is over: seconds until the source's next turn (else None).
    next_turn_in: float | None

    @property
    def source(self) -> str:
        return self.report.source


class SyncSchedule:
    """Syncs the due sources of a workspace, with :class:`RetryPolicy`'s retries.

    Args:
        ws: the workspace (anything :class:`Syncable`).
        every_s: the interval of sources without a ``sync_every_s`` option.
        sources: the sources to sync; None means every source in sync mode, read again at
            each turn (a source switched to sync mode joins the schedule).
        policy: how failed runs are tried again.
        run: runs one source and returns its report; default ``ws.sync(name)[0]`` (the CLI
            passes one that draws a progress line).
        notify: called after every run (successful, retried or failed); default: a log line
            on the ``meterql.sync`` logger (see :func:`log_attempts`).
    """

    def __init__(self, ws: Syncable, every_s: float = 900.0, *,
                 sources: Sequence[str] | None = None, policy: RetryPolicy = RETRY,
                 run: Callable[[str], SyncReport] | None = None,
                 notify: Callable[[SyncAttempt], None] | None = None) -> None:
        self._ws, self._every, self._policy = ws, float(every_s), policy
        self._names = None if sources is None else list(sources)
        self._run = run or (lambda name: ws.sync(name)[0])
        self._notify = notify or log_attempts(logging.getLogger("meterql.sync"))
        self._due: dict[str, float] = {}  # source -> time.monotonic() of its next turn
        self._last: dict[str, tuple[datetime, SyncAttempt]] = {}  # source -> its last run
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def interval(self, name: str) -> float:
        """A source's interval: its ``sync_every_s`` option, else the schedule's."""
        return float(self._ws.sources.get(name).options.get("sync_every_s") or self._every)

    def run_due(self) -> list[SyncReport]:
        """Run every source whose turn has come (all of them the first time), retries
        included; returns each one's last report."""
        names = self._names if self._names is not None else [
            s.name for s in self._ws.sources() if s.replicated]
        self._due = {n: t for n, t in self._due.items() if n in names}  # (left sync mode)
        reports = []
        for name in names:
            if self._stopping.is_set():
                break
            if self._due.get(name, 0.0) <= time.monotonic():
                reports.append(self._turn(name))
        return reports

    def _turn(self, name: str) -> SyncReport:
        policy = self._policy
        attempt = 1
        while True:
            report = self._run(name)
            error = report.error
            last = (error is None or not error.retryable or attempt >= policy.attempts
                    or self._stopping.is_set())
            if last:
                wait = policy.next_turn_in(error, self.interval(name))
                self._due[name] = time.monotonic() + wait
                self._tell(SyncAttempt(report, attempt, None, wait))
                return report
            retry_in = policy.wait_before(attempt + 1)
            self._tell(SyncAttempt(report, attempt, retry_in, None))
            if self._stopping.wait(retry_in):  # (stopped meanwhile: the turn ends here)
                self._due[name] = time.monotonic()
                return report
            attempt += 1

    def _tell(self, attempt: SyncAttempt) -> None:
        self._last[attempt.source] = (datetime.now(UTC), attempt)
        self._notify(attempt)

    def status(self) -> dict[str, dict[str, Any]]:
        """Each scheduled source's next turn (seconds from now; 0 when due) and last run
        (when, which attempt, its rows or its error), for ``GET /v1/status``."""
        now = time.monotonic()
        names = set(self._due) | set(self._last)
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(names):
            due = self._due.get(name)
            last = self._last.get(name)
            out[name] = {
                "next_turn_in_s": None if due is None else round(max(0.0, due - now), 3),
                "last_run": None if last is None else {
                    "at": last[0].isoformat(), "attempt": last[1].attempt,
                    "ok": last[1].report.error is None, "rows": last[1].report.rows,
                    "error": None if last[1].report.error is None
                    else str(last[1].report.error),
                    "retry_in_s": last[1].retry_in},
            }
        return out

    @property
    def every_s(self) -> float:
        """The interval of sources without their own."""
        return self._every

    def run(self) -> None:
        """Run turns as they come due until :meth:`stop` (or Ctrl-C in the calling thread)."""
        while not self._stopping.is_set():
            self.run_due()
            soonest = min(self._due.values(), default=0.0) - time.monotonic()
            # (at least once a second: sources switched to sync mode join without delay)
            self._stopping.wait(min(1.0, max(0.0, soonest)))

    def start(self) -> None:
        """Run the schedule on a background thread."""
        self._thread = threading.Thread(target=self.run, name="meterql-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the run under way (a retry wait is cut short)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)


def log_attempts(log: logging.Logger) -> Callable[[SyncAttempt], None]:
    """A ``notify`` callback writing one log line per run (the server's)."""

    def notify(attempt: SyncAttempt) -> None:
        report = attempt.report
        if report.error is None:
            log.info("sync %s: %s in %s", report.source, count(report.rows, "row"),
                     format_duration(report.seconds))
        elif attempt.retry_in is not None:
            log.warning("sync %s failed (attempt %d), retrying in %s: %s", report.source,
                        attempt.attempt, format_duration(attempt.retry_in), report.error)
        else:
            log.warning("sync %s failed: %s; next try in %s", report.source, report.error,
                        format_duration(attempt.next_turn_in or 0.0))

    return notify
