"""The inbox: a consumer takes each event once in effect, however often it is delivered.

Each form comes for a batch of events and for one event. A batch costs one statement to
find or make the marks of all its events, whatever its size; its handler is called once,
with the events not yet taken, in their order, and not at all when every one was taken.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from colonnade.kernel.bulk import insert_rows
from colonnade.kernel.bus import BatchHandler, Handler
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope
from colonnade.kernel.schema import inbox
from colonnade.kernel.uow import UnitOfWork

ConsumerHandler = Callable[[Envelope, UnitOfWork], Awaitable[None]]
BatchConsumerHandler = Callable[[Sequence[Envelope], UnitOfWork], Awaitable[None]]


def guard_batch(db: Database, consumer: str, handler: BatchConsumerHandler) -> BatchHandler:
    """Wrap `handler` so its writes and the inbox marks of its events commit together: one
    transaction per batch. Marking comes first, so a redelivery running at the same time
    waits for this one's commit and then finds its events taken."""

    async def deliver(envelopes: Sequence[Envelope]) -> None:
        async with db.transaction() as uow:
            marked = set(await _mark(uow, consumer, envelopes))
            untaken = [e for e in envelopes if e.event_id in marked]
            if not untaken:
                return
            await handler(untaken, uow)
            await uow.commit()

    return deliver


def guard(db: Database, consumer: str, handler: ConsumerHandler) -> Handler:
    """`guard_batch` for a handler that takes one event at a time."""

    async def each(envelopes: Sequence[Envelope], uow: UnitOfWork) -> None:
        for envelope in envelopes:
            await handler(envelope, uow)

    return _one_at_a_time(guard_batch(db, consumer, each))


def once_batch(
    db: Database, consumer: str, handler: Callable[[Sequence[Envelope]], Awaitable[object]]
) -> BatchHandler:
    """Mark events taken only after `handler` succeeded with them, for handlers that act
    through other modules' services (their own transactions) and are idempotent in every
    effect: a crash between the work and the marks repeats harmless work, never skips it."""

    async def deliver(envelopes: Sequence[Envelope]) -> None:
        async with db.reading() as conn:
            taken = set(
                (
                    await conn.execute(
                        select(inbox.c.event_id).where(
                            inbox.c.consumer == consumer,
                            inbox.c.event_id.in_([e.event_id for e in envelopes]),
                        )
                    )
                )
                .scalars()
                .all()
            )
        untaken = [e for e in envelopes if e.event_id not in taken]
        if not untaken:
            return
        await handler(untaken)
        async with db.transaction() as uow:
            await _mark(uow, consumer, untaken)
            await uow.commit()

    return deliver


def once(db: Database, consumer: str, handler: Callable[[Envelope], Awaitable[object]]) -> Handler:
    """`once_batch` for a handler that takes one event at a time."""

    async def each(envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            await handler(envelope)

    return _one_at_a_time(once_batch(db, consumer, each))


def _one_at_a_time(deliver_batch: BatchHandler) -> Handler:
    async def deliver(envelope: Envelope) -> None:
        await deliver_batch([envelope])

    return deliver


async def _mark(uow: UnitOfWork, consumer: str, envelopes: Sequence[Envelope]) -> list[str]:
    """Mark the events taken; the ids of those this marked (a mark already there, made
    before or by a delivery running at the same time, is left as it is)."""
    marks = _marks(consumer, envelopes)
    return await insert_rows(
        uow, inbox, marks, skip_conflicts_on=("consumer", "event_id"), returning="event_id"
    )


def _marks(consumer: str, envelopes: Sequence[Envelope]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    # dict.fromkeys: a batch naming one event twice marks it once.
    return [
        {"consumer": consumer, "event_id": event_id, "processed_at": now}
        for event_id in dict.fromkeys(e.event_id for e in envelopes)
    ]
