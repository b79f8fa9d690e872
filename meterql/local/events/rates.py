"""How fast events are accepted: per stream, a count per second over the last minute, kept in
memory by the process that ingests (for ``GET /v1/status``).

Example:
    >>> meter = RateMeter(clock=lambda: 100.0)
    >>> meter.add("calls", 90); meter.add("calls", 30)
    >>> meter.per_second("calls"), meter.total("calls"), meter.per_second("other")
    (2.0, 120, 0.0)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from meterql.local.events.outcomes import Accepted, Outcome

#: Seconds the rate is taken over.
WINDOW_S = 60


class RateMeter:
    """Accepted events per stream: one counter per second for the last :data:`WINDOW_S`
    seconds, and a total since the process started."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._seconds: dict[str, dict[int, int]] = {}
        self._totals: dict[str, int] = {}

    def add(self, stream: str, accepted: int) -> None:
        if accepted <= 0:
            return
        now = int(self._clock())
        with self._lock:
            buckets = self._seconds.setdefault(stream, {})
            buckets[now] = buckets.get(now, 0) + accepted
            if len(buckets) > WINDOW_S:
                for second in [s for s in buckets if s <= now - WINDOW_S]:
                    del buckets[second]
            self._totals[stream] = self._totals.get(stream, 0) + accepted

    def count(self, stream: str, outcomes: Sequence[Outcome]) -> None:
        """Add a push's accepted events."""
        self.add(stream, len(outcomes) if isinstance(outcomes, Accepted)
                 else sum(o.status == "accepted" for o in outcomes))

    def per_second(self, stream: str) -> float:
        """Events accepted per second over the last :data:`WINDOW_S` seconds."""
        since = int(self._clock()) - WINDOW_S
        with self._lock:
            recent = sum(n for s, n in self._seconds.get(stream, {}).items() if s > since)
        return recent / WINDOW_S

    def total(self, stream: str) -> int:
        """Events accepted since the process started."""
        with self._lock:
            return self._totals.get(stream, 0)
