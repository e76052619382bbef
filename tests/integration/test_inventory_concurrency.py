"""The flash sale: many buyers at once, never one unit more than the shelf holds.

Each reserve call runs in its own transaction; on PostgreSQL the pool is large enough that
the calls really overlap on the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.modules.inventory.domain import OutOfStock
from colonnade.modules.inventory.service import InventoryService, Reservation
from tests.conftest import count_rows


@pytest.fixture
async def busy_db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=20)
    yield database
    await database.dispose()


@pytest.fixture
def inventory(busy_db: Database) -> InventoryService:
    return InventoryService(busy_db, clock=SettableClock(datetime(2025, 11, 28, tzinfo=UTC)))


async def attempt(
    inventory: InventoryService, reference: str, lines: list[tuple[str, int]]
) -> Reservation | OutOfStock:
    try:
        return await inventory.reserve(reference, lines)
    except OutOfStock as sold_out:
        return sold_out


async def test_a_flash_sale_sells_exactly_the_stock(
    busy_db: Database, inventory: InventoryService
) -> None:
    stock, buyers = 25, 200
    await inventory.set_on_hand("LAST-HUNDRED", stock)

    outcomes = await asyncio.gather(
        *(attempt(inventory, f"cart-{i}", [("LAST-HUNDRED", 1)]) for i in range(buyers))
    )

    won = [o for o in outcomes if isinstance(o, Reservation)]
    sold_out = [o for o in outcomes if isinstance(o, OutOfStock)]
    assert len(won) == stock
    assert len(sold_out) == buyers - stock
    assert all(o.sku == "LAST-HUNDRED" and o.available == 0 for o in sold_out)
    level = await inventory.stock("LAST-HUNDRED")
    assert (level.on_hand, level.reserved, level.available) == (stock, stock, 0)
    assert await count_rows(busy_db, "inventory_reservations") == stock
    assert await inventory.check_ledger() == []


async def test_carts_wanting_the_same_skus_in_opposite_orders_neither_deadlock_nor_oversell(
    busy_db: Database, inventory: InventoryService
) -> None:
    stock, buyers = 30, 120
    await inventory.set_on_hand("MUG", stock)
    await inventory.set_on_hand("TEE", stock)

    def lines(i: int) -> list[tuple[str, int]]:
        return [("MUG", 1), ("TEE", 1)] if i % 2 else [("TEE", 1), ("MUG", 1)]

    outcomes = await asyncio.gather(
        *(attempt(inventory, f"cart-{i}", lines(i)) for i in range(buyers))
    )

    assert sum(isinstance(o, Reservation) for o in outcomes) == stock
    assert sum(isinstance(o, OutOfStock) for o in outcomes) == buyers - stock
    assert await inventory.availability(["MUG", "TEE"]) == {"MUG": 0, "TEE": 0}
    assert (await inventory.stock("MUG")).reserved == stock
    assert await inventory.check_ledger() == []


async def test_reserving_and_releasing_at_once_keeps_the_books_straight(
    inventory: InventoryService,
) -> None:
    await inventory.set_on_hand("MUG", 10)
    first = [await inventory.reserve(f"early-{i}", [("MUG", 1)]) for i in range(10)]

    releases = [inventory.release(r.id) for r in first]
    late = [attempt(inventory, f"late-{i}", [("MUG", 1)]) for i in range(30)]
    await asyncio.gather(*releases, *late)

    level = await inventory.stock("MUG")
    assert level.reserved + level.available == 10
    assert 0 <= level.available <= 10
    assert await inventory.check_ledger() == []


async def write_behind_the_services_back(db: Database, statement: str) -> None:
    async with db.transaction() as uow:
        await uow.execute(text(statement))
        await uow.commit()


async def test_the_database_itself_refuses_to_oversell(
    busy_db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("MUG", 5)
    await inventory.reserve("cart-1", [("MUG", 3)])

    for statement in (
        "UPDATE inventory_stock SET reserved = reserved + 3 WHERE sku = 'MUG'",
        "UPDATE inventory_stock SET sold = 3 WHERE sku = 'MUG'",
        "UPDATE inventory_stock SET on_hand = 2 WHERE sku = 'MUG'",
        "UPDATE inventory_stock SET reserved = -1 WHERE sku = 'MUG'",
    ):
        with pytest.raises(IntegrityError):
            await write_behind_the_services_back(busy_db, statement)

    level = await inventory.stock("MUG")
    assert (level.on_hand, level.reserved, level.sold) == (5, 3, 0)
