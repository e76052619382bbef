"""The relay publishes in batches and consumers take them whole: one call and one transaction
per batch, one poison event failing alone, a redelivered batch taken once, and a cost in
statements that does not grow with the batch."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select, update

from colonnade.app import Shop, assemble
from colonnade.kernel.bus import InProcessBus
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope, Event
from colonnade.kernel.inbox import guard_batch, once_batch
from colonnade.kernel.money import Money
from colonnade.kernel.outbox import OutboxRelay
from colonnade.kernel.schema import dead_letters, outbox
from colonnade.kernel.settings import Settings
from colonnade.kernel.uow import UnitOfWork
from colonnade.modules.orders.service import NewOrder, OrderLine
from tests.conftest import statements_run
from tests.integration.storefront import SECRET

labels = Table(
    "test_labels",
    MetaData(),
    Column("parcel", String(50), primary_key=True),
)


@dataclass(frozen=True)
class ParcelPacked(Event):
    event_type = "test.ParcelPacked"
    parcel: str


@dataclass(frozen=True)
class ParcelWeighed(Event):
    event_type = "test.ParcelWeighed"
    parcel: str


@pytest.fixture
async def labels_db(db: Database) -> Database:
    async with db.transaction() as uow:
        await uow.connection.run_sync(lambda c: labels.create(c, checkfirst=True))
        await uow.commit()
    return db


async def record(db: Database, *events: Event) -> None:
    async with db.transaction() as uow:
        for each in events:
            uow.record(each)
        await uow.commit()


def parcels(envelopes: Sequence[Envelope]) -> list[str]:
    return [e.payload["parcel"] for e in envelopes]


async def printed_labels(db: Database) -> list[str]:
    async with db.reading() as conn:
        return sorted((await conn.execute(select(labels.c.parcel))).scalars())


async def time_passes(db: Database) -> None:
    """Every waiting event is due now, as if its back-off had run out."""
    async with db.transaction() as uow:
        await uow.execute(
            update(outbox)
            .where(outbox.c.published_at.is_(None))
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await uow.commit()


class LabelPrinter:
    """A consumer that takes batches through its inbox, prints a label per parcel (a row it
    writes in the batch's transaction) and cannot print the one named `poison`."""

    def __init__(self, db: Database, poison: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.poison = poison
        self.deliver = guard_batch(db, "label-printer", self.print_labels)

    async def print_labels(self, packed: Sequence[Envelope], uow: UnitOfWork) -> None:
        self.batches.append(parcels(packed))
        await uow.execute(insert(labels), [{"parcel": p} for p in parcels(packed)])
        if self.poison in parcels(packed):
            raise RuntimeError(f"no label fits {self.poison}")

    def taken(self) -> list[str]:
        return [parcel for batch in self.batches for parcel in batch]


async def test_a_batch_reaches_each_consumer_in_one_call(labels_db: Database) -> None:
    printer = LabelPrinter(labels_db)
    weighed: list[list[str]] = []
    one_by_one: list[str] = []

    async def scale(envelopes: Sequence[Envelope]) -> None:
        weighed.append(parcels(envelopes))

    async def watch(envelope: Envelope) -> None:
        one_by_one.append(envelope.payload["parcel"])

    bus = InProcessBus()
    bus.subscribe_batch(ParcelPacked.event_type, "label-printer", printer.deliver)
    bus.subscribe_batch(ParcelWeighed.event_type, "scale", scale)
    bus.subscribe(ParcelPacked.event_type, "watcher", watch)
    packed = [f"P-{n}" for n in range(5)]
    for parcel in packed:
        await record(labels_db, ParcelPacked(parcel=parcel), ParcelWeighed(parcel=parcel))

    assert await OutboxRelay(labels_db, bus).publish_due() == 10

    assert printer.batches == [packed]
    assert weighed == [packed]
    assert one_by_one == packed, "a handler of single events still gets them one at a time"
    assert await printed_labels(labels_db) == packed


async def test_a_poison_event_fails_alone_and_its_neighbours_are_taken_once(
    labels_db: Database,
) -> None:
    printer = LabelPrinter(labels_db, poison="P-2")
    bus = InProcessBus()
    bus.subscribe_batch(ParcelPacked.event_type, "label-printer", printer.deliver)
    relay = OutboxRelay(labels_db, bus, max_attempts=2)
    packed = [f"P-{n}" for n in range(5)]
    for parcel in packed:
        await record(labels_db, ParcelPacked(parcel=parcel))

    assert await relay.publish_due() == 4
    # The batch failed whole, then each event was offered alone: only the poison failed.
    assert printer.batches == [packed] + [[p] for p in packed]
    assert await printed_labels(labels_db) == ["P-0", "P-1", "P-3", "P-4"]
    async with labels_db.reading() as conn:
        [waiting] = (
            (await conn.execute(select(outbox).where(outbox.c.published_at.is_(None))))
            .mappings()
            .all()
        )
    assert waiting["payload"] == {"parcel": "P-2"}
    assert waiting["attempts"] == 1
    assert "label-printer: RuntimeError: no label fits P-2" in waiting["last_error"]

    await time_passes(labels_db)
    assert await relay.publish_due() == 0
    async with labels_db.reading() as conn:
        [parked] = (await conn.execute(select(dead_letters))).mappings().all()
    assert parked["payload"] == {"parcel": "P-2"}
    assert parked["attempts"] == 2
    assert parked["consumers"] == "label-printer"
    assert printer.taken().count("P-2") == 3
    assert all(printer.taken().count(p) == 2 for p in ("P-0", "P-1", "P-3", "P-4"))
    assert await printed_labels(labels_db) == ["P-0", "P-1", "P-3", "P-4"]


def envelopes_of(*names: str) -> list[Envelope]:
    return [
        Envelope(
            event_type=ParcelPacked.event_type,
            payload={"parcel": name},
            occurred_at=datetime.now(UTC),
            event_id=f"event-{name}",
        )
        for name in names
    ]


async def test_a_redelivered_batch_is_taken_once_in_one_transaction(labels_db: Database) -> None:
    printer = LabelPrinter(labels_db)

    await printer.deliver(envelopes_of("P-1", "P-2"))
    await printer.deliver(envelopes_of("P-1", "P-2"))
    await printer.deliver(envelopes_of("P-2", "P-3", "P-1"))

    assert printer.batches == [["P-1", "P-2"], ["P-3"]]
    assert await printed_labels(labels_db) == ["P-1", "P-2", "P-3"]


async def test_a_failed_batch_leaves_no_mark_and_no_write(labels_db: Database) -> None:
    printer = LabelPrinter(labels_db, poison="P-2")

    with pytest.raises(RuntimeError):
        await printer.deliver(envelopes_of("P-1", "P-2"))
    await printer.deliver(envelopes_of("P-1"))

    assert printer.batches == [["P-1", "P-2"], ["P-1"]]
    assert await printed_labels(labels_db) == ["P-1"]


async def test_an_idempotent_batch_handler_is_marked_only_after_it_succeeded(
    db: Database,
) -> None:
    settled: list[list[str]] = []
    provider_up = False

    async def settle(envelopes: Sequence[Envelope]) -> None:
        if not provider_up:
            raise RuntimeError("payment provider down")
        settled.append(parcels(envelopes))

    deliver = once_batch(db, "settler", settle)
    with pytest.raises(RuntimeError):
        await deliver(envelopes_of("P-1", "P-2"))
    provider_up = True
    await deliver(envelopes_of("P-1", "P-2"))
    await deliver(envelopes_of("P-1", "P-2", "P-3"))
    await deliver(envelopes_of("P-3"))

    assert settled == [["P-1", "P-2"], ["P-3"]]


# --- what a batch costs ------------------------------------------------------------------


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[Shop]:
    """The shop with its consumers, its relay not running: the test drives it."""
    shop = assemble(Settings(database_url=database_url, secret_key=SECRET))
    await shop.keyring.load()
    yield shop
    await shop.db.dispose()


async def pay_orders(shop: Shop, count: int) -> list[str]:
    """Orders placed and paid, each leaving OrderPlaced and OrderPaid in the outbox."""
    usd = "USD"
    paid = []
    for _ in range(count):
        line = OrderLine("MUG-RED", "Red mug", 2, Money(1200, usd), Money(2400, usd), Money(0, usd))
        placed = await shop.orders.place(
            NewOrder(
                checkout_id=f"chk-{uuid.uuid4().hex}",
                email="ada@example.com",
                market="US",
                currency=usd,
                tax_inclusive=False,
                lines=[line],
                shipping=Money(500, usd),
                shipping_address={"name": "Ada", "line1": "1 Row", "country": "US"},
            )
        )
        await shop.orders.mark_paid(placed.order.id, placed.order.total)
        paid.append(placed.order.id)
    return paid


async def publish_counting(shop: Shop, orders: int) -> int:
    """The statements the relay and its consumers run to publish `orders` paid orders."""
    paid = await pay_orders(shop, orders)
    before = statements_run()
    assert await shop.relay.publish_due() == 2 * orders
    statements = statements_run() - before
    for order_id in paid:
        assert len(await shop.notifications.sent_for_order(order_id)) == 1
    return statements


async def test_a_batch_of_confirmations_costs_the_same_statements_as_one(shop: Shop) -> None:
    one = await publish_counting(shop, 1)
    forty = await publish_counting(shop, 40)

    assert forty == one
    # Claim (select, lease), the confirmations' consumer (marks, orders with their lines,
    # their history, messages), analytics' (marks and facts, for each of the two event
    # types), the mark of the batch: a handful, whatever the batch's size.
    assert one <= 11
