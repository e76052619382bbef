"""The outbox relay: moves committed events from the outbox table to the bus.

It claims a batch with a short lease (so several relays can share one outbox), publishes the
batch to the bus at once, and marks the events the bus delivered published; an event whose
delivery failed is offered again later with back-off, on its own account, while its
neighbours in the batch are done. A row whose relay died holding it is claimed again once
its lease runs out. An event that fails `max_attempts` times is parked as a dead letter and
no longer offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import func, select, update

from colonnade.kernel.bus import BusUnavailable, DeliveryFailed, EventBus
from colonnade.kernel.db import Database
from colonnade.kernel.dead_letters import DeadLetters
from colonnade.kernel.events import Envelope
from colonnade.kernel.metrics import OUTBOX_BACKLOG, OUTBOX_LAG, OUTBOX_PUBLISHED
from colonnade.kernel.schema import outbox

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=30)
# The backlog gauges cost a query, so a busy relay refreshes them at most this often.
BACKLOG_REPORT_SECONDS = 1.0
MAX_BACKOFF = timedelta(minutes=10)
# While the bus is out of reach, how soon a batch it could not take is claimed again.
UNREACHABLE_RETRY = timedelta(seconds=1)


# PostgreSQL: claim a batch with one statement; SKIP LOCKED lets relays of other workers
# take the next events instead of waiting for these.
_CLAIM = (
    "UPDATE kernel_outbox SET next_attempt_at = $2 WHERE id IN (SELECT id FROM kernel_outbox"
    " WHERE published_at IS NULL AND next_attempt_at <= $1 ORDER BY id LIMIT $3"
    " FOR UPDATE SKIP LOCKED)"
    " RETURNING id, event_id, event_type, payload, headers, occurred_at"
)  # SQLAlchemy's codecs on the connection hand JSON columns back decoded
_MARK_PUBLISHED = "UPDATE kernel_outbox SET published_at = $2 WHERE id = ANY($1::bigint[])"


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        poll_seconds: float = 1.0,
        gather_seconds: float = 0.05,
        batch_size: int = 200,
        max_attempts: int = 10,
        lease: timedelta = LEASE,
    ) -> None:
        self._db = db
        self._max_attempts = max_attempts
        self._lease = lease
        self._dead_letters = DeadLetters(db)
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._gather_seconds = gather_seconds
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reported_at = float("-inf")
        self._progressed_at = time.monotonic()
        self._stopping = False
        db.after_commit_with_events(self.wake)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        self._wake.set()

    def idle_seconds(self) -> float:
        """Seconds since the relay last got through a batch or found nothing due: a relay
        that is alive never lets this grow much past its poll interval."""
        return time.monotonic() - self._progressed_at

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
            done = await self._deliver(batch)
            await self._mark_published(done)
            self._progressed_at = time.monotonic()
            OUTBOX_PUBLISHED.inc(len(done))
            delivered += len(done)
            if len(batch) < self._batch_size:
                return delivered
            # Under steady load this loop may not end for a long time; the gauges must not
            # stand still meanwhile.
            await self._report_now_and_then()

    async def _report_now_and_then(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._reported_at >= BACKLOG_REPORT_SECONDS:
            self._reported_at = now
            await self.report_backlog()

    async def report_backlog(self) -> None:
        """Set the backlog gauges: how many events wait, and how long the oldest has waited."""
        async with self._db.reading() as conn:
            count, oldest = (
                await conn.execute(
                    select(func.count(), func.min(outbox.c.occurred_at)).where(
                        outbox.c.published_at.is_(None)
                    )
                )
            ).one()
        OUTBOX_BACKLOG.set(count or 0)
        OUTBOX_LAG.set(0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds())

    async def _claim(self) -> list[tuple[int, Envelope]]:
        now = datetime.now(UTC)
        if not self._db.is_sqlite:
            async with self._db.transaction() as uow:
                claimed = await uow.fetch(_CLAIM, now, now + self._lease, self._batch_size)
                await uow.commit()
            return [
                (
                    row_id,
                    Envelope(
                        event_type=event_type,
                        payload=payload,
                        occurred_at=occurred_at,
                        event_id=event_id,
                        headers=headers,
                    ),
                )
                for row_id, event_id, event_type, payload, headers, occurred_at in sorted(claimed)
            ]
        query = (
            select(outbox)
            .where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(self._batch_size)
        )
        async with self._db.transaction() as uow:  # SQLite: its one writer holds it all
            rows = (await uow.execute(query)).mappings().all()
            if not rows:
                return []
            await uow.execute(
                update(outbox)
                .where(outbox.c.id.in_([r["id"] for r in rows]))
                .values(next_attempt_at=now + self._lease)
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

    async def _deliver(self, batch: list[tuple[int, Envelope]]) -> list[int]:
        """Publish the batch; the rows the bus delivered are returned, each other one is
        offered again later."""
        try:
            results = await self._bus.publish_batch([envelope for _, envelope in batch])
        except BusUnavailable:
            # No event's fault: none is charged an attempt (they must not end up parked
            # for a broker outage), and the batch is free again soon.
            await self._release(
                [row_id for row_id, _ in batch], datetime.now(UTC) + UNREACHABLE_RETRY
            )
            raise
        except Exception as error:  # noqa: BLE001 - the bus itself failed: every event did
            results = [error] * len(batch)
        done = []
        for (row_id, _), failure in zip(batch, results, strict=True):
            if failure is None:
                done.append(row_id)
            else:
                await self._retry_later(row_id, failure)
        return done

    async def _release(self, row_ids: list[int], due: datetime) -> None:
        async with self._db.transaction() as uow:
            await uow.execute(
                update(outbox).where(outbox.c.id.in_(row_ids)).values(next_attempt_at=due)
            )
            await uow.commit()

    async def _mark_published(self, row_ids: list[int]) -> None:
        if not row_ids:
            return
        async with self._db.transaction() as uow:
            if uow.on_postgresql:
                await uow.fetch(_MARK_PUBLISHED, row_ids, datetime.now(UTC))
            else:
                await uow.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(row_ids))
                    .values(published_at=datetime.now(UTC))
                )
            await uow.commit()

    async def _retry_later(self, row_id: int, error: Exception) -> None:
        """Offer the event again after a back-off, or park it when it has failed too often.
        Counted per event: the bus delivers to all its consumers at once, and those that took
        it already skip it by their inbox when it comes again."""
        reason = f"{type(error).__name__}: {error}"[:2000]
        async with self._db.transaction() as uow:
            row = (await uow.execute(select(outbox).where(outbox.c.id == row_id))).mappings().one()
            attempts = int(row["attempts"]) + 1
            parked = attempts >= self._max_attempts
            if parked:
                consumers = error.consumers if isinstance(error, DeliveryFailed) else None
                await self._dead_letters.park(
                    uow, row, attempts=attempts, error=reason, consumers=consumers
                )
            else:
                backoff = min(timedelta(seconds=2**attempts), MAX_BACKOFF)
                await uow.execute(
                    update(outbox)
                    .where(outbox.c.id == row_id)
                    .values(
                        attempts=attempts,
                        last_error=reason,
                        next_attempt_at=datetime.now(UTC) + backoff,
                    )
                )
            await uow.commit()
        if parked:
            log.error(
                "outbox.parked_as_dead_letter",
                event_id=row["event_id"],
                event_type=row["event_type"],
                attempts=attempts,
                error=reason,
            )
            await self._dead_letters.waiting()
            return
        log.warning("outbox.delivery_failed", row_id=row_id, attempts=attempts, error=str(error))

    async def run(self) -> None:
        while True:
            try:
                await self.publish_due()
                self._progressed_at = time.monotonic()
                await self._report_now_and_then()
            except BusUnavailable as error:
                log.warning("outbox.bus_unavailable", error=str(error))
                # The lag must keep growing on the gauges while the broker is away; a lost
                # database as well shows in the next pass's log.
                with contextlib.suppress(Exception):
                    await self._report_now_and_then()
            except Exception:  # a lost database must not end the relay
                log.exception("outbox.relay_failed")
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
                # Let the commits of the next few milliseconds join this batch: under load one
                # claim and one mark then carry many events instead of one each.
                await asyncio.sleep(self._gather_seconds)
            self._wake.clear()

    def start(self) -> None:
        if self._task is None:
            self._progressed_at = time.monotonic()
            self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Stop after publishing what is committed, so nothing waits for the next start.

        The loop finishes the pass it is in (a cancelled pass would leave its batch leased),
        then one more pass takes what was committed meanwhile; after `drain_seconds` the
        relay stops anyway and the rest waits for the next start."""
        deadline = asyncio.get_running_loop().time() + drain_seconds
        try:
            async with asyncio.timeout_at(deadline):
                if self._task is not None:
                    self._stopping = True
                    self._wake.set()
                    await asyncio.shield(self._task)
                await self.publish_due()
        except TimeoutError:
            log.warning("outbox.drain_unfinished", drain_seconds=drain_seconds)
        except Exception:  # a lost database: what is left waits for the next start
            log.exception("outbox.drain_failed")
        finally:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None
            self._stopping = False
