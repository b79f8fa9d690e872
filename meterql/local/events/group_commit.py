"""The group-commit writer ("the transactional way"): one thread writes DuckDB for the event
streams, one transaction per group of requests.

Requests arriving together are written in one transaction: each group is everything queued
while the previous group was written, so groups grow with the load. When fewer requests are
queued than were in progress together in the last second (at least :data:`LINGER_PEAK`), the
writer waits up to :data:`LINGER_S` for the others (a commit delay), so that the clients
answered by one commit are written together in the next one.

The same thread applies the event log to DuckDB (logged_path.py): the logged way tells it how
many rows it logged (:meth:`GroupCommitWriter.log_grew`), and the writer applies them once
:data:`APPLY_ROWS` are pending, :data:`APPLY_S` after the oldest, or before the next group
(``work`` does that). A stream with a request queued here, or being written, is *busy*
(:meth:`GroupCommitWriter.is_busy`): the logged way takes none of its pushes until that request
is written, so a stream's pushes are written in the order they were answered.

Locks: ``GroupCommitWriter._lock`` guards everything here and is taken last (see the package's
docstring for the order); ``work`` runs without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from meterql.errors import WorkspaceError
from meterql.local.events.insert import PendingRequest

log = logging.getLogger(__name__)

LINGER_S = 0.015  # the writer's longest wait for requests in progress to be queued,
LINGER_PEAK = 4  # when at least this many were in progress together lately
PEAK_S = 1.0  # (lately)
IDLE_S = 1.0  # the writer thread ends after this long without work
APPLY_ROWS = 50_000  # the event log is applied once this many rows are pending,
APPLY_S = 0.25  # or the oldest has waited this long (or a query or a request waits)


class GroupCommitWriter:
    """The writer thread and its queue.

    Args:
        work: called in the writer thread with each group's requests (cancelled ones and
            flushes left out; possibly none: then only the event log is due): applies the
            event log, writes the requests (their ``outcomes`` or ``error``), notes their ids.
    """

    def __init__(self, work: Callable[[list[PendingRequest]], None]) -> None:
        self._work = work
        self._lock = threading.Condition()  # guards everything below
        self._queue: list[PendingRequest] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._in_progress = self._peak = 0  # async pushes under way, and the recent most
        self._peak_at = 0.0
        self._busy: dict[str, int] = {}  # stream -> its requests queued or being written
        self._log_rows = 0  # rows logged since the writer last applied the event log
        self._log_since = 0.0  # when the first of them was logged
        self._retry_at = 0.0  # after a failed apply: not before then

    def enqueue(self, item: PendingRequest) -> Future:
        """Queue ``item``; the future gets its outcomes (or error)."""
        with self._lock:
            if self._closed:
                raise WorkspaceError("the workspace is closed: events are not taken",
                                     hint="retry against a running server")
            self._queue.append(item)
            if not item.flush:
                self._busy[item.stream] = self._busy.get(item.stream, 0) + 1
            self._start()
            self._lock.notify_all()
        return item.future

    def is_busy(self, stream: str) -> bool:
        """Whether a request of ``stream`` is queued or being written."""
        with self._lock:
            return stream in self._busy

    def log_grew(self, rows: int, *, failed: bool = False) -> None:
        """``rows`` were logged (or, ``failed``, an apply of them failed: retried after
        :data:`APPLY_S`) and are due to be applied."""
        with self._lock:
            now = time.monotonic()
            if not self._log_rows:
                self._log_since = now
            self._log_rows += rows
            if failed:
                self._retry_at = now + APPLY_S
            self._start()
            self._lock.notify_all()

    def arrivals(self, step: int) -> None:
        """Count the requests in progress (``step``: +1 or -1), and remember the most seen
        at once lately: the writer waits briefly for that many."""
        with self._lock:
            self._in_progress += step
            self._note_peak()

    def close(self) -> None:
        """Take no more requests; the thread writes what is queued, then ends."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def join(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()

    def _start(self) -> None:
        """(Under the lock.)"""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="meterql-events-writer")
            self._thread.start()

    def _note_peak(self) -> None:
        """(Under the lock.) The most requests in progress at once within PEAK_S."""
        now = time.monotonic()
        if self._in_progress >= self._peak or now - self._peak_at > PEAK_S:
            self._peak, self._peak_at = self._in_progress, now

    def _run(self) -> None:
        """The writer thread: each group of queued requests, or the event log when due."""
        while True:
            with self._lock:
                group = self._next_group()
                if group is None:
                    # Closed, or idle: the thread ends (it holds the workspace; a workspace
                    # dropped without close() must not be kept alive by it). The next
                    # enqueue or log_grew starts a new one.
                    self._thread = None
                    return
                self._log_rows = 0  # (work applies all the log holds)
            # A request cancelled while queued (its client went away, so it got no answer and
            # will retry) is dropped; the others can no longer be cancelled.
            taken = [item.stream for item in group if not item.flush]
            group = [item for item in group if item.future.set_running_or_notify_cancel()]
            requests = [item for item in group if not item.flush]
            try:
                self._work(requests)
            except BaseException as exc:  # every caller must get an answer
                if not group:
                    log.exception("applying the event log failed; retried in %.1f s, and "
                                  "at the next opening", APPLY_S)
                    with self._lock:
                        if self._closed:  # (the records stay in the log for the next opening)
                            self._thread = None
                            return
                for item in group:
                    item.error = item.error or exc
            with self._lock:  # (after work noted the requests' ids: see is_busy)
                for stream in taken:
                    self._busy[stream] -= 1
                    if not self._busy[stream]:
                        del self._busy[stream]
            for item in group:
                if item.error is not None:
                    item.future.set_exception(item.error)
                else:
                    item.future.set_result(item.outcomes or [])

    def _next_group(self) -> list[PendingRequest] | None:
        """(Under the lock, in the writer.) Wait for work: queued requests (the group), or the
        event log due to be applied (an empty group); None when the thread should end."""
        while True:
            if self._queue:
                break
            now = time.monotonic()
            if self._log_rows and (self._closed or now >= self._retry_at and (
                    self._log_rows >= APPLY_ROWS or now - self._log_since >= APPLY_S)):
                return []
            if self._closed and not self._log_rows:
                return None
            wait = IDLE_S if not self._log_rows else \
                max(self._log_since + APPLY_S, self._retry_at) - now
            if not self._lock.wait(max(wait, 0.001)) and not (
                    self._queue or self._log_rows or self._closed):
                return None
        # Group commit delay: when more requests were in progress together lately (PEAK_S)
        # than are queued now, wait up to LINGER_S for them, so that clients answered by one
        # commit are written together next time rather than in two alternating halves. Only
        # for real concurrency (LINGER_PEAK requests), and not when a query waits (flush).
        self._note_peak()  # (no arrivals lately: the peak decays here)
        until = time.monotonic() + LINGER_S
        while LINGER_PEAK <= self._peak > len(self._queue) and not self._closed \
                and not any(item.flush for item in self._queue):
            left = until - time.monotonic()
            if left <= 0:
                break
            self._lock.wait(left)
        group, self._queue = self._queue, []
        return group
