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
