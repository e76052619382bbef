"""A short-lived, bounded map for reference data that every purchase reads and staff rarely
change (markets, product titles).

Each process keeps its own: a write in this process forgets the entries it touches at once,
other processes serve the old value for at most `seconds`. Monotonic time, not the shop's
clock, because freshness is about this process's reads, not about business time.

When an entry expires under load, every request that wants it misses at once; `load_once`
lets them share one read instead of each taking a database connection for the same row.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
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
        self._loading: SharedReads[K, V] = SharedReads()

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

    async def load_once(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The value kept for `key`; otherwise `load()`'s, which callers asking for the same
        key meanwhile share. `load` keeps what it read itself (`put`), as it sees fit."""
        kept = self.get(key)
        if kept is not None:
            return kept
        return await self._loading.read(key, load)

    def forget(self) -> None:
        """Drop everything: after a write whose reach is not worth working out. Reads under
        way are no longer shared, so a caller after the write reads afresh."""
        self._entries.clear()
        self._loading.forget()


class SharedReads(Generic[K, V]):
    """Reads under way, by key: a caller asking for a key that is being read awaits that read
    instead of starting its own."""

    def __init__(self) -> None:
        self._under_way: dict[K, asyncio.Future[V]] = {}

    async def read(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        pending = self._under_way.get(key)
        if pending is None:
            # A task of its own: a caller that gives up does not cancel the others' read.
            pending = asyncio.ensure_future(read())
            self._under_way[key] = pending
            pending.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(pending)

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self._under_way.get(key) is done:
            del self._under_way[key]
        if not done.cancelled():
            done.exception()  # retrieved: the callers who awaited it have seen it

    def forget(self) -> None:
        """Callers from now on read afresh; reads under way still answer their callers."""
        self._under_way.clear()
