"""Orders on real databases: one order per checkout, moving along, refusing what is wrong."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.crypto import Keyring
from colonnade.kernel.db import Database
from colonnade.kernel.errors import InvalidInput
from colonnade.kernel.ids import new_id
from colonnade.kernel.money import Money
from colonnade.kernel.schema import outbox
from colonnade.modules.orders.schema import orders as orders_table
from colonnade.modules.orders.service import (
    IllegalTransition,
    InvalidOrder,
    NewOrder,
    OrderLine,
    OrderNotFound,
    OrdersService,
    OrderStatus,
    PaymentMismatch,
    RefundExceedsPayment,
)
from tests.conftest import count_rows

START = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)


def usd(amount: int) -> Money:
    return Money(amount, "USD")


def new_order(
    checkout_id: str = "chk-1",
    *,
    email: str = "ada@example.com",
    customer_id: str | None = None,
    tax_inclusive: bool = False,
) -> NewOrder:
    return NewOrder(
        checkout_id=checkout_id,
        email=email,
        market="US",
        currency="USD",
        tax_inclusive=tax_inclusive,
        lines=[
            OrderLine("MUG-RED", "Red mug", 2, usd(1200), usd(2400), usd(192)),
            OrderLine("TEA-01", "Green tea", 1, usd(800), usd(800), usd(64)),
        ],
        shipping=usd(500),
        shipping_address={"name": "Ada Lovelace", "line1": "1 Main St", "country": "US"},
        payment_id="pay-1",
        customer_id=customer_id,
    )


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def orders(db: Database, keyring: Keyring, clock: SettableClock) -> OrdersService:
    return OrdersService(db, keyring=keyring, clock=clock)


async def events(db: Database, event_type: str) -> list[dict[str, Any]]:
    async with db.reading() as conn:
        rows = await conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
        )
        return [row.payload for row in rows]


async def paid_order(orders: OrdersService, checkout_id: str = "chk-1") -> str:
    placed = await orders.place(new_order(checkout_id))
    await orders.mark_paid(placed.order.id, placed.order.total)
    return placed.order.id


async def test_a_placed_order_adds_up_and_remembers_how_it_began(
    db: Database, orders: OrdersService
) -> None:
    placed = await orders.place(new_order())

    order = await orders.order(placed.order.id)
    assert order == placed.order
    assert order.number.startswith("C-")
    assert order.status == OrderStatus.PLACED
    assert [line.sku for line in order.lines] == ["MUG-RED", "TEA-01"]
    assert (order.subtotal, order.tax, order.shipping, order.total) == (
        usd(3200),
        usd(256),
        usd(500),
        usd(3956),
    )
    assert (order.paid, order.refunded) == (usd(0), usd(0))
    assert order.placed_at == START
    assert [(h.from_status, h.to_status, h.actor) for h in order.history] == [
        (None, OrderStatus.PLACED, "checkout")
    ]
    [event] = await events(db, "orders.OrderPlaced")
    assert event["order_id"] == order.id
    assert event["checkout_id"] == "chk-1"
    assert event["payment_id"] == "pay-1"
    assert event["total"] == {"amount": 3956, "currency": "USD"}
    assert event["lines"][0]["unit_price"] == {"amount": 1200, "currency": "USD"}


async def test_prices_with_tax_inside_do_not_add_the_tax_again(orders: OrdersService) -> None:
    placed = await orders.place(new_order(tax_inclusive=True))
    assert placed.order.total == usd(3700)


async def test_placing_a_checkout_again_returns_the_first_order_without_a_new_secret(
    db: Database, orders: OrdersService
) -> None:
    first = await orders.place(new_order())
    again = await orders.place(new_order())

    assert again.order == first.order
    assert first.access_token is not None
    assert again.access_token is None
    assert await count_rows(db, "orders_orders") == 1
    assert await count_rows(db, "orders_lines") == 2
    assert len(await events(db, "orders.OrderPlaced")) == 1


async def test_ten_racing_placements_of_one_checkout_make_exactly_one_order(
    db: Database, orders: OrdersService
) -> None:
    results = await asyncio.gather(*(orders.place(new_order("chk-race")) for _ in range(10)))

    assert {r.order.id for r in results} == {results[0].order.id}
    assert sum(1 for r in results if r.access_token is not None) == 1
    assert await count_rows(db, "orders_orders") == 1
    assert await count_rows(db, "orders_lines") == 2
    assert await count_rows(db, "orders_history") == 1
    assert len(await events(db, "orders.OrderPlaced")) == 1


async def test_a_guest_sees_the_order_only_with_its_secret(orders: OrdersService) -> None:
    placed = await orders.place(new_order())
    assert placed.access_token is not None

    seen = await orders.order_for_guest(placed.order.id, placed.access_token)
    assert seen.id == placed.order.id
    with pytest.raises(OrderNotFound):
        await orders.order_for_guest(placed.order.id, "not-the-secret")
    with pytest.raises(OrderNotFound):
        await orders.order_for_guest(new_id(), placed.access_token)


async def test_an_order_goes_from_paid_to_delivered_with_one_history_row_per_step(
    db: Database, orders: OrdersService, clock: SettableClock
) -> None:
    order_id = await paid_order(orders)
    clock.advance(timedelta(hours=1))
    await orders.fulfil(order_id, "staff-1")
    await orders.ship(order_id, "staff-1", "UPS", "1Z999")
    delivered = await orders.deliver(order_id, "staff-2")

    assert delivered.status == OrderStatus.DELIVERED
    assert delivered.paid == usd(3956)
    assert [(h.from_status, h.to_status) for h in delivered.history] == [
        (None, OrderStatus.PLACED),
        (OrderStatus.PLACED, OrderStatus.PAID),
        (OrderStatus.PAID, OrderStatus.FULFILLED),
        (OrderStatus.FULFILLED, OrderStatus.SHIPPED),
        (OrderStatus.SHIPPED, OrderStatus.DELIVERED),
    ]
    assert delivered.history[3].note == "UPS 1Z999"
    assert delivered.updated_at == START + timedelta(hours=1)
    [shipped] = await events(db, "orders.OrderShipped")
    assert (shipped["carrier"], shipped["tracking"]) == ("UPS", "1Z999")
    # Events carry ids, never the buyer's personal data.
    assert "email" not in shipped
    assert len(await events(db, "orders.OrderPaid")) == 1
    assert len(await events(db, "orders.OrderDelivered")) == 1


async def test_marking_paid_twice_records_one_payment(db: Database, orders: OrdersService) -> None:
    order_id = await paid_order(orders)
    await orders.mark_paid(order_id, usd(3956))
    again = await orders.order(order_id)
    assert again.paid == usd(3956)
    assert len(again.history) == 2
    assert len(await events(db, "orders.OrderPaid")) == 1


async def test_a_payment_short_of_the_total_is_refused(orders: OrdersService) -> None:
    placed = await orders.place(new_order())
    with pytest.raises(PaymentMismatch):
        await orders.mark_paid(placed.order.id, usd(100))
    assert (await orders.order(placed.order.id)).status == OrderStatus.PLACED


async def test_a_shipped_order_cannot_be_cancelled_and_stays_shipped(
    db: Database, orders: OrdersService
) -> None:
    order_id = await paid_order(orders)
    await orders.fulfil(order_id, "staff-1")
    await orders.ship(order_id, "staff-1", "UPS", "1Z999")

    with pytest.raises(IllegalTransition, match="an order that is shipped cannot be cancelled"):
        await orders.cancel(order_id, "staff-1", "changed their mind")
    order = await orders.order(order_id)
    assert order.status == OrderStatus.SHIPPED
    assert len(order.history) == 4
    assert await events(db, "orders.OrderCancelled") == []


async def test_cancelling_tells_the_checkout_what_to_give_back(
    db: Database, orders: OrdersService
) -> None:
    order_id = await paid_order(orders)
    cancelled = await orders.cancel(order_id, "staff-1", "out of stock after all")
    again = await orders.cancel(order_id, "checkout", "checkout failed")

    assert cancelled.status == again.status == OrderStatus.CANCELLED
    assert cancelled.history[-1].note == "out of stock after all"
    assert len(again.history) == 3
    [event] = await events(db, "orders.OrderCancelled")
    assert event["checkout_id"] == "chk-1"
    assert event["payment_id"] == "pay-1"
    assert event["paid_amount"] == {"amount": 3956, "currency": "USD"}
    assert event["reason"] == "out of stock after all"


async def test_of_a_cancel_and_a_fulfilment_at_once_exactly_one_wins(
    db: Database, orders: OrdersService
) -> None:
    order_id = await paid_order(orders)

    results = await asyncio.gather(
        orders.cancel(order_id, "staff-1", "customer called"),
        orders.fulfil(order_id, "staff-2"),
        return_exceptions=True,
    )

    refused = [r for r in results if isinstance(r, IllegalTransition)]
    assert len(refused) == 1, results
    order = await orders.order(order_id)
    assert order.status in (OrderStatus.CANCELLED, OrderStatus.FULFILLED)
    assert len(order.history) == 3
    moved = len(await events(db, "orders.OrderCancelled")) + len(
        await events(db, "orders.OrderFulfilled")
    )
    assert moved == 1


async def test_of_two_staff_shipping_at_once_only_one_ships(orders: OrdersService) -> None:
    order_id = await paid_order(orders)
    await orders.fulfil(order_id, "staff-1")

    results = await asyncio.gather(
        orders.ship(order_id, "staff-1", "UPS", "1Z1"),
        orders.ship(order_id, "staff-2", "DHL", "JD2"),
        return_exceptions=True,
    )

    assert sum(isinstance(r, IllegalTransition) for r in results) == 1
    assert [h.to_status for h in (await orders.order(order_id)).history].count(
        OrderStatus.SHIPPED
    ) == 1


async def test_refunds_grow_until_everything_paid_went_back(
    db: Database, orders: OrdersService
) -> None:
    order_id = await paid_order(orders)
    partly = await orders.record_refund(order_id, usd(1000), "staff-1")
    assert (partly.status, partly.refunded) == (OrderStatus.PAID, usd(1000))

    with pytest.raises(RefundExceedsPayment) as refused:
        await orders.record_refund(order_id, usd(2957), "staff-1")
    assert refused.value.status == 409

    fully = await orders.record_refund(order_id, usd(2956), "staff-1")
    assert (fully.status, fully.refunded) == (OrderStatus.REFUNDED, usd(3956))
    refunds = await events(db, "orders.OrderRefunded")
    assert [(e["amount"]["amount"], e["full"]) for e in refunds] == [(1000, False), (2956, True)]


async def test_the_database_refuses_an_order_that_does_not_add_up(
    db: Database, orders: OrdersService
) -> None:
    placed = await orders.place(new_order())
    one_more_cent = (
        update(orders_table)
        .where(orders_table.c.id == placed.order.id)
        .values(total=orders_table.c.total + 1)
    )
    refund_unpaid = (
        update(orders_table).where(orders_table.c.id == placed.order.id).values(refunded_amount=1)
    )
    for wrong in (one_more_cent, refund_unpaid):
        async with db.transaction() as uow:
            with pytest.raises(IntegrityError):
                await uow.execute(wrong)
    assert (await orders.order(placed.order.id)).total == usd(3956)


async def test_a_wrong_order_is_refused_and_nothing_is_written(
    db: Database, orders: OrdersService
) -> None:
    bad: list[NewOrder] = [
        NewOrder(**{**new_order().__dict__, "lines": []}),
        NewOrder(**{**new_order().__dict__, "email": "nobody"}),
        NewOrder(**{**new_order().__dict__, "shipping": Money(500, "EUR")}),
        NewOrder(**{**new_order().__dict__, "expected_total": usd(1)}),
    ]
    for new in bad:
        with pytest.raises(InvalidOrder):
            await orders.place(new)
    assert await count_rows(db, "orders_orders") == 0


async def test_staff_find_orders_by_status_email_and_time_page_by_page(
    orders: OrdersService, clock: SettableClock
) -> None:
    ids = []
    for n in range(5):
        email = "ada@example.com" if n % 2 == 0 else "bob@example.com"
        ids.append((await orders.place(new_order(f"chk-{n}", email=email))).order.id)
        clock.advance(timedelta(minutes=10))
    await orders.mark_paid(ids[0], usd(3956))

    everything = await orders.search(limit=2)
    assert everything.total == 5
    assert [o.id for o in everything.items] == [ids[4], ids[3]]
    assert [o.id for o in (await orders.search(limit=2, offset=4)).items] == [ids[0]]
    assert [o.id for o in (await orders.search(status="paid")).items] == [ids[0]]
    by_email = await orders.search(email="  ADA@example.com")
    assert [o.id for o in by_email.items] == [ids[4], ids[2], ids[0]]
    window = await orders.search(
        placed_from=START + timedelta(minutes=10), placed_to=START + timedelta(minutes=30)
    )
    assert [o.id for o in window.items] == [ids[2], ids[1]]
    assert all(len(o.lines) == 2 and o.history for o in everything.items)
    with pytest.raises(InvalidInput, match="'lost' is not an order status"):
        await orders.search(status="lost")
    with pytest.raises(InvalidInput, match="limit is 1-100"):
        await orders.search(limit=0)


async def test_a_customer_sees_their_own_orders(orders: OrdersService) -> None:
    mine = await orders.place(new_order("chk-a", customer_id="cust-1"))
    await orders.place(new_order("chk-b", customer_id="cust-2"))

    page = await orders.orders_of_customer("cust-1", limit=10, offset=0)
    assert [o.id for o in page.items] == [mine.order.id]
    assert (await orders.order_of_customer(mine.order.id, "cust-1")).id == mine.order.id
    with pytest.raises(OrderNotFound):
        await orders.order_of_customer(mine.order.id, "cust-2")


async def test_an_unknown_order_is_not_found(orders: OrdersService) -> None:
    with pytest.raises(OrderNotFound) as missing:
        await orders.order("nope")
    assert missing.value.status == 404
    with pytest.raises(OrderNotFound):
        await orders.fulfil("nope", "staff-1")


async def test_the_placed_order_is_the_order_as_stored(orders: OrdersService) -> None:
    placed = await orders.place(new_order())

    assert placed.order == await orders.order(placed.order.id)
