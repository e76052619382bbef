"""The inbox: a consumer takes each event once in effect, however often it is delivered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import select

from colonnade.kernel.bus import Handler
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope
from colonnade.kernel.schema import inbox
from colonnade.kernel.uow import UnitOfWork

ConsumerHandler = Callable[[Envelope, UnitOfWork], Awaitable[None]]


def guard(db: Database, consumer: str, handler: ConsumerHandler) -> Handler:
    """Wrap `handler` so its writes and the inbox mark commit together, once per event."""

    async def deliver(envelope: Envelope) -> None:
        async with db.transaction() as uow:
            seen = await uow.execute(
                select(inbox.c.event_id).where(
                    inbox.c.consumer == consumer, inbox.c.event_id == envelope.event_id
                )
            )
            if seen.first() is not None:
                return
            await uow.execute(
                inbox.insert().values(
                    consumer=consumer, event_id=envelope.event_id, processed_at=datetime.now(UTC)
                )
            )
            await handler(envelope, uow)
            await uow.commit()

    return deliver


def once(db: Database, consumer: str, handler: Callable[[Envelope], Awaitable[object]]) -> Handler:
    """Mark an event taken only after `handler` succeeded, for handlers that act through
    other modules' services (their own transactions) and are idempotent in every effect:
    a crash between the work and the mark repeats harmless work, never skips it."""

    async def deliver(envelope: Envelope) -> None:
        async with db.reading() as conn:
            seen = await conn.execute(
                select(inbox.c.event_id).where(
                    inbox.c.consumer == consumer, inbox.c.event_id == envelope.event_id
                )
            )
            if seen.first() is not None:
                return
        await handler(envelope)
        async with db.transaction() as uow:
            marked = await uow.execute(
                select(inbox.c.event_id).where(
                    inbox.c.consumer == consumer, inbox.c.event_id == envelope.event_id
                )
            )
            if marked.first() is None:
                await uow.execute(
                    inbox.insert().values(
                        consumer=consumer,
                        event_id=envelope.event_id,
                        processed_at=datetime.now(UTC),
                    )
                )
            await uow.commit()

    return deliver
