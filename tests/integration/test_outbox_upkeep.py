"""Keeping the outbox and inbox healthy: a row a dead relay held is published by another, a
poison event is parked after its last attempt, and old rows are pruned in batches."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import insert, select, update

from colonnade.app import Shop
from colonnade.kernel.bus import InProcessBus
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope, Event
from colonnade.kernel.outbox import OutboxRelay
from colonnade.kernel.pruning import Pruning
from colonnade.kernel.schema import dead_letters, inbox, outbox
from colonnade.kernel.settings import Settings
from tests.integration.storefront import PASSWORD, SECRET, client, started

DEADLINE_SECONDS = 60


@dataclass(frozen=True)
class ParcelShipped(Event):
    event_type = "test.ParcelShipped"
    parcel: str


async def ship(db: Database, parcel: str) -> None:
    async with db.transaction() as uow:
        uow.record(ParcelShipped(parcel=parcel))
        await uow.commit()


async def rows(db: Database, table: Any) -> list[dict[str, Any]]:
    async with db.reading() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]


async def time_passes(db: Database) -> None:
    """Every waiting event is due now, as if its back-off had run out."""
    async with db.transaction() as uow:
        await uow.execute(
            update(outbox)
            .where(outbox.c.published_at.is_(None))
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await uow.commit()


async def test_an_event_a_dead_relay_held_is_published_once_its_lease_runs_out(
    db: Database,
) -> None:
    taken = asyncio.Event()

    async def hang(_: Envelope) -> None:
        taken.set()
        await asyncio.Event().wait()

    doomed_bus = InProcessBus()
    doomed_bus.subscribe(ParcelShipped.event_type, "mailer", hang)
    doomed = OutboxRelay(db, doomed_bus, lease=timedelta(seconds=5))
    await ship(db, "P-1")
    dying = asyncio.create_task(doomed.publish_due())
    await asyncio.wait_for(taken.wait(), DEADLINE_SECONDS)
    dying.cancel()  # the process dies mid-delivery: no mark, no retry bookkeeping
    with contextlib.suppress(asyncio.CancelledError):
        await dying

    delivered: list[str] = []

    async def mail(envelope: Envelope) -> None:
        delivered.append(envelope.open(ParcelShipped).parcel)

    bus = InProcessBus()
    bus.subscribe(ParcelShipped.event_type, "mailer", mail)
    heir = OutboxRelay(db, bus, lease=timedelta(seconds=5))
    assert await heir.publish_due() == 0, "the dead relay's lease still holds the row"
    deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
    while not delivered and asyncio.get_running_loop().time() < deadline:
        await heir.publish_due()
        await asyncio.sleep(0.5)

    assert delivered == ["P-1"]
    assert await heir.pending() == 0


async def test_a_poison_event_is_parked_after_its_last_attempt_and_not_retried(
    db: Database,
) -> None:
    calls: list[str] = []

    async def broken(envelope: Envelope) -> None:
        calls.append(envelope.event_id)
        raise RuntimeError("template missing")

    async def fine(_: Envelope) -> None:
        pass

    bus = InProcessBus()
    bus.subscribe(ParcelShipped.event_type, "mailer", broken)
    bus.subscribe(ParcelShipped.event_type, "analytics", fine)
    relay = OutboxRelay(db, bus, max_attempts=3)
    await ship(db, "P-1")
    for _ in range(2):
        assert await relay.publish_due() == 0
        await time_passes(db)
    assert await rows(db, dead_letters) == [], "two failures of three: still retried"
    await ship(db, "P-2")
    # P-1 fails for the third time, P-2 for the first: failures count per event.
    assert await relay.publish_due() == 0
    first, second = calls[0], calls[-1]

    [parked] = await rows(db, dead_letters)
    assert parked["event_id"] == first
    assert parked["event_type"] == ParcelShipped.event_type
    assert parked["payload"] == {"parcel": "P-1"}
    assert parked["attempts"] == 3
    assert parked["consumers"] == "mailer"
    assert "template missing" in parked["last_error"]
    assert [r["event_id"] for r in await rows(db, outbox)] == [second]
    assert REGISTRY.get_sample_value("colonnade_dead_letters") == 1

    await time_passes(db)
    await relay.publish_due()
    assert calls.count(first) == 3, "a parked event is not offered again"
    assert calls.count(second) == 2


async def test_pruning_deletes_only_old_published_events_and_old_inbox_marks(
    db: Database,
) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=10), now - timedelta(days=1)

    def event(name: str, published_at: datetime | None) -> dict[str, Any]:
        return {
            "event_id": name,
            "event_type": ParcelShipped.event_type,
            "payload": {"parcel": name},
            "headers": {},
            "occurred_at": old,
            "published_at": published_at,
            "next_attempt_at": old,
            "attempts": 0,
        }

    async with db.transaction() as uow:
        await uow.execute(
            insert(outbox),
            [event(f"old-{n}", old) for n in range(5)]
            + [event("recent", recent), event("never-published", None)],
        )
        await uow.execute(
            insert(inbox),
            [{"consumer": "mailer", "event_id": f"old-{n}", "processed_at": old} for n in range(5)]
            + [
                {"consumer": "mailer", "event_id": "recent", "processed_at": recent},
                {"consumer": "analytics", "event_id": "parked", "processed_at": old},
                {"consumer": "analytics", "event_id": "never-published", "processed_at": old},
            ],
        )
        await uow.execute(
            insert(dead_letters).values(
                event_id="parked",
                event_type=ParcelShipped.event_type,
                payload={},
                headers={},
                occurred_at=old,
                attempts=10,
                parked_at=old,
            )
        )
        await uow.commit()
    pruning = Pruning(
        db,
        outbox_retention=timedelta(days=7),
        inbox_retention=timedelta(days=7),
        batch_size=2,
    )

    assert await pruning.prune_outbox() == 5
    assert await pruning.prune_inbox() == 5

    assert sorted(r["event_id"] for r in await rows(db, outbox)) == ["never-published", "recent"]
    # Marks of events parked or still to be delivered stay: their delivery must find them.
    assert sorted(r["event_id"] for r in await rows(db, inbox)) == [
        "never-published",
        "parked",
        "recent",
    ]
    assert await pruning.prune_outbox() == 0
    assert await pruning.prune_inbox() == 0


async def test_operators_see_the_parked_events_over_http(database_url: str) -> None:
    settings = Settings(database_url=database_url, secret_key=SECRET, outbox_max_attempts=2)
    async with started(settings) as app, client(app) as http:
        shop: Shop = app.state.shop

        async def refuse(_: Envelope) -> None:
            raise RuntimeError("carrier API down")

        shop.bus.subscribe(ParcelShipped.event_type, "tracking", refuse)
        await ship(shop.db, "P-1")
        deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
        while not await rows(shop.db, dead_letters):
            assert asyncio.get_running_loop().time() < deadline, "the relay never parked it"
            await time_passes(shop.db)
            await asyncio.sleep(0.2)
        await shop.identity.create_staff("ops@shop.test", PASSWORD, roles=["operator"])
        token = await http.post(
            "/auth/token", data={"username": "ops@shop.test", "password": PASSWORD}
        )

        listed = await http.get(
            "/admin/dead-letters",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )

    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["parked"] == 1
    [letter] = body["dead_letters"]
    assert letter["event_type"] == ParcelShipped.event_type
    assert letter["consumers"] == "tracking"
    assert "carrier API down" in letter["last_error"]
