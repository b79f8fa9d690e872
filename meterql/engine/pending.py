"""A query's answer still coming (no heavy import: the workspace's and the client's handles
subclass it before any query runs)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meterql.engine.result import Result


class PendingResult:
    """A query's answer still coming: ``result()`` waits for it; subclasses add ``cancel()``."""

    def __init__(self) -> None:
        self._future: Future[Result] = Future()

    def result(self, timeout: float | None = None) -> Result:
        return self._future.result(timeout)

    def done(self) -> bool:
        return self._future.done()

    @property
    def future(self) -> Future[Result]:
        """The result as a :class:`concurrent.futures.Future` (for asyncio.wrap_future)."""
        return self._future
