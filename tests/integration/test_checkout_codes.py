"""A discount code given in the checkout's own body, through the HTTP API on both databases:
it buys with its discount in place of the cart's code, on the card path and the saga's, is
refused with its own problem while nothing is charged, and keeps its usage limit exact under
a race."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.integration.storefront import checkout_body, product
from tests.integration.test_promotions import (  # noqa: F401 - store is a fixture
    ADDRESS,
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
) -> httpx.Response:
    body = checkout_body("ada@example.com", ADDRESS)
    body["promotion_code"] = code
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
