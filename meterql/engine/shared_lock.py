"""A lock many holders share and one takes alone: queries read the replicas together, and the
replica of a source is re-attached after a sync (``Workspace._sync``) only when no query reads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class SharedLock:
    """Shared holders (queries) run together; an exclusive holder waits for them to finish and
    keeps new ones waiting until it is done. A waiting exclusive holder goes first, so a stream
    of queries cannot starve it.

    >>> lock = SharedLock()
    >>> with lock.shared(), lock.shared():  # (queries share it, also on one thread)
    ...     lock.readers
    2
    >>> with lock.exclusive():
    ...     lock.readers
    0
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.readers = 0
        self._writer = False
        self._waiting = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self.readers += 1
        try:
            yield
        finally:
            with self._cond:
                self.readers -= 1
                if not self.readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                while self._writer or self.readers:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
