"""The purchase saga through the real modules, assembled by the composition root, on both
databases: what a completed, refused or interrupted checkout leaves behind."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Insert, insert, text

from colonnade.app import Shop, assemble
from colonnade.kernel.clock import SettableClock
from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.modules.catalog.service import NewProduct, NewVariant
from colonnade.modules.checkout.domain import IdempotencyKeyReused, Outcome
from colonnade.modules.checkout.schema import checkouts
from colonnade.modules.checkout.service import CheckoutRequest
from colonnade.modules.inventory.service import Reservation
from colonnade.modules.orders.service import IllegalTransition, NewOrder, OrderLine
from colonnade.modules.payments.service import RefundExceedsCapture
from tests.conftest import count_rows, statements_run

ADDRESS = {"name": "Ada", "line1": "1 Row", "city": "Town", "postal_code": "1", "country": "US"}


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[Shop]:
    shop = assemble(
        Settings(database_url=database_url, database_pool_size=20),
        clock=SettableClock(datetime.now(UTC)),
    )
    await shop.keyring.load()
    await shop.pricing.set_market("US", "United States", "USD", "en-US", False, Decimal("0.10"))
    yield shop
    await shop.db.dispose()


async def product(shop: Shop, *, price: int = 1000, on_hand: int = 10) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:8].upper()}"
    await shop.catalog.create_product(
        NewProduct(
            titles={"en-US": f"Thing {sku}"},
            default_locale="en-US",
            variants=[NewVariant(sku=sku)],
        )
    )
    await shop.pricing.set_prices(sku, [Money(price, "USD")])
    await shop.inventory.set_on_hand(sku, on_hand)
    return sku


async def cart_with(shop: Shop, sku: str, quantity: int) -> str:
    cart = await shop.carts.create("US")
    await shop.carts.add_line(cart.id, sku, quantity)
    return cart.id


def paying(token: str = "tok_visa") -> CheckoutRequest:
    return CheckoutRequest(
        email="ada@example.com",
        shipping_address=ADDRESS,
        payment_method="card",
        payment_token=token,
    )


def crashed(checkout_id: str, cart_id: str, step: str = "started", **ids: str) -> Insert:
    """The checkout row a process that died midway leaves, an hour old."""
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    return insert(checkouts).values(
        id=checkout_id,
        idempotency_key=f"crashed-{checkout_id}",
        fingerprint="x" * 64,
        cart_id=cart_id,
        step=step,
        created_at=long_ago,
        updated_at=long_ago,
        **ids,
    )


async def test_a_checkout_sells_the_stock_captures_once_and_closes_the_cart(shop: Shop) -> None:
    sku = await product(shop, price=1000, on_hand=5)
    cart_id = await cart_with(shop, sku, 2)

    outcome = await shop.checkout.check_out(cart_id, "key-0000001", paying())

    assert outcome.status == 201
    # 2 x 10.00 plus 10% tax on top in this tax-exclusive market.
    assert outcome.body["total"] == {"amount": 2200, "currency": "USD"}
    order = await shop.orders.order(outcome.body["id"])
    assert order.status.value == "paid"
    assert order.paid == Money(2200, "USD")
    payment = await shop.payments.payment(order.payment_id or "")
    assert (payment.status.value, payment.captured) == ("captured", Money(2200, "USD"))
    stock = await shop.inventory.stock(sku)
    assert (stock.reserved, stock.sold, stock.available) == (0, 2, 3)
    assert (await shop.carts.snapshot(cart_id)).status.value == "checked_out"
    again = await shop.checkout.check_out(cart_id, "key-0000001", paying())
    assert again == outcome


async def test_out_of_stock_names_the_sku_and_holds_nothing(shop: Shop) -> None:
    sku = await product(shop, on_hand=1)
    cart_id = await cart_with(shop, sku, 2)

    outcome = await shop.checkout.check_out(cart_id, "key-0000002", paying())

    assert outcome.status == 409
    assert (outcome.body["code"], outcome.body["sku"]) == ("out_of_stock", sku)
    assert (await shop.inventory.stock(sku)).available == 1
    assert await count_rows(shop.db, "orders_orders") == 0
    assert await count_rows(shop.db, "payments_payments") == 0


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [
        ("tok_chargeDeclined", 402, "payment_declined"),
        ("tok_timeout", 503, "payment_provider_unavailable"),
        ("tok_captureFails", 503, "payment_provider_unavailable"),
    ],
)
async def test_a_failed_payment_undoes_every_step_before_it(
    shop: Shop, token: str, status: int, code: str
) -> None:
    sku = await product(shop, on_hand=3)
    cart_id = await cart_with(shop, sku, 3)

    outcome = await shop.checkout.check_out(cart_id, f"key-{token}", paying(token))

    assert (outcome.status, outcome.body["code"]) == (status, code)
    assert (await shop.inventory.stock(sku)).available == 3
    payment = await shop.payments.payment_for_checkout(outcome.body["checkout_id"])
    assert payment.status.value in {"failed", "voided"}
    assert payment.captured.amount == 0
    orders = await shop.orders.search(None, None, None, None, 100, 0)
    assert all(o.status.value == "cancelled" for o in orders.items)
    assert (await shop.carts.snapshot(cart_id)).status.value == "open"


async def half_done_checkout(shop: Shop, sku: str, *, placed: bool) -> dict[str, str]:
    """What a process leaves behind that died after authorizing (or after placing the order):
    the same calls the saga makes, in the same order, and its checkout row at that step."""
    checkout_id = str(uuid.uuid4())
    cart_id = await cart_with(shop, sku, 1)
    reservation = await shop.inventory.reserve(checkout_id, [(sku, 1)])
    quote = await shop.pricing.quote("US", [(sku, 1)])
    payment = await shop.payments.authorize(checkout_id, quote.total, "card", token="tok_visa")
    ids: dict[str, str] = {}
    if placed:
        line = quote.lines[0]
        order = await shop.orders.place(
            NewOrder(
                checkout_id=checkout_id,
                email="ada@example.com",
                market="US",
                currency="USD",
                tax_inclusive=False,
                lines=[
                    OrderLine(sku, sku, 1, line.unit_price, line.line_total, line.tax),
                ],
                shipping=Money(0, "USD"),
                shipping_address=ADDRESS,
                payment_id=payment.id,
            )
        )
        ids = {
            "reservation_id": reservation.id,
            "payment_id": payment.id,
            "order_id": order.order.id,
        }
    async with shop.db.transaction() as uow:
        await uow.execute(crashed(checkout_id, cart_id, "placed" if placed else "started", **ids))
        await uow.commit()
    return {
        "checkout_id": checkout_id,
        "cart_id": cart_id,
        "reservation_id": reservation.id,
        "payment_id": payment.id,
        **ids,
    }


async def test_recovery_finishes_a_checkout_that_died_after_placing_its_order(shop: Shop) -> None:
    sku = await product(shop, on_hand=2)
    crashed = await half_done_checkout(shop, sku, placed=True)

    assert await shop.checkout.recover(timedelta(minutes=1)) == 1

    order = await shop.orders.order(crashed["order_id"])
    assert order.status.value == "paid"
    payment = await shop.payments.payment(crashed["payment_id"])
    assert payment.status.value == "captured"
    stock = await shop.inventory.stock(sku)
    assert (stock.reserved, stock.sold, stock.available) == (0, 1, 1)
    assert await shop.checkout.recover(timedelta(minutes=1)) == 0


async def test_recovery_voids_and_releases_a_checkout_that_died_before_its_order(
    shop: Shop,
) -> None:
    sku = await product(shop, on_hand=2)
    crashed = await half_done_checkout(shop, sku, placed=False)

    assert await shop.checkout.recover(timedelta(minutes=1)) == 1

    payment = await shop.payments.payment(crashed["payment_id"])
    assert (payment.status.value, payment.captured.amount) == ("voided", 0)
    assert (await shop.inventory.stock(sku)).available == 2
    assert await count_rows(shop.db, "orders_orders") == 0


async def test_two_processes_recovering_at_once_take_each_orphan_once(
    shop: Shop, database_url: str
) -> None:
    sku = await product(shop, on_hand=10)
    crashed = [await half_done_checkout(shop, sku, placed=i % 2 == 0) for i in range(6)]
    other = assemble(
        Settings(database_url=database_url, database_pool_size=20),
        clock=SettableClock(datetime.now(UTC)),
    )
    await other.keyring.load()
    try:
        counts = await asyncio.gather(
            shop.checkout.recover(timedelta(minutes=1)),
            other.checkout.recover(timedelta(minutes=1)),
        )
    finally:
        await other.db.dispose()

    assert sum(counts) == 6
    for i, checkout in enumerate(crashed):
        payment = await shop.payments.payment(checkout["payment_id"])
        expected = ("captured", 1100) if i % 2 == 0 else ("voided", 0)
        assert (payment.status.value, payment.captured.amount) == expected
    stock = await shop.inventory.stock(sku)
    assert (stock.reserved, stock.sold, stock.available) == (0, 3, 7)


async def test_a_young_unfinished_checkout_is_left_to_its_own_process(shop: Shop) -> None:
    sku = await product(shop, on_hand=2)
    await half_done_checkout(shop, sku, placed=False)
    async with shop.db.transaction() as uow:
        await uow.execute(checkouts.update().values(updated_at=datetime.now(UTC)))
        await uow.commit()
    assert await shop.checkout.recover(timedelta(minutes=1)) == 0


async def test_concurrent_buyers_of_the_last_units_get_orders_or_out_of_stock(shop: Shop) -> None:
    sku = await product(shop, on_hand=7)
    carts = [await cart_with(shop, sku, 1) for _ in range(40)]

    outcomes = await asyncio.gather(
        *(shop.checkout.check_out(c, f"key-race-{i:04d}", paying()) for i, c in enumerate(carts))
    )

    statuses = sorted(o.status for o in outcomes)
    assert statuses == [201] * 7 + [409] * 33
    stock = await shop.inventory.stock(sku)
    assert (stock.sold, stock.reserved, stock.available) == (7, 0, 0)
    assert await shop.inventory.check_ledger() == []


async def paid_order(shop: Shop, sku: str, quantity: int, key: str) -> str:
    cart_id = await cart_with(shop, sku, quantity)
    outcome = await shop.checkout.check_out(cart_id, key, paying())
    assert outcome.status == 201, outcome.body
    return str(outcome.body["id"])


async def test_cancelling_a_paid_order_returns_its_stock_and_refunds_it(shop: Shop) -> None:
    sku = await product(shop, price=1000, on_hand=4)
    order_id = await paid_order(shop, sku, 3, "key-cancel-1")

    order = await shop.checkout.cancel_order(order_id, actor="staff-1", reason="customer called")

    assert order.status.value == "cancelled"
    assert order.refunded == order.paid == Money(3300, "USD")
    payment = await shop.payments.payment(order.payment_id or "")
    assert (payment.status.value, payment.refunded) == ("refunded", Money(3300, "USD"))
    stock = await shop.inventory.stock(sku)
    assert (stock.sold, stock.reserved, stock.available) == (0, 0, 4)
    assert await shop.inventory.check_ledger() == []
    again = await shop.checkout.settle_cancellation(order_id)
    assert again.refunded == Money(3300, "USD")
    assert (await shop.inventory.stock(sku)).available == 4


async def test_partial_refunds_never_exceed_the_capture(shop: Shop) -> None:
    sku = await product(shop, price=1000, on_hand=4)
    order_id = await paid_order(shop, sku, 1, "key-refund-1")

    first = await shop.checkout.refund_order(order_id, Money(600, "USD"), "r-1")
    repeated = await shop.checkout.refund_order(order_id, Money(600, "USD"), "r-1")
    assert first.refunded == repeated.refunded == Money(600, "USD")
    with pytest.raises(RefundExceedsCapture):
        await shop.checkout.refund_order(order_id, Money(600, "USD"), "r-2")
    last = await shop.checkout.refund_order(order_id, Money(500, "USD"), "r-3")
    assert last.refunded == last.paid == Money(1100, "USD")
    assert last.status.value == "refunded"


async def test_a_shipped_order_cannot_be_cancelled_and_keeps_its_money(shop: Shop) -> None:
    sku = await product(shop, on_hand=2)
    order_id = await paid_order(shop, sku, 1, "key-ship-1")
    await shop.orders.fulfil(order_id, "staff-1")
    await shop.orders.ship(order_id, "staff-1", "DHL", "123")

    with pytest.raises(IllegalTransition):
        await shop.checkout.cancel_order(order_id, actor="staff-1", reason="too late")

    order = await shop.orders.order(order_id)
    assert (order.status.value, order.refunded.amount) == ("shipped", 0)
    assert (await shop.inventory.stock(sku)).sold == 1


async def test_settling_one_cancellation_from_several_places_at_once_refunds_it_once(
    shop: Shop,
) -> None:
    sku = await product(shop, price=1000, on_hand=4)
    order_id = await paid_order(shop, sku, 2, "key-cancel-race")
    await shop.orders.cancel(order_id, "staff-1", "customer called")

    # The route and the OrderCancelled consumer may both settle the same cancellation.
    settled = await asyncio.gather(*(shop.checkout.settle_cancellation(order_id) for _ in range(5)))

    assert {o.refunded for o in settled} == {Money(2200, "USD")}
    order = await shop.orders.order(order_id)
    assert order.refunded == order.paid == Money(2200, "USD")
    payment = await shop.payments.payment(order.payment_id or "")
    assert payment.refunded == Money(2200, "USD")
    assert (await shop.inventory.stock(sku)).available == 4


def gift_card_and(code: str, token: str | None) -> CheckoutRequest:
    return CheckoutRequest(
        email="ada@example.com",
        shipping_address=ADDRESS,
        payment_method="gift_card",
        gift_card_code=code,
        payment_token=token,
    )


async def split_tender_order(shop: Shop) -> tuple[str, str, str]:
    """An order of 11.00 paid 5.00 by gift card and 6.00 by card: (order, card payment, code)."""
    sku = await product(shop, price=1000, on_hand=5)
    card = await shop.payments.issue_gift_card(Money(500, "USD"))
    cart_id = await cart_with(shop, sku, 1)
    outcome = await shop.checkout.check_out(
        cart_id, f"split-{uuid.uuid4()}", gift_card_and(card.code, "tok_visa")
    )
    assert outcome.status == 201, outcome.body
    rest = await shop.payments.payment_for_checkout(f"{outcome.body['checkout_id']}:card")
    return outcome.body["id"], rest.id, card.code


async def test_a_gift_card_pays_what_it_covers_and_the_card_pays_the_rest(shop: Shop) -> None:
    order_id, card_payment_id, code = await split_tender_order(shop)

    order = await shop.orders.order(order_id)
    assert (order.status.value, order.paid) == ("paid", Money(1100, "USD"))
    gift = await shop.payments.payment(order.payment_id or "")
    card = await shop.payments.payment(card_payment_id)
    assert (gift.method.value, gift.captured) == ("gift_card", Money(500, "USD"))
    assert (card.method.value, card.captured) == ("card", Money(600, "USD"))
    assert await shop.payments.gift_card_balance(code) == Money(0, "USD")


async def test_a_declined_card_for_the_rest_gives_the_gift_card_and_stock_back(
    shop: Shop,
) -> None:
    sku = await product(shop, price=1000, on_hand=5)
    card = await shop.payments.issue_gift_card(Money(500, "USD"))
    cart_id = await cart_with(shop, sku, 1)

    outcome = await shop.checkout.check_out(
        cart_id, "split-declined", gift_card_and(card.code, "tok_chargeDeclined")
    )

    assert (outcome.status, outcome.body["code"]) == (402, "payment_declined")
    assert await shop.payments.gift_card_balance(card.code) == Money(500, "USD")
    assert (await shop.inventory.stock(sku)).available == 5
    assert await count_rows(shop.db, "orders_orders") == 0


async def test_a_gift_card_short_of_the_total_without_a_card_is_refused(shop: Shop) -> None:
    sku = await product(shop, price=1000, on_hand=5)
    card = await shop.payments.issue_gift_card(Money(500, "USD"))
    cart_id = await cart_with(shop, sku, 1)

    outcome = await shop.checkout.check_out(cart_id, "split-short", gift_card_and(card.code, None))

    assert (outcome.status, outcome.body["code"]) == (402, "payment_declined")
    assert outcome.body["reason"] == "insufficient_gift_card_balance"
    assert outcome.body["remaining"] == {"amount": 600, "currency": "USD"}
    assert await shop.payments.gift_card_balance(card.code) == Money(500, "USD")


async def test_cancelling_a_split_tender_order_refunds_both(shop: Shop) -> None:
    order_id, card_payment_id, code = await split_tender_order(shop)

    cancelled = await shop.checkout.cancel_order(order_id, "staff-1", "customer asked")

    assert (cancelled.status.value, cancelled.refunded) == ("cancelled", Money(1100, "USD"))
    assert await shop.payments.gift_card_balance(code) == Money(500, "USD")
    assert (await shop.payments.payment(card_payment_id)).refunded == Money(600, "USD")


async def test_a_split_tender_refund_goes_to_the_card_first_and_a_retry_agrees(
    shop: Shop,
) -> None:
    order_id, card_payment_id, code = await split_tender_order(shop)

    first = await shop.checkout.refund_order(order_id, Money(700, "USD"), "refund-0001")
    again = await shop.checkout.refund_order(order_id, Money(700, "USD"), "refund-0001")

    assert first.refunded == again.refunded == Money(700, "USD")
    assert (await shop.payments.payment(card_payment_id)).refunded == Money(600, "USD")
    assert await shop.payments.gift_card_balance(code) == Money(100, "USD")
    with pytest.raises(RefundExceedsCapture):
        await shop.checkout.refund_order(order_id, Money(500, "USD"), "refund-0002")
    assert (await shop.orders.order(order_id)).refunded == Money(700, "USD")


async def test_recovery_gives_back_both_tenders_of_a_split_checkout_that_died(
    shop: Shop,
) -> None:
    sku = await product(shop, price=1000, on_hand=2)
    card = await shop.payments.issue_gift_card(Money(500, "USD"))
    checkout_id = str(uuid.uuid4())
    cart_id = await cart_with(shop, sku, 1)
    await shop.inventory.reserve(checkout_id, [(sku, 1)])
    gift = await shop.payments.authorize(
        checkout_id, Money(1100, "USD"), "gift_card", gift_card_code=card.code
    )
    rest = await shop.payments.authorize(
        f"{checkout_id}:card", gift.remaining, "card", token="tok_visa"
    )
    async with shop.db.transaction() as uow:
        await uow.execute(crashed(checkout_id, cart_id))
        await uow.commit()

    assert await shop.checkout.recover(timedelta(minutes=1)) == 1

    assert (await shop.payments.payment(gift.id)).status.value == "voided"
    assert (await shop.payments.payment(rest.id)).status.value == "voided"
    assert await shop.payments.gift_card_balance(card.code) == Money(500, "USD")
    assert (await shop.inventory.stock(sku)).available == 2


# --- checkouts that meet the database together --------------------------------------------


async def test_a_batch_mixing_every_kind_of_buyer_answers_each_as_if_alone(shop: Shop) -> None:
    plenty = await product(shop, price=1000, on_hand=100)
    scarce_sku = await product(shop, price=1000, on_hand=1)
    gift = await shop.payments.issue_gift_card(Money(500, "USD"))
    paid_carts = [await cart_with(shop, plenty, 1) for _ in range(3)]
    scarce_carts = [await cart_with(shop, scarce_sku, 1) for _ in range(2)]
    declined_cart = await cart_with(shop, plenty, 2)
    split_cart = await cart_with(shop, plenty, 1)
    twice_cart = await cart_with(shop, plenty, 1)

    outcomes = await asyncio.gather(
        *(shop.checkout.check_out(c, f"mix-paid-{i}", paying()) for i, c in enumerate(paid_carts)),
        *(
            shop.checkout.check_out(c, f"mix-scarce-{i}", paying())
            for i, c in enumerate(scarce_carts)
        ),
        shop.checkout.check_out(declined_cart, "mix-declined", paying("tok_chargeDeclined")),
        shop.checkout.check_out(split_cart, "mix-split", gift_card_and(gift.code, "tok_visa")),
        shop.checkout.check_out(twice_cart, "mix-twice", paying()),
        shop.checkout.check_out(twice_cart, "mix-twice", paying()),
    )
    paid, scarce_out, (declined, split, first, second) = outcomes[:3], outcomes[3:5], outcomes[5:]

    assert [o.status for o in paid] == [201, 201, 201]
    assert sorted(o.status for o in scarce_out) == [201, 409]
    [sold_out] = [o for o in scarce_out if o.status == 409]
    assert (sold_out.body["code"], sold_out.body["sku"]) == ("out_of_stock", scarce_sku)
    assert (declined.status, declined.body["code"]) == (402, "payment_declined")
    assert declined.body["reason"] == "card_declined"
    assert split.status == 201
    assert first == second
    assert first.status == 201
    for outcome in [*paid, split, first, *(o for o in scarce_out if o.status == 201)]:
        order = await shop.orders.order(outcome.body["id"])
        assert (order.status.value, order.paid) == ("paid", Money(1100, "USD"))
    # 3 paid, 1 split, 1 bought twice over one key: 5 of plenty; the declined 2 are back.
    stock = await shop.inventory.stock(plenty)
    assert (stock.sold, stock.reserved, stock.available) == (5, 0, 95)
    assert (await shop.inventory.stock(scarce_sku)).sold == 1
    assert await count_rows(shop.db, "orders_orders") == 6
    assert await shop.inventory.check_ledger() == []
    declined_payment = await shop.payments.payment_for_checkout(declined.body["checkout_id"])
    assert (declined_payment.status.value, declined_payment.captured.amount) == ("failed", 0)
    assert (await shop.carts.snapshot(declined_cart)).status.value == "open"
    assert await shop.payments.gift_card_balance(gift.code) == Money(0, "USD")


async def test_a_key_reused_with_another_body_in_the_same_batch_is_refused(shop: Shop) -> None:
    sku = await product(shop, on_hand=10)
    cart_id = await cart_with(shop, sku, 1)
    other = replace(paying(), email="bob@example.com")

    first, second = await asyncio.gather(
        shop.checkout.check_out(cart_id, "mix-reused", paying()),
        shop.checkout.check_out(cart_id, "mix-reused", other),
        return_exceptions=True,
    )

    assert isinstance(first, Outcome)
    assert first.status == 201
    assert isinstance(second, IdempotencyKeyReused)
    assert (await shop.inventory.stock(sku)).sold == 1


async def test_a_burst_of_card_checkouts_costs_a_few_statements_each(shop: Shop) -> None:
    sku = await product(shop, price=1000, on_hand=1000)
    carts = [await cart_with(shop, sku, 1) for _ in range(40)]
    await paid_order(shop, sku, 1, "warm-up-key")  # reference data read once, as in a running shop
    before = statements_run()
    outcomes = await asyncio.gather(
        *(shop.checkout.check_out(c, f"burst-{i:04d}", paying()) for i, c in enumerate(carts))
    )
    statements = statements_run() - before

    assert [o.status for o in outcomes] == [201] * 40
    # One by one a checkout took 30 statements; in batches, a few each (all steps, the
    # provider's own bookkeeping included).
    assert statements / 40 <= 3, f"{statements} statements for 40 checkouts"
    assert (await shop.inventory.stock(sku)).sold == 41


async def test_ten_thousand_buyers_of_five_hundred_units_buy_exactly_five_hundred(
    shop: Shop,
) -> None:
    sku = await product(shop, price=1000, on_hand=500)
    carts = []
    for _wave in range(10):  # shoppers arrive a thousand at a time
        opened = await asyncio.gather(*(shop.carts.create("US") for _ in range(1_000)))
        await asyncio.gather(*(shop.carts.add_line(c.id, sku, 1) for c in opened))
        carts.extend(c.id for c in opened)

    outcomes = await asyncio.gather(
        *(shop.checkout.check_out(c, f"flash-{i:05d}", paying()) for i, c in enumerate(carts))
    )

    statuses = Counter(o.status for o in outcomes)
    assert statuses == {201: 500, 409: 9_500}
    assert {o.body["code"] for o in outcomes if o.status == 409} == {"out_of_stock"}
    stock = await shop.inventory.stock(sku)
    assert (stock.sold, stock.reserved, stock.available) == (500, 0, 0)
    assert await count_rows(shop.db, "orders_orders") == 500
    assert await count_rows(shop.db, "payments_payments") == 500
    assert await shop.inventory.check_ledger() == []


async def test_recovery_refunds_a_charge_whose_answer_was_never_recorded(shop: Shop) -> None:
    """The process died after the provider captured the money and before the checkout
    settled: no order, so the money goes back."""
    sku = await product(shop, on_hand=2)
    checkout_id = str(uuid.uuid4())
    cart_id = await cart_with(shop, sku, 1)
    quote = await shop.pricing.quote("US", [(sku, 1)])
    async with shop.db.transaction() as uow:
        [reservation] = await shop.inventory.reserve_batch(uow, [(checkout_id, [(sku, 1)])])
        [payment] = await shop.payments.open_charges(uow, [(checkout_id, quote.total)])
        await uow.execute(crashed(checkout_id, cart_id))
        await uow.commit()
    charged = await shop.payments.charge(payment, "tok_visa")
    assert charged.approved

    assert await shop.checkout.recover(timedelta(minutes=1)) == 1

    settled = await shop.payments.payment(payment.id)
    assert (settled.status.value, settled.captured, settled.refunded) == (
        "refunded",
        quote.total,
        quote.total,
    )
    async with shop.db.reading() as conn:
        charge = (
            await conn.execute(
                text(
                    "SELECT captured_amount, refunded_amount FROM payments_gateway_charges"
                    " WHERE authorize_key = :key"
                ),
                {"key": payment.id},
            )
        ).one()
    assert tuple(charge) == (quote.total.amount, quote.total.amount)
    assert (await shop.inventory.stock(sku)).available == 2
    assert await count_rows(shop.db, "orders_orders") == 0
    assert isinstance(reservation, Reservation)
