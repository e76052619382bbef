"""Committed changes for the caches of every process.

A cache of what staff change (prices, products, markets) must hear of a change at once in the
process that made it, and soon in every other process. The outbox relay cannot tell them:
it hands each event to one process only. So the writer tells its own process right after the
commit (`committed`), and each process reads the outbox itself every `poll_seconds` for the
event types its caches listen to, skipping what it was already told.

Outbox ids are taken before commit, so a later id may become visible before an earlier one.
Each poll therefore reads again what arrived since a watermark that trails the newest id by
`settle_seconds`, longer than any staff write stays uncommitted, and remembers what it has
already delivered above it.

With a `Fanout` (Redis pub/sub, change_fanout.py) the writer also tells every other process
at once; the poll goes on as before and delivers whatever a process missed. An event heard
both ways is delivered once: each way skips the event ids the other delivered lately.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog
from sqlalchemy import func, select

from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope
from colonnade.kernel.periodic import Every
from colonnade.kernel.schema import outbox

log = structlog.get_logger(__name__)

Listener = Callable[[str, dict[str, Any]], None]
# Told by another process: (event id, event type, payload).
Heard = Callable[[str, str, dict[str, Any]], None]


class Fanout(Protocol):
    def tell(self, envelopes: Sequence[Envelope]) -> None:
        """Tell the other processes of events just committed here, without waiting."""
        ...

    def start(self, heard: Heard) -> None:
        """Call `heard` for each event another process tells of, until stopped."""
        ...

    async def stop(self) -> None: ...


class Changes:
    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float = 0.25,
        settle_seconds: float = 2.0,
        now: Callable[[], float] = time.monotonic,
        fanout: Fanout | None = None,
    ) -> None:
        self._db = db
        self._fanout = fanout
        self._poll_seconds = poll_seconds
        self._settle_seconds = settle_seconds
        self._now = now
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._watermark: int | None = None
        # Outbox ids above the watermark already delivered, and newest ids seen per poll.
        self._delivered_rows: set[int] = set()
        self._newest: deque[tuple[float, int]] = deque()
        # Events delivered at commit or as told by the fanout, by id, with when: the poll
        # skips them (and the fanout the ones the poll delivered).
        self._delivered_here: dict[str, float] = {}
        self._loop = Every(
            "colonnade-changes", self._poll_seconds, self.catch_up, "changes.poll_failed"
        )

    def listen(self, event_type: str, listener: Listener) -> None:
        """Call `listener(event_type, payload)` for each committed event of this type."""
        self._listeners[event_type].append(listener)

    def committed(self, envelopes: Sequence[Envelope]) -> None:
        """Tell this process's listeners, and through the fanout every other process's, of
        events just committed here."""
        for envelope in envelopes:
            if envelope.event_type in self._listeners:
                self._delivered_here[envelope.event_id] = self._now()
                self._deliver(envelope.event_type, envelope.payload)
        if self._fanout is not None:
            # Only what someone listens to: a purchase's events concern no cache.
            told = [e for e in envelopes if e.event_type in self._listeners]
            if told:
                self._fanout.tell(told)

    def heard(self, event_id: str, event_type: str, payload: dict[str, Any]) -> None:
        """An event another process committed, as its fanout told it."""
        if event_type in self._listeners and event_id not in self._delivered_here:
            self._delivered_here[event_id] = self._now()
            self._deliver(event_type, payload)

    async def catch_up(self) -> None:
        """Read the outbox once and deliver what other processes committed since last time."""
        if not self._listeners:
            return
        async with self._db.reading() as conn:
            newest = int(await conn.scalar(select(func.coalesce(func.max(outbox.c.id), 0))) or 0)
            if self._watermark is None:
                # Caches start empty: what was committed before this process looked is in them.
                self._watermark = newest
                return
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.event_id, outbox.c.event_type, outbox.c.payload)
                    .where(
                        outbox.c.id > self._watermark,
                        outbox.c.event_type.in_(sorted(self._listeners)),
                    )
                    .order_by(outbox.c.id)
                )
            ).all()
        for row in rows:
            if row.id in self._delivered_rows:
                continue
            self._delivered_rows.add(row.id)
            if row.event_id not in self._delivered_here:
                self._delivered_here[row.event_id] = self._now()
                self._deliver(row.event_type, row.payload)
        self._settle(newest)

    def _settle(self, newest: int) -> None:
        now = self._now()
        self._newest.append((now, newest))
        while self._newest and self._newest[0][0] <= now - self._settle_seconds:
            _, settled = self._newest.popleft()
            if self._watermark is None or settled > self._watermark:
                self._watermark = settled
        floor = self._watermark or 0
        self._delivered_rows = {i for i in self._delivered_rows if i > floor}
        forget_before = now - 10 * self._settle_seconds
        for event_id in [e for e, at in self._delivered_here.items() if at < forget_before]:
            del self._delivered_here[event_id]

    def _deliver(self, event_type: str, payload: dict[str, Any]) -> None:
        for listener in self._listeners.get(event_type, ()):
            try:
                listener(event_type, payload)
            except Exception:  # one cache must not keep others stale
                log.exception("changes.listener_failed", event_type=event_type)

    def start(self) -> None:
        self._loop.start()
        if self._fanout is not None:
            self._fanout.start(self.heard)

    async def stop(self) -> None:
        if self._fanout is not None:
            await self._fanout.stop()
        await self._loop.stop()
