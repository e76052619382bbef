"""The outbox relay: moves committed events from the outbox table to the bus.

It claims a batch with a short lease (so several relays can share one outbox), delivers each
event, and marks it published; a failed delivery is offered again later with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import func, select, update

from colonnade.kernel.bus import EventBus
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope
from colonnade.kernel.schema import outbox

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=30)
MAX_BACKOFF = timedelta(minutes=10)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        poll_seconds: float = 1.0,
        gather_seconds: float = 0.05,
        batch_size: int = 200,
    ) -> None:
        self._db = db
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._gather_seconds = gather_seconds
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        db.after_commit_with_events(self.wake)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        self._wake.set()

    async def pending(self) -> int:
        """How many events wait to be published."""
        async with self._db.reading() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return int(count or 0)

    async def publish_due(self) -> int:
        """Publish every event that is due now; returns how many were delivered."""
        delivered = 0
        while True:
            batch = await self._claim()
            if not batch:
                return delivered
            done = [row_id for row_id, envelope in batch if await self._deliver(row_id, envelope)]
            await self._mark_published(done)
            delivered += len(done)
            if len(batch) < self._batch_size:
                return delivered

    async def _claim(self) -> list[tuple[int, Envelope]]:
        now = datetime.now(UTC)
        query = (
            select(outbox)
            .where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(self._batch_size)
        )
        if not self._db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        async with self._db.transaction() as uow:
            rows = (await uow.execute(query)).mappings().all()
            if not rows:
                return []
            await uow.execute(
                update(outbox)
                .where(outbox.c.id.in_([r["id"] for r in rows]))
                .values(next_attempt_at=now + LEASE)
            )
            await uow.commit()
        return [
            (
                r["id"],
                Envelope(
                    event_type=r["event_type"],
                    payload=r["payload"],
                    occurred_at=r["occurred_at"],
                    event_id=r["event_id"],
                    headers=r["headers"],
                ),
            )
            for r in rows
        ]

    async def _deliver(self, row_id: int, envelope: Envelope) -> bool:
        try:
            await self._bus.publish(envelope)
        except Exception as error:  # noqa: BLE001 - any failure: offer it again later
            await self._retry_later(row_id, error)
            return False
        return True

    async def _mark_published(self, row_ids: list[int]) -> None:
        if not row_ids:
            return
        async with self._db.transaction() as uow:
            await uow.execute(
                update(outbox)
                .where(outbox.c.id.in_(row_ids))
                .values(published_at=datetime.now(UTC))
            )
            await uow.commit()

    async def _retry_later(self, row_id: int, error: Exception) -> None:
        async with self._db.transaction() as uow:
            attempts = await uow.connection.scalar(
                select(outbox.c.attempts).where(outbox.c.id == row_id)
            )
            attempts = int(attempts or 0) + 1
            backoff = min(timedelta(seconds=2**attempts), MAX_BACKOFF)
            await uow.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(
                    attempts=attempts,
                    last_error=f"{type(error).__name__}: {error}"[:2000],
                    next_attempt_at=datetime.now(UTC) + backoff,
                )
            )
            await uow.commit()
        log.warning("outbox.delivery_failed", row_id=row_id, attempts=attempts, error=str(error))

    async def run(self) -> None:
        while True:
            try:
                await self.publish_due()
            except Exception:  # a lost database must not end the relay
                log.exception("outbox.relay_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
                # Let the commits of the next few milliseconds join this batch: under load one
                # claim and one mark then carry many events instead of one each.
                await asyncio.sleep(self._gather_seconds)
            self._wake.clear()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop after a last flush, so nothing committed waits for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.publish_due()
