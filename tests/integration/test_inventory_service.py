"""Inventory against real databases: stock levels, reservations, expiry and the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import InvalidInput
from colonnade.kernel.schema import outbox
from colonnade.modules.inventory.domain import (
    InvalidQuantity,
    OutOfStock,
    ReservationNotHeld,
    ReservationStatus,
    StockBelowCommitments,
    UnknownReservation,
    UnknownWarehouse,
)
from colonnade.modules.inventory.service import InventoryService, ReservationLine
from tests.conftest import count_rows

START = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def inventory(db: Database, clock: SettableClock) -> InventoryService:
    return InventoryService(db, clock=clock, reservation_ttl=timedelta(minutes=15))


async def events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    async with db.reading() as conn:
        rows = await conn.execute(
            select(outbox.c.event_type, outbox.c.payload).order_by(outbox.c.id)
        )
        return [(r.event_type, r.payload) for r in rows]


async def test_setting_stock_creates_the_default_warehouse_and_reports_the_level(
    db: Database, inventory: InventoryService, clock: SettableClock
) -> None:
    level = await inventory.set_on_hand("MUG-RED", 100)
    assert (level.sku, level.on_hand, level.reserved, level.sold, level.available) == (
        "MUG-RED",
        100,
        0,
        0,
        100,
    )
    assert [w.code for w in level.warehouses] == ["main"]
    assert await inventory.stock("MUG-RED") == level
    assert await events(db) == [
        (
            "inventory.StockLevelSet",
            {
                "sku": "MUG-RED",
                "warehouse": "main",
                "on_hand": 100,
                "available": 100,
                "set_at": clock.now().isoformat(),
            },
        )
    ]


async def test_a_sku_never_stocked_has_nothing(inventory: InventoryService) -> None:
    level = await inventory.stock("GHOST")
    assert (level.on_hand, level.reserved, level.available, level.warehouses) == (0, 0, 0, ())


async def test_stock_in_an_unknown_warehouse_is_refused(
    db: Database, inventory: InventoryService
) -> None:
    with pytest.raises(UnknownWarehouse) as raised:
        await inventory.set_on_hand("MUG", 5, warehouse="atlantis")
    assert raised.value.status == 404
    assert raised.value.code == "unknown_warehouse"
    assert await count_rows(db, "inventory_stock") == 0


async def test_negative_stock_is_invalid_and_changes_nothing(
    db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("MUG", 5)
    with pytest.raises(InvalidQuantity) as raised:
        await inventory.set_on_hand("MUG", -1)
    assert raised.value.status == 422
    assert (await inventory.stock("MUG")).on_hand == 5


async def test_stock_summed_over_warehouses_and_availability_in_one_call(
    inventory: InventoryService,
) -> None:
    await inventory.set_warehouse("north", "North depot")
    await inventory.set_on_hand("MUG", 10)
    await inventory.set_on_hand("MUG", 4, warehouse="north")
    await inventory.set_on_hand("TEE", 2)
    level = await inventory.stock("MUG")
    assert (level.on_hand, level.available) == (14, 14)
    assert [(w.code, w.on_hand) for w in level.warehouses] == [("main", 10), ("north", 4)]
    assert await inventory.availability(["MUG", "TEE", "GHOST"]) == {
        "MUG": 14,
        "TEE": 2,
        "GHOST": 0,
    }
    assert await inventory.availability([]) == {}


async def test_warehouses_can_be_renamed_keeping_their_creation_time(
    inventory: InventoryService, clock: SettableClock
) -> None:
    first = await inventory.set_warehouse("north", "North")
    clock.advance(timedelta(days=1))
    renamed = await inventory.set_warehouse("north", "North depot")
    assert (renamed.name, renamed.created_at) == ("North depot", first.created_at)


async def test_a_reservation_holds_stock_and_announces_it(
    db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("MUG", 3)
    reservation = await inventory.reserve("cart-1", [("MUG", 2)])
    assert reservation.status is ReservationStatus.HELD
    assert reservation.expires_at == START + timedelta(minutes=15)
    assert reservation.lines == (ReservationLine("MUG", "main", 2),)
    assert await inventory.reservation(reservation.id) == reservation
    level = await inventory.stock("MUG")
    assert (level.on_hand, level.reserved, level.available) == (3, 2, 1)
    assert (
        "inventory.StockReserved",
        {
            "reservation_id": reservation.id,
            "reference": "cart-1",
            "lines": [{"sku": "MUG", "warehouse": "main", "quantity": 2}],
        },
    ) in await events(db)


async def test_taking_the_last_unit_announces_the_sku_is_depleted(
    db: Database, inventory: InventoryService, clock: SettableClock
) -> None:
    depleted = ("inventory.StockDepleted", {"sku": "MUG", "depleted_at": clock.now().isoformat()})
    await inventory.set_on_hand("MUG", 2)
    await inventory.reserve("cart-1", [("MUG", 1)])
    assert depleted not in await events(db)
    await inventory.reserve("cart-2", [("MUG", 1)])
    assert depleted in await events(db)


async def test_a_shortfall_on_one_line_reserves_nothing_at_all(
    db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("MUG", 5)
    await inventory.set_on_hand("TEE", 1)
    with pytest.raises(OutOfStock) as raised:
        await inventory.reserve("cart-1", [("MUG", 2), ("TEE", 3)])
    assert (raised.value.sku, raised.value.requested, raised.value.available) == ("TEE", 3, 1)
    assert (await inventory.stock("MUG")).reserved == 0
    assert await count_rows(db, "inventory_reservations") == 0
    assert [e for e, _ in await events(db)] == ["inventory.StockLevelSet"] * 2


async def test_a_line_is_split_over_warehouses_when_one_is_not_enough(
    inventory: InventoryService,
) -> None:
    await inventory.set_warehouse("north", "North")
    await inventory.set_on_hand("MUG", 3)
    await inventory.set_on_hand("MUG", 5, warehouse="north")
    reservation = await inventory.reserve("cart-1", [("MUG", 7)])
    assert set(reservation.lines) == {
        ReservationLine("MUG", "north", 5),
        ReservationLine("MUG", "main", 2),
    }
    assert (await inventory.stock("MUG")).available == 1
    assert await inventory.check_ledger() == []


@pytest.mark.parametrize("lines", [[("MUG", 0)], [("MUG", -2)], []])
async def test_a_reservation_needs_positive_quantities(
    db: Database, inventory: InventoryService, lines: list[tuple[str, int]]
) -> None:
    await inventory.set_on_hand("MUG", 5)
    with pytest.raises(InvalidInput):
        await inventory.reserve("cart-1", lines)
    assert await count_rows(db, "inventory_reservations") == 0


async def test_committing_sells_the_held_stock_once(
    db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("MUG", 5)
    reservation = await inventory.reserve("cart-1", [("MUG", 2)])
    await inventory.commit(reservation.id)
    await inventory.commit(reservation.id)
    level = await inventory.stock("MUG")
    assert (level.on_hand, level.reserved, level.sold, level.available) == (5, 0, 2, 3)
    assert (await inventory.reservation(reservation.id)).status is ReservationStatus.COMMITTED
    assert [e for e, _ in await events(db)].count("inventory.StockCommitted") == 1
    with pytest.raises(ReservationNotHeld) as raised:
        await inventory.release(reservation.id)
    assert raised.value.status == 409
    assert await inventory.check_ledger() == []


async def test_releasing_gives_stock_back_once_and_then_cannot_be_committed(
    db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("MUG", 5)
    reservation = await inventory.reserve("cart-1", [("MUG", 2)])
    await inventory.release(reservation.id)
    await inventory.release(reservation.id)
    assert (await inventory.stock("MUG")).available == 5
    assert (
        "inventory.StockReleased",
        {"reservation_id": reservation.id, "reason": "released"},
    ) in (await events(db))
    with pytest.raises(ReservationNotHeld):
        await inventory.commit(reservation.id)
    assert (await inventory.stock("MUG")).sold == 0


async def test_an_unknown_reservation_is_not_found(inventory: InventoryService) -> None:
    for action in (inventory.commit, inventory.release, inventory.reservation):
        with pytest.raises(UnknownReservation) as raised:
            await action("no-such-reservation")
        assert raised.value.status == 404


async def test_stock_cannot_be_set_below_what_is_reserved_and_sold(
    inventory: InventoryService,
) -> None:
    await inventory.set_on_hand("MUG", 5)
    sold = await inventory.reserve("cart-1", [("MUG", 2)])
    await inventory.commit(sold.id)
    await inventory.reserve("cart-2", [("MUG", 1)])
    with pytest.raises(StockBelowCommitments) as raised:
        await inventory.set_on_hand("MUG", 2)
    assert raised.value.status == 409
    assert (await inventory.stock("MUG")).on_hand == 5
    assert (await inventory.set_on_hand("MUG", 3)).available == 0


async def test_held_stock_comes_back_when_the_reservation_expires(
    db: Database, inventory: InventoryService, clock: SettableClock
) -> None:
    await inventory.set_on_hand("MUG", 1)
    reservation = await inventory.reserve("cart-1", [("MUG", 1)], ttl=timedelta(minutes=5))
    assert (await inventory.stock("MUG")).available == 0
    clock.advance(timedelta(minutes=4))
    assert await inventory.expire_due() == 0
    clock.advance(timedelta(minutes=1))
    assert await inventory.expire_due() == 1
    assert await inventory.expire_due() == 0
    assert (await inventory.stock("MUG")).available == 1
    assert (await inventory.reservation(reservation.id)).status is ReservationStatus.EXPIRED
    assert ("inventory.StockReleased", {"reservation_id": reservation.id, "reason": "expired"}) in (
        await events(db)
    )
    await inventory.release(reservation.id)  # already free: nothing happens
    with pytest.raises(ReservationNotHeld):
        await inventory.commit(reservation.id)
    assert await inventory.check_ledger() == []


async def test_expiry_leaves_committed_and_young_reservations_alone(
    inventory: InventoryService, clock: SettableClock
) -> None:
    await inventory.set_on_hand("MUG", 10)
    sold = await inventory.reserve("cart-1", [("MUG", 1)])
    await inventory.commit(sold.id)
    await inventory.reserve("cart-2", [("MUG", 2)])
    clock.advance(timedelta(minutes=10))
    young = await inventory.reserve("cart-3", [("MUG", 3)])
    clock.advance(timedelta(minutes=6))
    assert await inventory.expire_due() == 1
    level = await inventory.stock("MUG")
    assert (level.sold, level.reserved, level.available) == (1, 3, 6)
    assert (await inventory.reservation(young.id)).status is ReservationStatus.HELD


async def test_the_ledger_tells_the_story_of_a_sku_newest_first(
    inventory: InventoryService,
) -> None:
    await inventory.set_on_hand("MUG", 5)
    reservation = await inventory.reserve("cart-1", [("MUG", 2)])
    await inventory.commit(reservation.id)
    entries = await inventory.ledger("MUG")
    assert [(e.reason.value, e.delta_on_hand, e.delta_reserved, e.delta_sold) for e in entries] == [
        ("commit", 0, -2, 2),
        ("reserve", 0, 2, 0),
        ("set_on_hand", 5, 0, 0),
    ]
    assert entries[0].reference == reservation.id
    assert [e.reason.value for e in await inventory.ledger("MUG", limit=1)] == ["commit"]
    with pytest.raises(InvalidQuantity):
        await inventory.ledger("MUG", limit=0)


async def test_the_ledger_check_names_skus_whose_stock_was_changed_behind_its_back(
    db: Database, inventory: InventoryService
) -> None:
    await inventory.set_on_hand("MUG", 5)
    await inventory.set_on_hand("TEE", 5)
    assert await inventory.check_ledger() == []
    async with db.transaction() as uow:
        await uow.connection.exec_driver_sql(
            "UPDATE inventory_stock SET on_hand = 7 WHERE sku = 'TEE'"
        )
        await uow.commit()
    assert await inventory.check_ledger() == ["TEE"]
