"""Dead letters: events the relay gave up delivering, parked until an operator replays them.

A poison message (one every delivery of which fails) would otherwise be retried forever and
fill the logs; parked, it waits, with its last error, for the fault to be fixed. Replaying
puts it back into the outbox under its own event id, so consumers that took it before it was
parked still recognise it in their inbox and take it only once.

On the in-process bus the relay parks an event that a consumer keeps refusing; on a broker
the consumer parks it itself, under its own name, once the broker has delivered it too often.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from colonnade.kernel.clock import Clock, SystemClock
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope
from colonnade.kernel.metrics import DEAD_LETTERS
from colonnade.kernel.schema import dead_letters, outbox
from colonnade.kernel.uow import UnitOfWork


@dataclass(frozen=True)
class DeadLetter:
    id: int
    event_id: str
    event_type: str
    consumers: str | None
    last_error: str | None
    attempts: int
    occurred_at: datetime
    parked_at: datetime


# Set on a replayed event: a broker that drops repeats of an event id within a window must
# take the replay as a new message.
REPLAY_HEADER = "colonnade-replay"


class DeadLetters:
    def __init__(self, db: Database, *, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock or SystemClock()

    async def park(
        self,
        uow: UnitOfWork,
        row: Mapping[str, Any],
        *,
        attempts: int,
        error: str,
        consumers: Sequence[str] | None,
    ) -> None:
        """Move an outbox row here, within the caller's transaction."""
        await uow.execute(
            insert(dead_letters).values(
                event_id=row["event_id"],
                event_type=row["event_type"],
                payload=row["payload"],
                headers=row["headers"],
                occurred_at=row["occurred_at"],
                consumers=", ".join(consumers) if consumers else None,
                last_error=error,
                attempts=attempts,
                parked_at=self._clock.now(),
            )
        )
        await uow.execute(delete(outbox).where(outbox.c.id == row["id"]))

    async def park_delivery(
        self, envelope: Envelope, *, consumer: str, attempts: int, error: str
    ) -> None:
        """Park an event that `consumer` took from a broker and kept refusing. When another
        consumer parked it already, this one joins it: one replay serves both."""
        async with self._db.transaction() as uow:
            statement = _upsert(uow, dead_letters).values(
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                payload=envelope.payload,
                headers=envelope.headers,
                occurred_at=envelope.occurred_at,
                consumers=consumer,
                last_error=error,
                attempts=attempts,
                parked_at=self._clock.now(),
            )
            await uow.execute(
                statement.on_conflict_do_update(
                    index_elements=[dead_letters.c.event_id],
                    set_={
                        "consumers": dead_letters.c.consumers + ", " + statement.excluded.consumers,
                        "last_error": statement.excluded.last_error,
                    },
                )
            )
            await uow.commit()
        await self.waiting()

    async def waiting(self) -> int:
        """How many are parked; the colonnade_dead_letters gauge follows."""
        async with self._db.reading() as conn:
            count = int(await conn.scalar(select(func.count()).select_from(dead_letters)) or 0)
        DEAD_LETTERS.set(count)
        return count

    async def parked(self, limit: int = 1000) -> list[DeadLetter]:
        """The oldest parked first."""
        async with self._db.reading() as conn:
            rows = await conn.execute(select(dead_letters).order_by(dead_letters.c.id).limit(limit))
            return [
                DeadLetter(
                    id=r.id,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    consumers=r.consumers,
                    last_error=r.last_error,
                    attempts=r.attempts,
                    occurred_at=r.occurred_at,
                    parked_at=r.parked_at,
                )
                for r in rows
            ]

    async def replay(
        self,
        ids: Sequence[int] | None = None,
        *,
        progress: Callable[[int], None] | None = None,
        batch_size: int = 100,
    ) -> int:
        """Put the given dead letters (all when `ids` is None) back into the outbox, due now,
        with a fresh count of attempts; returns how many. Unknown ids are passed over."""
        replayed = 0
        after = 0
        while True:
            query = select(dead_letters).where(dead_letters.c.id > after)
            if ids is not None:
                query = query.where(dead_letters.c.id.in_(list(ids)))
            query = query.order_by(dead_letters.c.id).limit(batch_size)
            async with self._db.transaction() as uow:
                rows = (await uow.execute(query.with_for_update())).mappings().all()
                if not rows:
                    break
                now = self._clock.now()
                # An event a broker's consumer parked is still in the outbox, published:
                # it is offered anew there.
                again = _upsert(uow, outbox)
                await uow.execute(
                    again.on_conflict_do_update(
                        index_elements=[outbox.c.event_id],
                        set_={
                            "headers": again.excluded.headers,
                            "published_at": None,
                            "next_attempt_at": again.excluded.next_attempt_at,
                            "attempts": 0,
                            "last_error": None,
                        },
                    ),
                    [
                        {
                            "event_id": r["event_id"],
                            "event_type": r["event_type"],
                            "payload": r["payload"],
                            "headers": {**(r["headers"] or {}), REPLAY_HEADER: str(r["id"])},
                            "occurred_at": r["occurred_at"],
                            "next_attempt_at": now,
                            "attempts": 0,
                        }
                        for r in rows
                    ],
                )
                await uow.execute(
                    delete(dead_letters).where(dead_letters.c.id.in_([r["id"] for r in rows]))
                )
                await uow.commit()
            after = rows[-1]["id"]
            replayed += len(rows)
            if progress is not None:
                progress(len(rows))
        await self.waiting()
        return replayed


def _upsert(uow: UnitOfWork, table: Table) -> Any:
    """An INSERT that can say what to do on a conflict, in the dialect of `uow`."""
    return postgresql.insert(table) if uow.on_postgresql else sqlite.insert(table)
