"""Plans cached per (SQL, dialect, catalog version): a repeated query skips parse, bind and plan.

Any change to the catalog (sources, tables, settings) bumps its version, so a cached plan never
outlives the schema it was made for.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeAlias, TypeVar

V = TypeVar("V")

#: (SQL, dialect, catalog version): the catalog's version is (stored catalog, local data shape).
PlanKey: TypeAlias = tuple[str, str, tuple[int, int]]


class PlanCache(Generic[V]):
    """A thread-safe LRU map.

    >>> cache = PlanCache[str](2)
    >>> cache.put(("SELECT 1", "duckdb", (1, 0)), "plan")
    >>> cache.get(("SELECT 1", "duckdb", (1, 0)))
    'plan'
    >>> cache.get(("SELECT 1", "duckdb", (2, 0))) is None
    True
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[PlanKey, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: PlanKey) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: PlanKey, value: V) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
