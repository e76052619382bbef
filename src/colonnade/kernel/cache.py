"""A short-lived, bounded map for reference data that every purchase reads and staff rarely
change (markets, product titles).

Each process keeps its own: a write in this process forgets the entries it touches at once,
other processes serve the old value for at most `seconds`. Monotonic time, not the shop's
clock, because freshness is about this process's reads, not about business time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    def __init__(
        self,
        seconds: float,
        *,
        size: int = 10_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seconds = seconds
        self._size = size
        self._now = now
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The value kept for `key`, or None when there is none or it is too old."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._now():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        if self._seconds <= 0:
            return
        self._entries[key] = (self._now() + self._seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self) -> None:
        """Drop everything: after a write whose reach is not worth working out."""
        self._entries.clear()
