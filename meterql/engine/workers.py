"""The threads that run submitted queries (``Workspace.submit``, so every HTTP query).

A query used to get a thread of its own, started for it. On a busy machine that start is what
a short query waited for: a new thread joins the back of the operating system's run queue,
behind the threads already running (a long query's DuckDB threads, a sync), where a thread that
was waiting is woken ahead of them. Beside a long DuckDB query on 2 cores, a 1 ms query took
4 ms this way (benchmarks/concurrency.py). So threads are kept and reused: an idle one takes the
next query; a new one is started only when every thread is busy, so a query never waits for
another (there is no limit, as before); a thread idle for ``idle_s`` ends.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable


class Workers:
    """Run callables on reused daemon threads, each at once (see the module docstring).

    >>> import threading
    >>> workers = Workers("example")
    >>> done = threading.Event()
    >>> workers.run(done.set)
    >>> done.wait(5)
    True
    """

    def __init__(self, name: str, idle_s: float = 60.0) -> None:
        self._name = name
        self._idle_s = idle_s
        self._jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Threads waiting for a job that no job put since has claimed: a job that finds one
        # takes it (the count drops by one); otherwise it starts a thread.
        self._idle = 0
        self._threads = 0

    @property
    def threads(self) -> int:
        """How many threads there are now (busy or idle)."""
        with self._lock:
            return self._threads

    @property
    def idle(self) -> int:
        """How many threads wait for a job now."""
        with self._lock:
            return self._idle

    def run(self, job: Callable[[], object]) -> None:
        """Start ``job`` now on an idle thread, or on a new one if none is idle. Its
        exceptions are its own business: it should report them (a worker ignores them)."""
        with self._lock:
            start = self._idle == 0
            if start:
                self._threads += 1
            else:
                self._idle -= 1
        self._jobs.put(job)
        if start:
            try:
                threading.Thread(target=self._work, name=self._name, daemon=True).start()
            except BaseException:
                with self._lock:
                    self._threads -= 1
                raise

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_s)
            except queue.Empty:
                with self._lock:
                    # Idle threads outnumber the jobs queued: this one may go. Otherwise a
                    # job claimed it between the timeout and the lock, and it is queued.
                    if self._idle > 0:
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue
            with contextlib.suppress(BaseException):
                job()
            del job  # the finished job's result must not live on in an idle thread
            with self._lock:
                self._idle += 1
