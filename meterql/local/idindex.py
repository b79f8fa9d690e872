"""Which event ids a stream has taken, in memory: the check that lets a push skip DuckDB.

Every id is kept as a 64-bit hash (Python's string hash, so the index is rebuilt in each
process, from ``local.__meterql__.event_ids``, the first time a stream is pushed to). A batch
whose ids all miss is certainly new; a hit may be a retry (or, rarely, another id with the
same hash), and that batch takes the transactional way, which answers from DuckDB's id index.
About 8 bytes per stored id, plus about 70 per id taken since the last merge.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

_MERGE_AT = 1 << 16  # recent hashes merged into the sorted array past this many


def hashes(ids: Iterable[str]) -> list[int]:
    return [hash(i) for i in ids]


class IdIndex:
    """Not thread-safe: the caller holds a lock."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._base = np.unique(np.fromiter(hashes(ids), dtype=np.int64))
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return len(self._base) + len(self._recent)

    def any_taken(self, keys: list[int]) -> bool:
        recent, base = self._recent, self._base
        if not recent.isdisjoint(keys):
            return True
        n = len(base)
        if not n:
            return False
        if len(keys) <= 8:  # (a single event: numpy's per-call costs outweigh its speed)
            for k in keys:
                at = base.searchsorted(k)
                if at < n and base[at] == k:
                    return True
            return False
        probe = np.fromiter(keys, dtype=np.int64, count=len(keys))
        found = base.searchsorted(probe)
        np.minimum(found, n - 1, out=found)
        return bool(np.any(base[found] == probe))

    def add(self, keys: list[int]) -> None:
        self._recent.update(keys)
        if len(self._recent) >= _MERGE_AT:  # one pass over the array (no sort of it)
            new = np.sort(np.fromiter(self._recent, dtype=np.int64, count=len(self._recent)))
            self._base = np.insert(self._base, self._base.searchsorted(new), new)
            self._recent = set()

    def discard(self, keys: list[int]) -> None:
        """Take back keys added for a write that failed (they are recent: not merged yet,
        unless a merge happened in between, in which case they stay: a false hit only costs
        the transactional way)."""
        self._recent.difference_update(keys)
