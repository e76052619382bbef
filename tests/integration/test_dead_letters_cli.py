"""`colonnade dead-letters`: an operator lists the events the shop gave up on and, once the
fault is fixed, replays them; each is then delivered, and consumers that took it already
do not take it again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from colonnade.cli import cli
from colonnade.kernel import inbox
from colonnade.kernel.bus import InProcessBus
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope, Event
from colonnade.kernel.outbox import OutboxRelay
from colonnade.kernel.schema import dead_letters, outbox

T = TypeVar("T")
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class OrderConfirmed(Event):
    event_type = "test.OrderConfirmed"
    order: str


class Consumers:
    """A mailer that fails until fixed, and a bookkeeper that always works."""

    def __init__(self) -> None:
        self.mailer_works = False
        self.mailed: list[str] = []
        self.booked: list[str] = []

    def relay(self, db: Database) -> OutboxRelay:
        """The relay of a shop where both consumers take events through their inbox."""
        bus = InProcessBus()
        bus.subscribe(OrderConfirmed.event_type, "mailer", inbox.once(db, "mailer", self._mail))
        bus.subscribe(
            OrderConfirmed.event_type, "bookkeeper", inbox.once(db, "bookkeeper", self._book)
        )
        return OutboxRelay(db, bus, max_attempts=MAX_ATTEMPTS)

    async def _mail(self, envelope: Envelope) -> None:
        if not self.mailer_works:
            raise RuntimeError("SMTP relay refuses us")
        self.mailed.append(envelope.open(OrderConfirmed).order)

    async def _book(self, envelope: Envelope) -> None:
        self.booked.append(envelope.open(OrderConfirmed).order)


@pytest.fixture
def database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI reads its database from the environment, as an operator's shell gives it."""
    monkeypatch.setenv("COLONNADE_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "250")  # a wide terminal: table cells stay on one line
    return database_url


def against(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


async def fail_until_parked(db: Database, consumers: Consumers, orders: list[str]) -> list[str]:
    for order in orders:
        async with db.transaction() as uow:
            uow.record(OrderConfirmed(order=order))
            await uow.commit()
    relay = consumers.relay(db)
    for _ in range(MAX_ATTEMPTS):
        await relay.publish_due()
        async with db.transaction() as uow:  # the back-off runs out
            await uow.execute(
                update(outbox).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            await uow.commit()
    async with db.reading() as conn:
        return list((await conn.execute(select(dead_letters.c.event_id))).scalars())


def test_replayed_dead_letters_are_delivered_once_the_fault_is_fixed(database: str) -> None:
    shop = Consumers()
    parked = against(database, lambda db: fail_until_parked(db, shop, ["O-1", "O-2", "O-3"]))
    assert len(parked) == 3
    assert shop.booked == ["O-1", "O-2", "O-3"]
    assert shop.mailed == []

    listed = CliRunner().invoke(cli, ["dead-letters", "list"])

    assert listed.exit_code == 0, listed.output
    assert "3 parked" in listed.output
    for event_id in parked:
        assert event_id in listed.output
    assert "mailer" in listed.output
    assert "SMTP relay refuses us" in listed.output
    assert "bookkeeper" not in listed.output, "only the consumer that refused is named"

    replayed = CliRunner().invoke(cli, ["dead-letters", "replay", "--all"])

    assert replayed.exit_code == 0, replayed.output
    assert "replayed 3 events" in replayed.output
    shop.mailer_works = True
    delivered = against(database, lambda db: shop.relay(db).publish_due())
    assert delivered == 3
    assert sorted(shop.mailed) == ["O-1", "O-2", "O-3"]
    assert shop.booked == ["O-1", "O-2", "O-3"], "the bookkeeper's inbox kept it from repeating"
    assert "no dead letters" in CliRunner().invoke(cli, ["dead-letters", "list"]).output


def test_replay_takes_the_named_dead_letters_only(database: str) -> None:
    against(database, lambda db: fail_until_parked(db, Consumers(), ["O-1", "O-2"]))
    listed = against(database, _dead_letter_ids)

    replayed = CliRunner().invoke(cli, ["dead-letters", "replay", str(listed[0])])

    assert replayed.exit_code == 0, replayed.output
    assert against(database, _dead_letter_ids) == listed[1:]
    missing = CliRunner().invoke(cli, ["dead-letters", "replay", "999999"])
    assert missing.exit_code == 1
    assert "not parked" in missing.output
    neither = CliRunner().invoke(cli, ["dead-letters", "replay"])
    assert neither.exit_code == 2


async def _dead_letter_ids(db: Database) -> list[int]:
    async with db.reading() as conn:
        query = select(dead_letters.c.id).order_by(dead_letters.c.id)
        return list((await conn.execute(query)).scalars())
