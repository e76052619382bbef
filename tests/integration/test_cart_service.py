"""The cart against real databases: lines merge, limits hold, bad input changes nothing,
idle carts expire, checked-out carts stay closed, and concurrent shoppers lose no units."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.money import Money
from colonnade.kernel.schema import outbox
from colonnade.modules.cart.service import (
    CartChanged,
    CartClosed,
    CartFull,
    CartNotFound,
    CartService,
    CartStatus,
    InvalidQuantity,
    InvalidSku,
    LineNotFound,
    UnknownSku,
)
from tests.conftest import count_rows
from tests.integration.cart_collaborators import Catalog, Pricing, shop_collaborators

START = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def collaborators() -> tuple[Pricing, Catalog]:
    return shop_collaborators()


@pytest.fixture
def pricing(collaborators: tuple[Pricing, Catalog]) -> Pricing:
    return collaborators[0]


@pytest.fixture
def carts(
    db: Database, collaborators: tuple[Pricing, Catalog], clock: SettableClock
) -> CartService:
    pricing, catalog = collaborators
    return CartService(db, pricing=pricing, catalog=catalog, clock=clock, max_lines=3)


async def events(db: Database, event_type: str) -> list[dict[str, Any]]:
    async with db.reading() as conn:
        rows = await conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
        )
        return [row.payload for row in rows]


# --- opening and showing -------------------------------------------------------------------


async def test_a_new_cart_is_empty_and_in_the_markets_currency(carts: CartService) -> None:
    cart = await carts.create("DE")

    assert cart.market == "DE"
    assert cart.currency == "EUR"
    assert cart.status is CartStatus.OPEN
    assert cart.lines == ()
    assert cart.total == Money(0, "EUR")
    assert cart.tax_inclusive is True
    assert (await carts.cart(cart.id)).id == cart.id


async def test_a_cart_cannot_open_in_an_unknown_market(db: Database, carts: CartService) -> None:
    with pytest.raises(ColonnadeError) as refused:
        await carts.create("XX")

    assert refused.value.status == 422
    assert await count_rows(db, "cart_carts") == 0


async def test_an_unknown_cart_is_not_found(carts: CartService) -> None:
    with pytest.raises(CartNotFound):
        await carts.cart("0190d7a4-0000-7000-8000-000000000000")
    with pytest.raises(CartNotFound):
        await carts.add_line("no-such-cart", "MUG-RED", 1)


async def test_showing_a_cart_prices_it_with_one_quote(
    carts: CartService, pricing: Pricing
) -> None:
    cart = await carts.create("US")
    await carts.add_line(cart.id, "MUG-RED", 2)
    await carts.add_line(cart.id, "TEE-L", 1)
    pricing.quotes = 0

    shown = await carts.cart(cart.id)

    assert pricing.quotes == 1
    assert [(line.sku, line.quantity) for line in shown.lines] == [("MUG-RED", 2), ("TEE-L", 1)]
    assert shown.lines[0].unit_price == Money(1250, "USD")
    assert shown.lines[0].line_total == Money(2500, "USD")
    assert shown.lines[0].tax == Money(250, "USD")
    assert shown.subtotal == Money(4500, "USD")
    assert shown.tax == Money(450, "USD")
    assert shown.total == Money(4950, "USD")
    assert shown.tax_inclusive is False


# --- lines ---------------------------------------------------------------------------------


async def test_adding_a_sku_twice_grows_one_line(db: Database, carts: CartService) -> None:
    cart = await carts.create("US")
    await carts.add_line(cart.id, "MUG-RED", 1)
    after = await carts.add_line(cart.id, "MUG-RED", 3)

    assert [(line.sku, line.quantity) for line in after.lines] == [("MUG-RED", 4)]
    assert after.total == Money(5500, "USD")
    assert await count_rows(db, "cart_lines") == 1


async def test_lines_keep_the_order_they_were_added_in(carts: CartService) -> None:
    cart = await carts.create("US")
    await carts.add_line(cart.id, "TEE-L", 1)
    await carts.add_line(cart.id, "MUG-RED", 1)
    after = await carts.add_line(cart.id, "TEE-L", 1)

    assert [line.sku for line in after.lines] == ["TEE-L", "MUG-RED"]
    assert [line.sku for line in (await carts.cart(cart.id)).lines] == ["TEE-L", "MUG-RED"]


async def test_setting_a_quantity_replaces_it_and_zero_removes_the_line(
    carts: CartService,
) -> None:
    cart = await carts.create("US")
    await carts.add_line(cart.id, "MUG-RED", 5)
    await carts.add_line(cart.id, "TEE-L", 1)

    changed = await carts.set_quantity(cart.id, "MUG-RED", 2)
    assert [(line.sku, line.quantity) for line in changed.lines] == [("MUG-RED", 2), ("TEE-L", 1)]

    emptied = await carts.set_quantity(cart.id, "TEE-L", 0)
    assert [(line.sku, line.quantity) for line in emptied.lines] == [("MUG-RED", 2)]


async def test_removing_lines_down_to_an_empty_cart(carts: CartService) -> None:
    cart = await carts.create("US")
    await carts.add_line(cart.id, "MUG-RED", 1)

    emptied = await carts.remove_line(cart.id, "MUG-RED")

    assert emptied.lines == ()
    assert emptied.total == Money(0, "USD")
    with pytest.raises(LineNotFound):
        await carts.remove_line(cart.id, "MUG-RED")
    with pytest.raises(LineNotFound):
        await carts.set_quantity(cart.id, "TEE-L", 3)


async def test_every_change_bumps_the_version_and_tells_the_shop_whether_it_started_the_cart(
    db: Database, carts: CartService, clock: SettableClock
) -> None:
    cart = await carts.create("US")
    assert (await carts.snapshot(cart.id)).version == 1

    await carts.add_line(cart.id, "MUG-RED", 1)
    await carts.add_line(cart.id, "TEE-L", 2)
    await carts.remove_line(cart.id, "MUG-RED")

    snapshot = await carts.snapshot(cart.id)
    assert snapshot.version == 4
    assert snapshot.lines == (("TEE-L", 2),)
    at = clock.now().isoformat()
    assert await events(db, "cart.CartUpdated") == [
        {
            "cart_id": cart.id,
            "market": "US",
            "lines": [{"sku": "MUG-RED", "quantity": 1}],
            "updated_at": at,
            "started": True,
        },
        {
            "cart_id": cart.id,
            "market": "US",
            "lines": [{"sku": "MUG-RED", "quantity": 1}, {"sku": "TEE-L", "quantity": 2}],
            "updated_at": at,
            "started": False,
        },
        {
            "cart_id": cart.id,
            "market": "US",
            "lines": [{"sku": "TEE-L", "quantity": 2}],
            "updated_at": at,
            "started": False,
        },
    ]


# --- bad input changes nothing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sku", "quantity", "refusal", "code"),
    [
        ("NOT-SOLD-HERE", 1, UnknownSku, "unknown_sku"),
        ("POSTER", 1, ColonnadeError, "price_missing"),
        ("MUG-RED", 0, InvalidQuantity, "invalid_quantity"),
        ("MUG-RED", -1, InvalidQuantity, "invalid_quantity"),
        ("MUG-RED", 100, InvalidQuantity, "invalid_quantity"),
        ("MUG-RED", True, InvalidQuantity, "invalid_quantity"),
        ("MUG-RED", 98, InvalidQuantity, "invalid_quantity"),  # 2 already in the cart
        ("", 1, InvalidSku, "invalid_sku"),
    ],
)
async def test_a_refused_line_changes_nothing(
    db: Database,
    carts: CartService,
    sku: str,
    quantity: Any,
    refusal: type[ColonnadeError],
    code: str,
) -> None:
    cart = await carts.create("US")
    await carts.add_line(cart.id, "MUG-RED", 2)
    before = await carts.snapshot(cart.id)
    outbox_before = await count_rows(db, "kernel_outbox")

    with pytest.raises(refusal) as refused:
        await carts.add_line(cart.id, sku, quantity)

    assert refused.value.code == code
    assert await carts.snapshot(cart.id) == before
    assert await count_rows(db, "kernel_outbox") == outbox_before


async def test_a_sku_priced_elsewhere_but_not_in_this_market_is_refused(
    carts: CartService,
) -> None:
    cart = await carts.create("DE")

    with pytest.raises(ColonnadeError) as refused:
        await carts.add_line(cart.id, "TEE-L", 1)

    assert refused.value.code == "price_missing"
    assert refused.value.status == 409
    assert (await carts.snapshot(cart.id)).lines == ()


async def test_a_cart_holds_a_limited_number_of_skus(
    db: Database, carts: CartService, collaborators: tuple[Pricing, Catalog]
) -> None:
    pricing, catalog = collaborators
    for sku in ("CAP", "SOCK"):
        catalog.skus.add(sku)
        pricing.prices[("US", sku)] = 500
    cart = await carts.create("US")
    for sku in ("MUG-RED", "TEE-L", "CAP"):
        await carts.add_line(cart.id, sku, 1)

    with pytest.raises(CartFull):
        await carts.add_line(cart.id, "SOCK", 1)

    # A SKU already in a full cart still grows.
    grown = await carts.add_line(cart.id, "CAP", 1)
    assert [(line.sku, line.quantity) for line in grown.lines][-1] == ("CAP", 2)
    assert await count_rows(db, "cart_lines") == 3


# --- closing and expiry --------------------------------------------------------------------


async def test_a_checked_out_cart_refuses_changes_but_can_still_be_seen(
    carts: CartService,
) -> None:
    cart = await carts.create("US")
    await carts.add_line(cart.id, "MUG-RED", 1)
    await carts.close(cart.id)

    for change in (
        carts.add_line(cart.id, "MUG-RED", 1),
        carts.set_quantity(cart.id, "MUG-RED", 3),
        carts.remove_line(cart.id, "MUG-RED"),
    ):
        with pytest.raises(CartClosed):
            await change
    shown = await carts.cart(cart.id)
    assert shown.status is CartStatus.CHECKED_OUT
    assert [(line.sku, line.quantity) for line in shown.lines] == [("MUG-RED", 1)]


async def test_closing_twice_is_harmless(carts: CartService) -> None:
    cart = await carts.create("US")
    await carts.add_line(cart.id, "MUG-RED", 1)
    version = (await carts.snapshot(cart.id)).version

    await carts.close(cart.id, expected_version=version)
    await carts.close(cart.id, expected_version=version)
    await carts.close(cart.id)

    snapshot = await carts.snapshot(cart.id)
    assert snapshot.status is CartStatus.CHECKED_OUT
    assert snapshot.version == version + 1


async def test_a_cart_changed_since_its_snapshot_is_not_closed(carts: CartService) -> None:
    cart = await carts.create("US")
    await carts.add_line(cart.id, "MUG-RED", 1)
    taken = await carts.snapshot(cart.id)
    await carts.add_line(cart.id, "TEE-L", 1)

    with pytest.raises(CartChanged) as refused:
        await carts.close(cart.id, expected_version=taken.version)

    assert refused.value.extensions["version"] == taken.version + 1
    assert (await carts.snapshot(cart.id)).status is CartStatus.OPEN
    with pytest.raises(CartNotFound):
        await carts.close("no-such-cart")


async def test_an_idle_cart_expires_and_is_gone(
    db: Database, carts: CartService, clock: SettableClock
) -> None:
    idle = await carts.create("US")
    await carts.add_line(idle.id, "MUG-RED", 1)
    busy = await carts.create("US")
    closed = await carts.create("US")
    await carts.close(closed.id)

    clock.advance(timedelta(hours=23))
    await carts.add_line(busy.id, "MUG-RED", 1)  # activity restarts the idle time
    clock.advance(timedelta(hours=2))

    # Gone as soon as its time is up, before any sweep runs.
    with pytest.raises(CartNotFound):
        await carts.cart(idle.id)
    with pytest.raises(CartNotFound):
        await carts.add_line(idle.id, "MUG-RED", 1)
    assert (await carts.snapshot(idle.id)).status is CartStatus.EXPIRED

    assert await carts.expire_idle() == 1
    assert await carts.expire_idle() == 0
    assert (await carts.cart(busy.id)).status is CartStatus.OPEN
    assert (await carts.cart(closed.id)).status is CartStatus.CHECKED_OUT
    assert await events(db, "cart.CartExpired") == [{"cart_id": idle.id, "market": "US"}]


async def test_a_cart_exactly_at_its_idle_time_is_still_open(
    carts: CartService, clock: SettableClock
) -> None:
    cart = await carts.create("US")
    clock.advance(timedelta(hours=24))

    assert await carts.expire_idle() == 0
    assert (await carts.add_line(cart.id, "MUG-RED", 1)).status is CartStatus.OPEN


# --- concurrency ---------------------------------------------------------------------------


@pytest.fixture
async def busy_db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=20)
    yield database
    await database.dispose()


async def test_twenty_shoppers_adding_the_same_mug_at_once_add_twenty(
    busy_db: Database, collaborators: tuple[Pricing, Catalog], clock: SettableClock
) -> None:
    pricing, catalog = collaborators
    carts = CartService(busy_db, pricing=pricing, catalog=catalog, clock=clock)
    cart = await carts.create("US")

    views = await asyncio.gather(*(carts.add_line(cart.id, "MUG-RED", 1) for _ in range(20)))

    shown = await carts.cart(cart.id)
    assert [(line.sku, line.quantity) for line in shown.lines] == [("MUG-RED", 20)]
    assert shown.total == Money(20 * 1375, "USD")
    assert sorted(view.lines[0].quantity for view in views) == list(range(1, 21))
    assert (await carts.snapshot(cart.id)).version == 21


async def test_concurrent_changes_to_different_lines_all_land(
    busy_db: Database, collaborators: tuple[Pricing, Catalog], clock: SettableClock
) -> None:
    pricing, catalog = collaborators
    carts = CartService(busy_db, pricing=pricing, catalog=catalog, clock=clock)
    cart = await carts.create("US")
    await carts.add_line(cart.id, "MUG-RED", 10)

    await asyncio.gather(
        *(carts.add_line(cart.id, "TEE-L", 1) for _ in range(5)),
        *(carts.set_quantity(cart.id, "MUG-RED", 3) for _ in range(5)),
    )

    snapshot = await carts.snapshot(cart.id)
    assert dict(snapshot.lines) == {"MUG-RED": 3, "TEE-L": 5}
