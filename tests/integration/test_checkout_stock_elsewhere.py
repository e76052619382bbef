"""The card purchase with inventory elsewhere, on both databases: stock held by one call per
batch after the batch's first transaction, and sold by one call per batch before its last
commits, each a transaction of inventory's own, in a database of its own (the stockroom's).
Inventory's service answers in this process, so what is proven is checkout's side of the
split; tests/e2e/test_remote_inventory.py runs it across processes. A batch mixing every kind
of buyer, a flash sale, and what recovery makes of a process that died between the
stockroom's sale and its own commit."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from colonnade.app import Shop
from colonnade.kernel.clock import SystemClock
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.modules.checkout.service import CheckoutService
from colonnade.modules.inventory.service import InventoryService
from colonnade.modules.payments.schema import payments
from tests.conftest import PostgresServer, _migrate, count_rows, sqlalchemy_url
from tests.integration.test_checkout import cart_with, crashed, paying, product
from tests.integration.test_checkout import shop as shop


@pytest.fixture(scope="session")
def stockroom_postgres_url(postgres: PostgresServer) -> str:
    """The stockroom's PostgreSQL database, shared by this file's tests (their SKUs are
    their own)."""
    url = sqlalchemy_url(postgres.create_database("colonnade_stockroom"))
    _migrate(url)
    return url


@pytest.fixture
def stockroom_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> str:
    """A database of the stockroom's own, of the same kind as the shop's."""
    if database_url.startswith("sqlite"):
        path = tmp_path / "stockroom.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("stockroom_postgres_url")
    return url


@pytest.fixture
async def stockroom(stockroom_url: str) -> AsyncIterator[InventoryService]:
    db = Database(stockroom_url)
    yield InventoryService(db, clock=SystemClock())
    await db.dispose()


@pytest.fixture
def checkout(shop: Shop, stockroom: InventoryService) -> CheckoutService:
    """Checkout as a process whose database holds no stock runs it."""
    return CheckoutService(
        shop.db,
        carts=shop.carts,
        catalog=shop.catalog,
        inventory=shop.inventory,
        pricing=shop.pricing,
        promotions=shop.promotions,
        payments=shop.payments,
        orders=shop.orders,
        keyring=shop.keyring,
        clock=SystemClock(),
        stock=stockroom,
    )


async def stocked(shop: Shop, stockroom: InventoryService, *, price: int, on_hand: int) -> str:
    """A product the shop sells, whose stock is in the stockroom."""
    sku = await product(shop, price=price, on_hand=0)
    await stockroom.set_on_hand(sku, on_hand)
    return sku


async def _payment_statuses(shop: Shop, checkout_ids: list[str]) -> Counter[str]:
    async with shop.db.reading() as conn:
        rows = await conn.execute(
            select(payments.c.status).where(payments.c.checkout_id.in_(checkout_ids))
        )
        return Counter(rows.scalars().all())


async def test_a_batch_with_stock_elsewhere_answers_each_buyer_as_if_alone(
    shop: Shop, stockroom: InventoryService, checkout: CheckoutService
) -> None:
    plenty = await stocked(shop, stockroom, price=1000, on_hand=100)
    scarce = await stocked(shop, stockroom, price=1000, on_hand=1)
    paid_carts = [await cart_with(shop, plenty, 1) for _ in range(3)]
    scarce_carts = [await cart_with(shop, scarce, 1) for _ in range(2)]
    declined_cart = await cart_with(shop, plenty, 2)
    twice_cart = await cart_with(shop, plenty, 1)

    outcomes = await asyncio.gather(
        *(checkout.check_out(c, f"far-paid-{i}", paying()) for i, c in enumerate(paid_carts)),
        *(checkout.check_out(c, f"far-scarce-{i}", paying()) for i, c in enumerate(scarce_carts)),
        checkout.check_out(declined_cart, "far-declined", paying("tok_chargeDeclined")),
        checkout.check_out(twice_cart, "far-twice", paying()),
        checkout.check_out(twice_cart, "far-twice", paying()),
    )
    paid, scarce_out, (declined, first, second) = outcomes[:3], outcomes[3:5], outcomes[5:]

    assert [o.status for o in paid] == [201, 201, 201]
    assert sorted(o.status for o in scarce_out) == [201, 409]
    [sold_out] = [o for o in scarce_out if o.status == 409]
    assert (sold_out.body["code"], sold_out.body["sku"]) == ("out_of_stock", scarce)
    assert (declined.status, declined.body["code"]) == (402, "payment_declined")
    assert first == second
    assert first.status == 201
    for outcome in [*paid, first, *(o for o in scarce_out if o.status == 201)]:
        order = await shop.orders.order(outcome.body["id"])
        assert (order.status.value, order.paid) == ("paid", Money(1100, "USD"))
    stock = await stockroom.stock(plenty)
    assert (stock.sold, stock.reserved, stock.available) == (4, 0, 96)
    assert (await stockroom.stock(scarce)).sold == 1
    assert await count_rows(shop.db, "orders_orders") == 5
    assert await stockroom.check_ledger() == []
    # The sold-out buyer's payment was opened before its stock was refused: let go, not kept;
    # the declined one failed at the provider.
    assert await _payment_statuses(
        shop, [sold_out.body["checkout_id"], declined.body["checkout_id"]]
    ) == {"voided": 1, "failed": 1}
    # Asked again, each key gives its first answer, and nothing more is bought.
    assert await checkout.check_out(scarce_carts[0], "far-scarce-0", paying()) == scarce_out[0]
    assert (await stockroom.stock(plenty)).sold == 4


async def test_a_flash_sale_with_stock_elsewhere_sells_exactly_the_stock(
    shop: Shop, stockroom: InventoryService, checkout: CheckoutService
) -> None:
    units, buyers = 50, 600
    sku = await stocked(shop, stockroom, price=1000, on_hand=units)
    carts = await asyncio.gather(*(shop.carts.create("US") for _ in range(buyers)))
    await asyncio.gather(*(shop.carts.add_line(c.id, sku, 1) for c in carts))

    outcomes = await asyncio.gather(
        *(checkout.check_out(c.id, f"far-flash-{i:04d}", paying()) for i, c in enumerate(carts))
    )

    assert Counter(o.status for o in outcomes) == {201: units, 409: buyers - units}
    assert {o.body["code"] for o in outcomes if o.status == 409} == {"out_of_stock"}
    stock = await stockroom.stock(sku)
    assert (stock.sold, stock.reserved, stock.available) == (units, 0, 0)
    assert await count_rows(shop.db, "orders_orders") == units
    assert await _payment_statuses(shop, [o.body["checkout_id"] for o in outcomes]) == {
        "captured": units,
        "voided": buyers - units,
    }
    assert await stockroom.check_ledger() == []


async def test_recovery_returns_stock_sold_elsewhere_for_a_checkout_that_placed_no_order(
    shop: Shop, stockroom: InventoryService, checkout: CheckoutService
) -> None:
    """The process died after inventory sold the stock and before its own settling
    committed: no order, so the stock comes back and the money goes back."""
    sku = await stocked(shop, stockroom, price=1000, on_hand=2)
    checkout_id = str(uuid.uuid4())
    cart_id = await cart_with(shop, sku, 1)
    quote = await shop.pricing.quote("US", [(sku, 1)])
    async with shop.db.transaction() as uow:
        [payment] = await shop.payments.open_charges(uow, [(checkout_id, quote.total)])
        await uow.execute(crashed(checkout_id, cart_id))
        await uow.commit()
    [reservation] = await stockroom.hold([(checkout_id, [(sku, 1)])])
    assert not isinstance(reservation, Exception)
    assert (await shop.payments.charge(payment, "tok_visa")).approved
    assert await stockroom.settle([reservation], []) == [None]
    assert (await stockroom.stock(sku)).sold == 1

    assert await checkout.recover(timedelta(minutes=1)) == 1

    stock = await stockroom.stock(sku)
    assert (stock.sold, stock.reserved, stock.available) == (0, 0, 2)
    settled = await shop.payments.payment(payment.id)
    assert (settled.status.value, settled.refunded) == ("refunded", quote.total)
    assert await count_rows(shop.db, "orders_orders") == 0
    assert await stockroom.check_ledger() == []
    assert await checkout.recover(timedelta(minutes=1)) == 0


async def test_settling_a_batch_again_sells_nothing_twice(
    shop: Shop, stockroom: InventoryService
) -> None:
    """A batch whose transaction failed after inventory settled it runs again: what was sold
    is sold, what was given back stays given back, and no unit moves twice."""
    sku = await stocked(shop, stockroom, price=1000, on_hand=5)
    first, second = f"far-a-{sku}", f"far-b-{sku}"
    sold, released = await stockroom.hold([(first, [(sku, 2)]), (second, [(sku, 1)])])
    assert not isinstance(sold, Exception)
    assert not isinstance(released, Exception)

    assert await stockroom.settle([sold], [released]) == [None]
    assert await stockroom.settle([sold], [released]) == [None]

    stock = await stockroom.stock(sku)
    assert (stock.sold, stock.reserved, stock.available) == (2, 0, 3)
    assert await stockroom.check_ledger() == []
    # Given back whatever became of it, once.
    assert await stockroom.give_back_for(first) == 1
    assert await stockroom.give_back_for(first) == 0
    assert await stockroom.give_back_for(second) == 0
    assert (await stockroom.stock(sku)).available == 5
