"""Batch reservations that decide before they lock (PostgreSQL): other buyers who move the
stock in between either leave the decision standing or undo the whole batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.modules.inventory.domain import OutOfStock
from colonnade.modules.inventory.service import InventoryService, Reservation, StockMoved
from tests.conftest import count_rows

START = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def inventory(db: Database) -> InventoryService:
    if db.is_sqlite:
        pytest.skip("SQLite's one writer holds the whole database: nothing moves in between")
    return InventoryService(db, clock=SettableClock(START), reservation_ttl=timedelta(minutes=15))


async def test_a_batch_whose_stock_was_taken_before_it_locked_is_undone_whole(
    db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("HOT", 3)
    async with db.transaction() as uow:
        decided = await inventory.reserve_batch(
            uow, [("co-1", [("HOT", 2)]), ("co-2", [("HOT", 1)])], optimistic=True
        )
        assert all(isinstance(r, Reservation) for r in decided)
        # Another buyer takes a unit while this batch has decided but not yet locked.
        await inventory.reserve("elsewhere", [("HOT", 1)])
        with pytest.raises(StockMoved):
            await uow.commit()
    level = await inventory.stock("HOT")
    assert (level.reserved, level.available) == (1, 2)
    assert await count_rows(db, "inventory_reservations") == 1


async def test_a_batch_whose_decision_still_holds_when_it_locks_goes_through(
    db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("HOT", 100)
    async with db.transaction() as uow:
        decided = await inventory.reserve_batch(
            uow, [("co-1", [("HOT", 2)]), ("co-2", [("HOT", 5)])], optimistic=True
        )
        await inventory.reserve("elsewhere", [("HOT", 1)])
        await uow.commit()
    assert [r.lines[0].quantity for r in decided if isinstance(r, Reservation)] == [2, 5]
    level = await inventory.stock("HOT")
    assert (level.reserved, level.available) == (8, 92)
    assert await count_rows(db, "inventory_reservations") == 3


async def test_a_refusal_decided_early_is_undone_when_the_stock_came_back(
    db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("HOT", 1)
    earlier = await inventory.reserve("elsewhere", [("HOT", 1)])
    async with db.transaction() as uow:
        decided = await inventory.reserve_batch(uow, [("co-1", [("HOT", 1)])], optimistic=True)
        assert isinstance(decided[0], OutOfStock)
        # The earlier buyer lets go: "sold out" would now be a wrong answer.
        await inventory.release(earlier.id)
        with pytest.raises(StockMoved):
            await uow.commit()
    assert (await inventory.stock("HOT")).available == 1
