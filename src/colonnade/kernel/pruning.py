"""Pruning the outbox and the inbox: both grow with every event and are needed only for a while.

Each batch is its own short transaction, so a large prune never holds long locks (on SQLite,
the one writer's lock) while checkouts wait to write.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Delete, delete, select, tuple_

from colonnade.kernel.clock import Clock, SystemClock
from colonnade.kernel.db import Database
from colonnade.kernel.schema import dead_letters, inbox, outbox


class Pruning:
    def __init__(
        self,
        db: Database,
        *,
        outbox_retention: timedelta,
        inbox_retention: timedelta,
        clock: Clock | None = None,
        batch_size: int = 1000,
    ) -> None:
        self._db = db
        self._outbox_retention = outbox_retention
        self._inbox_retention = inbox_retention
        self._clock = clock or SystemClock()
        self._batch_size = batch_size

    async def prune_outbox(self) -> int:
        """Delete events published longer ago than the retention; unpublished ones stay."""
        cutoff = self._clock.now() - self._outbox_retention
        # In id order: the oldest rows come first, so the primary key finds each batch.
        old = (
            select(outbox.c.id)
            .where(outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff)
            .order_by(outbox.c.id)
            .limit(self._batch_size)
        )
        return await self._in_batches(delete(outbox).where(outbox.c.id.in_(old)))

    async def prune_inbox(self) -> int:
        """Delete marks older than the retention, except those of events parked or (replayed)
        waiting in the outbox: their delivery must still find the marks of consumers that took
        them before they were parked."""
        cutoff = self._clock.now() - self._inbox_retention
        waiting = select(outbox.c.event_id).where(outbox.c.published_at.is_(None))
        old = (
            select(inbox.c.consumer, inbox.c.event_id)
            .where(
                inbox.c.processed_at < cutoff,
                inbox.c.event_id.not_in(select(dead_letters.c.event_id)),
                inbox.c.event_id.not_in(waiting),
            )
            .limit(self._batch_size)
        )
        return await self._in_batches(
            delete(inbox).where(tuple_(inbox.c.consumer, inbox.c.event_id).in_(old))
        )

    async def _in_batches(self, statement: Delete) -> int:
        deleted = 0
        while True:
            async with self._db.transaction() as uow:
                result = await uow.execute(statement)
                await uow.commit()
            count = int(result.rowcount)
            deleted += count
            if count < self._batch_size:
                return deleted
