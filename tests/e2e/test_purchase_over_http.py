"""The purchase path against a started shop, on SQLite and PostgreSQL: the flash-sale
guarantee, idempotent retries, declines and their compensation."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import httpx
import pytest

from tests.e2e.buyers import buy, checkout_body, flash_sale
from tests.e2e.conftest import RunningShop
from tests.e2e.staff import Staff


@pytest.fixture(scope="module")
def staff(shop: RunningShop) -> Staff:
    return Staff.sign_in(shop)


def test_a_flash_sale_sells_exactly_the_stock(shop: RunningShop, staff: Staff) -> None:
    stock, buyers = 20, 200
    sku = staff.new_product(price_cents=4999, on_hand=stock)

    tally = asyncio.run(flash_sale(shop.base_url, sku, buyers))

    assert tally.statuses == {201: stock, 409: buyers - stock}, tally.codes
    assert tally.codes == {"ok": stock, "out_of_stock": buyers - stock}
    sold_out = [p.body for p in tally.purchases if p.status == 409]
    assert all(problem["sku"] == sku for problem in sold_out)
    level = staff.stock(sku)
    assert (level["on_hand"], level["reserved"], level["sold"], level["available"]) == (
        stock,
        0,
        stock,
        0,
    )
    paid = [o for o in staff.orders_for(sku) if o["status"] == "paid"]
    assert len(paid) == stock
    assert sorted(o["id"] for o in paid) == sorted(
        p.body["id"] for p in tally.purchases if p.status == 201
    )
    commits = [e for e in staff.ledger(sku) if e["reason"] == "commit"]
    assert -sum(e["delta_reserved"] for e in commits) == stock


def test_the_same_key_sent_at_once_ten_times_buys_once(shop: RunningShop, staff: Staff) -> None:
    sku = staff.new_product(price_cents=1500, on_hand=5)
    key = uuid.uuid4().hex

    async def retries() -> list[tuple[int, dict]]:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{shop.base_url}/store/carts", json={"market": "US"}) as r:
                cart = await r.json()
            await session.post(
                f"{shop.base_url}/store/carts/{cart['id']}/lines", json={"sku": sku, "quantity": 2}
            )

            async def send() -> tuple[int, dict]:
                async with session.post(
                    f"{shop.base_url}/store/carts/{cart['id']}/checkout",
                    json=checkout_body(),
                    headers={"Idempotency-Key": key},
                ) as response:
                    return response.status, await response.json(content_type=None)

            answers = await asyncio.gather(*(send() for _ in range(10)))
            async with session.post(
                f"{shop.base_url}/store/carts/{cart['id']}/checkout",
                json=checkout_body(email="someone.else@example.com"),
                headers={"Idempotency-Key": key},
            ) as response:
                answers.append((response.status, await response.json(content_type=None)))
            return answers

    answers = asyncio.run(retries())
    first = answers[0]
    assert first[0] == 201
    assert answers[:10] == [first] * 10
    assert answers[10][0] == 422
    assert answers[10][1]["code"] == "idempotency_key_reused"
    assert len(staff.orders_for(sku)) == 1
    assert staff.stock(sku)["sold"] == 2
    payment = staff.payment_of(first[1]["id"])
    assert payment["captured"] == first[1]["total"]


def test_a_declined_card_gets_402_and_gives_the_stock_back(shop: RunningShop, staff: Staff) -> None:
    sku = staff.new_product(price_cents=2000, on_hand=3)

    async def attempt(token: str) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as session:
            purchase = await buy(session, shop.base_url, sku, quantity=3, token=token)
            return purchase.status, purchase.body

    for token, reason in (
        ("tok_chargeDeclined", "card_declined"),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ):
        status, problem = asyncio.run(attempt(token))
        assert status == 402
        assert problem["code"] == "payment_declined"
        assert problem["reason"] == reason
        assert staff.stock(sku)["available"] == 3
    assert staff.orders_for(sku) == []


def test_checkout_refuses_a_missing_key_and_an_empty_or_unknown_cart(shop: RunningShop) -> None:
    base = shop.base_url
    cart = httpx.post(base + "/store/carts", json={"market": "US"}).json()
    no_key = httpx.post(f"{base}/store/carts/{cart['id']}/checkout", json=checkout_body())
    assert (no_key.status_code, no_key.json()["code"]) == (422, "invalid_input")
    assert no_key.json()["errors"][0]["field"] == "Idempotency-Key"
    bad_key = httpx.post(
        f"{base}/store/carts/{cart['id']}/checkout",
        json=checkout_body(),
        headers={"Idempotency-Key": "short"},
    )
    assert (bad_key.status_code, bad_key.json()["code"]) == (422, "idempotency_key_required")
    empty = httpx.post(
        f"{base}/store/carts/{cart['id']}/checkout",
        json=checkout_body(),
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert (empty.status_code, empty.json()["code"]) == (422, "cart_empty")
    unknown = httpx.post(
        f"{base}/store/carts/{uuid.uuid4()}/checkout",
        json=checkout_body(),
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "cart_not_found")
    card_number = checkout_body()
    card_number["payment"]["token"] = "4242424242424242"
    refused = httpx.post(
        f"{base}/store/carts/{cart['id']}/checkout",
        json=card_number,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert refused.status_code == 422


def test_staff_cancel_and_refund_over_http(shop: RunningShop, staff: Staff) -> None:
    sku = staff.new_product(price_cents=1000, on_hand=4)

    async def purchase(quantity: int) -> dict:
        async with aiohttp.ClientSession() as session:
            bought = await buy(session, shop.base_url, sku, quantity=quantity)
            assert bought.status == 201, bought.body
            return bought.body

    cancelled = asyncio.run(purchase(2))
    answer = staff.call(
        "POST", f"/admin/orders/{cancelled['id']}/cancel", json={"reason": "customer called"}
    )
    assert answer["status"] == "cancelled"
    assert answer["refunded"] == answer["paid"] == cancelled["total"]
    assert staff.stock(sku)["available"] == 4

    refunded = asyncio.run(purchase(1))
    partial = httpx.post(
        f"{shop.base_url}/admin/orders/{refunded['id']}/refund",
        headers={**staff.headers, "Idempotency-Key": "refund-0001"},
        json={"amount": {"amount": 500, "currency": "USD"}},
    )
    assert partial.status_code == 200, partial.text
    assert partial.json()["refunded"] == {"amount": 500, "currency": "USD"}
    too_much = httpx.post(
        f"{shop.base_url}/admin/orders/{refunded['id']}/refund",
        headers={**staff.headers, "Idempotency-Key": "refund-0002"},
        json={"amount": refunded["total"]},
    )
    assert (too_much.status_code, too_much.json()["code"]) == (409, "refund_exceeds_capture")
    guest = httpx.get(
        f"{shop.base_url}/store/orders/{refunded['id']}", params={"token": refunded["access_token"]}
    )
    assert guest.status_code == 200
    assert guest.json()["refunded"] == {"amount": 500, "currency": "USD"}
