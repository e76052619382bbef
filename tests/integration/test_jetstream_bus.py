"""The event bus on NATS JetStream: the outbox relay publishes into a real server's streams,
durable pull consumers take each event once in effect, a poison event is parked by the
consumer that refuses it and replays from the CLI, and a broker outage loses nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import nats
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from colonnade.cli import cli
from colonnade.kernel import inbox
from colonnade.kernel.db import Database
from colonnade.kernel.dead_letters import DeadLetters
from colonnade.kernel.events import Envelope, Event
from colonnade.kernel.jetstream import ACK_WAIT, JetStreamBus
from colonnade.kernel.outbox import OutboxRelay
from colonnade.kernel.schema import dead_letters, outbox
from colonnade.kernel.uow import UnitOfWork
from tests.conftest import OwnNats


@dataclass(frozen=True)
class ParcelSent(Event):
    event_type = "shipping.ParcelSent"
    parcel: str


class Consumers:
    """A mailer that refuses the parcels named in `refuse`, and a bookkeeper that takes all."""

    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.mailed: Counter[str] = Counter()
        self.booked: Counter[str] = Counter()
        self.mailer_calls: Counter[str] = Counter()

    def subscribe(self, bus: JetStreamBus, db: Database) -> None:
        bus.subscribe_batch(
            ParcelSent.event_type, "mailer.parcels", inbox.guard_batch(db, "mailer", self._mail)
        )
        bus.subscribe(ParcelSent.event_type, "bookkeeper", inbox.guard(db, "books", self._book))

    async def _mail(self, envelopes: list[Envelope], _: UnitOfWork) -> None:
        parcels = [e.open(ParcelSent).parcel for e in envelopes]
        self.mailer_calls.update(parcels)
        refused = self.refuse.intersection(parcels)
        if refused:
            raise RuntimeError(f"the mail server refuses {sorted(refused)}")
        self.mailed.update(parcels)

    async def _book(self, envelope: Envelope, _: UnitOfWork) -> None:
        self.booked[envelope.open(ParcelSent).parcel] += 1


def jetstream(url: str, db: Database, namespace: str, *, max_deliver: int = 5) -> JetStreamBus:
    return JetStreamBus(
        url, dead_letters=DeadLetters(db), namespace=namespace, max_deliver=max_deliver
    )


async def send(db: Database, *parcels: str) -> None:
    async with db.transaction() as uow:
        for parcel in parcels:
            uow.record(ParcelSent(parcel=parcel))
        await uow.commit()


async def eventually(check: Callable[[], Awaitable[bool] | bool], seconds: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        outcome = check()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("not within the time given")
        await asyncio.sleep(0.05)


async def stored_messages(url: str, stream: str) -> int:
    client = await nats.connect(url)
    try:
        return int((await client.jetstream().stream_info(stream)).state.messages)
    finally:
        await client.close()


async def unpublished(db: Database) -> int:
    async with db.reading() as conn:
        rows = await conn.execute(select(outbox.c.id).where(outbox.c.published_at.is_(None)))
        return len(rows.all())


async def test_every_event_reaches_every_consumer_once_and_a_repeat_is_stored_once(
    db: Database, nats_url: str, bus_namespace: str
) -> None:
    consumers = Consumers()
    bus = jetstream(nats_url, db, bus_namespace)
    consumers.subscribe(bus, db)
    await bus.open(consumes=lambda _: True)
    relay = OutboxRelay(db, bus)
    try:
        parcels = [f"P-{n}" for n in range(60)]
        await send(db, *parcels)
        assert await relay.publish_due() == 60
        # A relay that lost the stream's answer publishes the same events again.
        repeated = [
            Envelope(
                event_type=ParcelSent.event_type,
                payload={"parcel": "P-0"},
                occurred_at=datetime.now(UTC),
                event_id=(await _first_event_id(db)),
            )
        ]
        assert await bus.publish_batch(repeated) == [None]

        await eventually(lambda: sum(consumers.mailed.values()) == 60)
        await eventually(lambda: sum(consumers.booked.values()) == 60)
        await asyncio.sleep(0.5)  # time for a wrongly repeated delivery to arrive
    finally:
        await bus.close()
    assert consumers.mailed == Counter(parcels)
    assert consumers.booked == Counter(parcels)
    assert await stored_messages(nats_url, f"{bus_namespace}_SHIPPING".upper()) == 60
    assert await unpublished(db) == 0


async def _first_event_id(db: Database) -> str:
    async with db.reading() as conn:
        return str(await conn.scalar(select(outbox.c.event_id).order_by(outbox.c.id).limit(1)))


async def test_a_poison_event_is_parked_by_the_consumer_that_refuses_it_and_replays(
    database_url: str, nats_url: str, bus_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(database_url)
    consumers = Consumers()
    consumers.refuse = {"P-poison"}
    bus = jetstream(nats_url, db, bus_namespace, max_deliver=2)
    consumers.subscribe(bus, db)
    await bus.open(consumes=lambda _: True)
    relay = OutboxRelay(db, bus)
    try:
        await send(db, "P-1", "P-poison", "P-2")
        assert await relay.publish_due() == 3

        async def parked() -> bool:
            async with db.reading() as conn:
                return bool((await conn.execute(select(dead_letters))).first())

        # About one run in eight the client library loses the second delivery of the refused
        # event (a race in its fetch, not yet pinned down): the broker then delivers it again
        # after ACK_WAIT, and the consumer parks it as delivered without an answer. The event
        # is parked either way; only how it got there differs.
        await eventually(parked, seconds=ACK_WAIT.total_seconds() + 15)
        assert consumers.mailed == Counter({"P-1": 1, "P-2": 1}), "its neighbours went through"
        assert consumers.booked == Counter({"P-1": 1, "P-poison": 1, "P-2": 1})
        async with db.reading() as conn:
            [letter] = (await conn.execute(select(dead_letters))).mappings().all()
        assert letter["consumers"] == "mailer.parcels", "named by the consumer that refused it"
        assert (letter["attempts"], letter["last_error"]) == (
            3,
            "delivered without an answer",
        ) or (
            letter["attempts"] == 2
            and "the mail server refuses ['P-poison']" in letter["last_error"]
        ), letter
        assert letter["payload"] == {"parcel": "P-poison"}
        refused_deliveries = consumers.mailer_calls["P-poison"]

        # The operator fixes the mail server and replays from the command line.
        consumers.refuse = set()
        monkeypatch.setenv("COLONNADE_DATABASE_URL", database_url)
        replayed = await asyncio.to_thread(
            CliRunner().invoke, cli, ["dead-letters", "replay", "--all"]
        )
        assert replayed.exit_code == 0, replayed.output
        assert "replayed 1 events" in replayed.output
        assert await relay.publish_due() == 1

        await eventually(lambda: consumers.mailed["P-poison"] == 1)
        await asyncio.sleep(0.5)
    finally:
        await bus.close()
        await db.dispose()
    assert consumers.mailer_calls["P-poison"] == refused_deliveries + 1
    assert consumers.booked["P-poison"] == 1, "the bookkeeper's inbox kept the replay out"


async def test_events_wait_in_the_outbox_while_nats_is_down_and_none_is_lost_or_doubled(
    db: Database, own_nats: OwnNats, bus_namespace: str
) -> None:
    consumers = Consumers()
    bus = jetstream(own_nats.url, db, bus_namespace)
    consumers.subscribe(bus, db)
    await bus.open(consumes=lambda _: True)
    relay = OutboxRelay(db, bus, poll_seconds=0.2)
    relay.start()
    try:
        await send(db, *(f"A-{n}" for n in range(20)))
        await eventually(lambda: sum(consumers.mailed.values()) == 20)

        own_nats.stop()
        for n in range(30):
            await send(db, f"B-{n}")
        await eventually(lambda: _not_ok(bus))
        await asyncio.sleep(2)  # the relay tries, and finds the broker away
        assert await unpublished(db) == 30
        assert "NATS" in await bus.health()

        own_nats.start()
        await eventually(lambda: sum(consumers.mailed.values()) == 50, seconds=40)
        await eventually(lambda: sum(consumers.booked.values()) == 50, seconds=40)
        await asyncio.sleep(1)
    finally:
        await relay.stop()
        await bus.close()
    expected = Counter([f"A-{n}" for n in range(20)] + [f"B-{n}" for n in range(30)])
    assert consumers.mailed == expected
    assert consumers.booked == expected
    assert await unpublished(db) == 0
    async with db.reading() as conn:
        assert (await conn.execute(select(dead_letters))).first() is None, "an outage is no poison"
        attempts = (await conn.execute(select(outbox.c.attempts))).scalars().all()
    assert set(attempts) == {0}, "the outage counted against no event"


async def _not_ok(bus: JetStreamBus) -> bool:
    return await bus.health() != "ok"
