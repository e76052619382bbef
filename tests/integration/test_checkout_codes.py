"""What a checkout's own body says beside the cart, through the HTTP API on both databases.

A discount code: it buys with its discount in place of the cart's code, on the card path and
the saga's, is refused with its own problem while nothing is charged, and keeps its usage
limit exact under a race. The total the shopper was shown: when an automatic promotion or a
sale ended since, the checkout is refused with the new total and nothing is charged or held."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.integration.storefront import checkout_body, product
from tests.integration.test_promotions import (  # noqa: F401 - store is a fixture
    ADDRESS,
    START,
    Storefront,
    store,
    usd,
)


@pytest.fixture
async def front(store: Storefront) -> Storefront:  # noqa: F811 - the fixture
    return store


async def check_out_with(
    front: Storefront,
    cart_id: str,
    code: Any,
    *,
    payment: dict[str, Any] | None = None,
    key: str | None = None,
    expected_total: dict[str, Any] | None = None,
) -> httpx.Response:
    body = checkout_body("ada@example.com", ADDRESS)
    body["promotion_code"] = code
    if expected_total is not None:
        body["expected_total"] = expected_total
    if payment is not None:
        body["payment"] = payment
    return await front.http.post(
        f"/store/carts/{cart_id}/checkout",
        json=body,
        headers={"Idempotency-Key": key or f"key-{uuid.uuid4().hex}"},
    )


async def test_a_code_given_at_checkout_buys_with_its_discount_in_place_of_the_carts(
    front: Storefront,
) -> None:
    mug = await product(front.shop, price=1000, on_hand=10)
    cart_code = await front.promotion(code="TEN", percent_off=10)
    given = await front.promotion(code="QUARTER", percent_off=25, usage_limit=5)
    by_card = await front.cart((mug, 2))
    assert (await front.apply(by_card, "TEN")).status_code == 200
    by_transfer = await front.cart((mug, 1))

    card = await check_out_with(front, by_card, "quarter")
    transfer = await check_out_with(
        front, by_transfer, "QUARTER", payment={"method": "bank_transfer"}
    )

    assert card.status_code == 201, card.text
    # 2 x 10.00 less 25 %, then 10 % tax.
    assert (card.json()["discount"], card.json()["total"]) == (usd(500), usd(1650))
    assert transfer.status_code == 201, transfer.text
    assert (transfer.json()["discount"], transfer.json()["total"]) == (usd(250), usd(825))
    assert (await front.report(given["id"]))["used"] == 2
    assert (await front.report(cart_code["id"]))["used"] == 0


async def test_each_code_refused_at_checkout_answers_its_own_problem_and_charges_nothing(
    front: Storefront,
) -> None:
    mug = await product(front.shop, price=1000, on_hand=10)
    await front.promotion(code="EUONLY", percent_off=10, markets=["DE"])
    await front.promotion(code="GONE", percent_off=10, usage_limit=1)
    assert (await check_out_with(front, await front.cart((mug, 1)), "GONE")).status_code == 201
    cart_id = await front.cart((mug, 1))
    before = (await front.http.get(f"/store/carts/{cart_id}")).json()
    orders, payments = await front.count("orders_orders"), await front.count("payments_payments")

    for code, status, problem in [
        ("NOSUCHCODE", 422, "unknown_promotion_code"),
        ("no spaces", 422, "invalid_promotion_code"),
        ("EUONLY", 409, "promotion_not_in_market"),
        ("GONE", 409, "promotion_used_up"),
    ]:
        answer = await check_out_with(front, cart_id, code)
        assert answer.status_code == status, (code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == problem, (code, answer.text)
        assert (await front.http.get(f"/store/carts/{cart_id}")).json() == before
    not_text = await check_out_with(front, cart_id, 42)
    assert not_text.status_code == 422

    assert await front.count("orders_orders") == orders
    assert await front.count("payments_payments") == payments
    assert (await front.shop.inventory.stock(mug)).available == 9
    # The key names the request: the same key with another code is a different checkout.
    first = await check_out_with(front, cart_id, None, key="the-one-key")
    assert first.status_code == 201, first.text
    assert first.json()["total"] == usd(1100)
    reused = await check_out_with(front, cart_id, "GONE", key="the-one-key")
    assert reused.status_code == 422, reused.text
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_buyers_racing_with_a_limited_code_at_checkout_get_exactly_its_uses(
    front: Storefront,
) -> None:
    mug = await product(front.shop, price=1000, on_hand=500)
    made = await front.promotion(code="FIRST20", percent_off=25, usage_limit=20)
    carts = []
    for _ in range(200):
        cart = await front.shop.carts.create("US")
        await front.shop.carts.add_line(cart.id, mug, 1)
        carts.append(cart.id)

    answers = await asyncio.gather(*(check_out_with(front, c, "FIRST20") for c in carts))

    outcomes = Counter(
        "discounted"
        if a.status_code == 201 and a.json()["discount"] == usd(250)
        else a.json().get("code", a.status_code)
        for a in answers
    )
    assert outcomes == {"discounted": 20, "promotion_used_up": 180}
    assert (await front.report(made["id"]))["used"] == 20
    assert await front.count("orders_orders") == 20
    stock = await front.shop.inventory.stock(mug)
    assert (stock.sold, stock.reserved, stock.available) == (20, 0, 480)


async def test_a_checkout_expecting_the_total_shown_is_refused_when_a_promotion_or_sale_ended(
    front: Storefront,
) -> None:
    mug = await product(front.shop, price=1000, on_hand=10)
    tee = await product(front.shop, price=2000, on_hand=10)
    ends = (START + timedelta(hours=1)).isoformat()
    automatic = await front.promotion(title="Launch hour", percent_off=20, ends_at=ends)
    sale = await front.http.post(
        "/admin/sales",
        json={
            "name": "Tee hour",
            "market": "US",
            "percent_off": 50,
            "prices": [{"sku": tee}],
            "ends_at": ends,
        },
        headers=front.staff,
    )
    assert sale.status_code == 201, sale.text
    by_card = await front.cart((mug, 1))
    by_transfer = await front.cart((tee, 1))
    shown = [
        (await front.http.get(f"/store/carts/{c}")).json()["total"] for c in (by_card, by_transfer)
    ]
    # 10.00 less 20 %, and 20.00 at half price (10.00 less 20 %), each with 10 % tax.
    assert shown == [usd(880), usd(880)]
    orders, payments = await front.count("orders_orders"), await front.count("payments_payments")

    front.clock.advance(timedelta(hours=2))
    card = await check_out_with(front, by_card, None, expected_total=shown[0])
    transfer = await check_out_with(
        front, by_transfer, None, payment={"method": "bank_transfer"}, expected_total=shown[1]
    )

    for answer, now in [(card, usd(1100)), (transfer, usd(2200))]:
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "total_changed"
        assert (answer.json()["expected_total"], answer.json()["total"]) == (usd(880), now)
    assert await front.count("orders_orders") == orders
    assert await front.count("payments_payments") == payments
    assert (await front.shop.inventory.stock(mug)).available == 10
    assert (await front.shop.inventory.stock(tee)).available == 10
    assert (await front.report(automatic["id"]))["used"] == 0
    # Shown the cart again, the shopper buys at its new total.
    again = await check_out_with(front, by_card, None, expected_total=usd(1100))
    assert again.status_code == 201, again.text
    assert again.json()["total"] == usd(1100)
