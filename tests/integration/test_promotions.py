"""Black Friday pricing through the HTTP API on both databases: discount codes staff make and
shoppers enter, checkout taking them off and holding their uses exactly, failures giving uses
back; and scheduled sales that start and end by themselves."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from colonnade.app import Shop
from colonnade.kernel.clock import SettableClock
from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.modules.pricing.service import NewSale
from colonnade.modules.promotions.service import Basket
from tests.conftest import count_rows
from tests.integration.storefront import (
    PASSWORD,
    SECRET,
    checkout_body,
    client,
    customer,
    product,
    started,
)
from tests.integration.test_checkout import half_done_checkout

ADDRESS = {"name": "Ada", "line1": "1 Row", "city": "Town", "postal_code": "1", "country": "US"}
START = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)


class Storefront:
    def __init__(self, shop: Shop, http: httpx.AsyncClient, clock: SettableClock) -> None:
        self.shop = shop
        self.http = http
        self.clock = clock
        self.staff: dict[str, str] = {}

    async def sign_in_staff(self) -> None:
        """A fresh token for the staff member (the tests move the clock past old ones)."""
        token = await self.http.post(
            "/auth/token", data={"username": "boss@shop.test", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        self.staff = {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def promotion(self, **body: Any) -> dict[str, Any]:
        made = await self.http.post("/admin/promotions", json=body, headers=self.staff)
        assert made.status_code == 201, made.text
        return dict(made.json())

    async def cart(self, *lines: tuple[str, int], headers: dict[str, str] | None = None) -> str:
        opened = await self.http.post("/store/carts", json={"market": "US"}, headers=headers or {})
        assert opened.status_code == 201, opened.text
        for sku, quantity in lines:
            added = await self.http.post(
                f"/store/carts/{opened.json()['id']}/lines",
                json={"sku": sku, "quantity": quantity},
                headers=headers or {},
            )
            assert added.status_code == 200, added.text
        return str(opened.json()["id"])

    async def apply(
        self, cart_id: str, code: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"/store/carts/{cart_id}/promotions", json={"code": code}, headers=headers or {}
        )

    async def check_out(
        self, cart_id: str, token: str = "tok_visa", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = checkout_body("ada@example.com", ADDRESS)
        body["payment"]["token"] = token
        return await self.http.post(
            f"/store/carts/{cart_id}/checkout",
            json=body,
            headers={"Idempotency-Key": f"key-{uuid.uuid4().hex}", **(headers or {})},
        )

    async def report(self, promotion_id: str) -> dict[str, Any]:
        await self.sign_in_staff()
        shown = await self.http.get(f"/admin/promotions/{promotion_id}", headers=self.staff)
        assert shown.status_code == 200, shown.text
        return dict(shown.json())

    async def count(self, table: str) -> int:
        return await count_rows(self.shop.db, table)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Storefront]:
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        database_pool_size=20,
        # The tests move the clock by days; carts left that long would expire.
        cart_idle_seconds=30 * 86400,
        # A thousand buyers race from one test address.
        rate_limit_checkout_per_address=5000,
    )
    clock = SettableClock(START)
    async with started(settings, us_tax=Decimal("0.10"), clock=clock) as app, client(app) as http:
        shop: Shop = app.state.shop
        await shop.identity.create_staff("boss@shop.test", PASSWORD)
        store = Storefront(shop, http, clock)
        await store.sign_in_staff()
        yield store


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


async def test_a_code_takes_its_percentage_off_the_cart_the_order_and_the_charge(
    store: Storefront,
) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    tee = await product(store.shop, price=2999, on_hand=10)
    made = await store.promotion(code="BF26", percent_off=20, usage_limit=100)
    cart_id = await store.cart((mug, 1), (tee, 1))

    applied = await store.apply(cart_id, "bf26")

    assert applied.status_code == 200, applied.text
    cart = applied.json()
    # 20% of 39.99 is 8.00 (7.998 rounded); split 1000:2999 by largest remainder.
    assert cart["discount"] == usd(800)
    assert [line["discount"] for line in cart["lines"]] == [usd(200), usd(600)]
    assert [line["line_total"] for line in cart["lines"]] == [usd(800), usd(2399)]
    assert cart["subtotal"] == usd(3199)
    # US tax (10%, on top) on what is left of each line: 80 + 239.9 -> 240.
    assert cart["tax"] == usd(320)
    assert cart["total"] == usd(3519)
    assert cart["promotion"] == {"code": "BF26", "applied": True, "refusal": None}
    assert (await store.http.get(f"/store/carts/{cart_id}")).json() == cart

    bought = await store.check_out(cart_id)

    assert bought.status_code == 201, bought.text
    assert bought.json()["total"] == usd(3519)
    assert bought.json()["discount"] == usd(800)
    order = await store.http.get(f"/admin/orders/{bought.json()['id']}", headers=store.staff)
    assert order.status_code == 200, order.text
    assert order.json()["discount"] == usd(800)
    assert [
        (ln["unit_price"], ln["discount"], ln["promotions"]) for ln in order.json()["lines"]
    ] == [
        (usd(1000), usd(200), [made["id"]]),
        (usd(2999), usd(600), [made["id"]]),
    ]
    assert order.json()["paid"] == usd(3519)
    payment = await store.shop.payments.payment(order.json()["payment_id"])
    assert payment.captured == Money(3519, "USD")
    report = await store.report(made["id"])
    assert report["used"] == 1
    assert report["uses"] == [
        {"currency": "USD", "uses": 1, "discount": usd(800), "revenue": usd(3519)}
    ]


async def test_a_fixed_amount_is_split_over_the_lines_and_never_exceeds_the_cart(
    store: Storefront,
) -> None:
    cheap = await product(store.shop, price=100, on_hand=10)
    dear = await product(store.shop, price=300, on_hand=10)
    made = await store.promotion(code="TENOFF", amount_off=[usd(1000)])
    free_cart = await store.cart((cheap, 3))
    cart_id = await store.cart((cheap, 1), (dear, 5))

    free = await store.apply(free_cart, "TenOff")
    split = await store.apply(cart_id, "tenoff")

    assert free.status_code == 200, free.text
    assert (free.json()["discount"], free.json()["total"]) == (usd(300), usd(0))
    assert split.json()["discount"] == usd(1000)
    # 1000 off 100 + 1500, by largest remainder: 62.5 and 937.5, the tie to the first line.
    assert [line["discount"] for line in split.json()["lines"]] == [usd(63), usd(937)]
    # A cart that would cost nothing is refused, and holds nothing, without failing the
    # checkouts beside it.
    answers = await asyncio.gather(store.check_out(free_cart), store.check_out(cart_id))
    assert answers[0].status_code == 409, answers[0].text
    assert answers[0].json()["code"] == "nothing_to_charge"
    assert answers[1].status_code == 201, answers[1].text
    assert answers[1].json()["total"] == usd(660)
    assert (await store.report(made["id"]))["used"] == 1
    assert (await store.shop.inventory.stock(cheap)).sold == 1


async def test_a_sale_starts_and_ends_on_the_clock(store: Storefront) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    starts = START + timedelta(days=1)
    made = await store.promotion(
        code="MIDNIGHT",
        percent_off=50,
        starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=24)).isoformat(),
    )
    cart_id = await store.cart((mug, 1))

    early = await store.apply(cart_id, "MIDNIGHT")
    assert early.status_code == 409, early.text
    assert early.json()["code"] == "promotion_not_started"
    assert (await store.http.get(f"/store/carts/{cart_id}")).json()["promotion"] is None

    store.clock.advance(timedelta(days=1))
    during = await store.apply(cart_id, "MIDNIGHT")
    assert during.status_code == 200, during.text
    assert during.json()["total"] == usd(550)

    store.clock.advance(timedelta(hours=24))
    after = (await store.http.get(f"/store/carts/{cart_id}")).json()
    assert after["total"] == usd(1100)
    assert after["promotion"]["applied"] is False
    assert after["promotion"]["refusal"]["code"] == "promotion_expired"

    refused = await store.check_out(cart_id)

    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "promotion_expired"
    assert await store.count("payments_payments") == 0
    assert (await store.shop.inventory.stock(mug)).available == 10
    assert (await store.report(made["id"]))["used"] == 0
    # Without the code the same cart buys at the full price.
    removed = await store.http.delete(f"/store/carts/{cart_id}/promotions/midnight")
    assert removed.status_code == 200, removed.text
    assert removed.json()["promotion"] is None
    bought = await store.check_out(cart_id)
    assert bought.status_code == 201, bought.text
    assert bought.json()["total"] == usd(1100)


async def test_each_code_that_cannot_apply_answers_its_own_problem_and_changes_nothing(
    store: Storefront,
) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    await store.promotion(code="EUONLY", percent_off=10, markets=["DE"])
    await store.promotion(code="BIGCART", percent_off=10, min_subtotal=[usd(5000)])
    await store.promotion(code="MEMBERS", percent_off=10, customers_only=True)
    await store.promotion(code="EUROS", amount_off=[{"amount": 500, "currency": "EUR"}])
    await store.promotion(code="GONE", percent_off=10, usage_limit=1)
    first = await store.cart((mug, 1))
    assert (await store.apply(first, "GONE")).status_code == 200
    assert (await store.check_out(first)).status_code == 201
    cart_id = await store.cart((mug, 1))
    before = (await store.http.get(f"/store/carts/{cart_id}")).json()

    for code, status, problem in [
        ("NOSUCHCODE", 422, "unknown_promotion_code"),
        ("no spaces", 422, "invalid_promotion_code"),
        ("EUONLY", 409, "promotion_not_in_market"),
        ("BIGCART", 409, "promotion_minimum_not_met"),
        ("MEMBERS", 409, "promotion_customers_only"),
        ("EUROS", 409, "promotion_not_in_currency"),
        ("GONE", 409, "promotion_used_up"),
    ]:
        answer = await store.apply(cart_id, code)
        assert answer.status_code == status, (code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == problem, (code, answer.text)
        assert (await store.http.get(f"/store/carts/{cart_id}")).json() == before

    not_held = await store.http.delete(f"/store/carts/{cart_id}/promotions/BIGCART")
    assert not_held.status_code == 404
    assert not_held.json()["code"] == "promotion_not_on_cart"


async def test_a_customer_limit_counts_each_customers_orders(store: Storefront) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    await store.promotion(code="ONCEEACH", percent_off=10, per_customer_limit=1)
    ada = await customer(store.http, "ada@example.com", "Ada")
    bob = await customer(store.http, "bob@example.com", "Bob")

    for who in (ada, bob):
        cart_id = await store.cart((mug, 1), headers=who)
        assert (await store.apply(cart_id, "ONCEEACH", headers=who)).status_code == 200
        assert (await store.check_out(cart_id, headers=who)).status_code == 201
    again = await store.cart((mug, 1), headers=ada)
    refused = await store.apply(again, "ONCEEACH", headers=ada)

    assert refused.status_code == 409
    assert refused.json()["code"] == "promotion_customer_limit_reached"


async def test_a_declined_card_and_a_cancelled_order_give_their_use_back(
    store: Storefront,
) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    made = await store.promotion(code="ONLYONE", percent_off=10, usage_limit=1)
    declined_cart = await store.cart((mug, 1))
    assert (await store.apply(declined_cart, "ONLYONE")).status_code == 200

    declined = await store.check_out(declined_cart, token="tok_chargeDeclined")

    assert declined.status_code == 402, declined.text
    assert (await store.report(made["id"]))["used"] == 0
    cart_id = await store.cart((mug, 1))
    assert (await store.apply(cart_id, "ONLYONE")).status_code == 200
    bought = await store.check_out(cart_id)
    assert bought.status_code == 201, bought.text
    assert (await store.report(made["id"]))["used"] == 1
    third = await store.cart((mug, 1))
    assert (await store.apply(third, "ONLYONE")).json()["code"] == "promotion_used_up"

    cancelled = await store.http.post(
        f"/admin/orders/{bought.json()['id']}/cancel",
        json={"reason": "changed their mind"},
        headers=store.staff,
    )

    assert cancelled.status_code == 200, cancelled.text
    report = await store.report(made["id"])
    assert report["used"] == 0
    assert report["uses"] == []
    assert (await store.apply(third, "ONLYONE")).status_code == 200


async def test_a_discounted_order_refunds_what_was_paid_and_no_more(store: Storefront) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    await store.promotion(code="HALF", percent_off=50)
    cart_id = await store.cart((mug, 2))
    assert (await store.apply(cart_id, "HALF")).status_code == 200
    bought = await store.check_out(cart_id)
    assert bought.status_code == 201, bought.text
    assert bought.json()["total"] == usd(1100)
    order_id = bought.json()["id"]

    too_much = await store.http.post(
        f"/admin/orders/{order_id}/refund",
        json={"amount": usd(1101)},
        headers={"Idempotency-Key": "refund-too-much", **store.staff},
    )
    # One of the two mugs, at what it cost after the discount, with its tax.
    one_mug = await store.http.post(
        f"/admin/orders/{order_id}/refund",
        json={"amount": usd(550)},
        headers={"Idempotency-Key": "refund-one-mug", **store.staff},
    )

    assert too_much.status_code == 409, too_much.text
    assert one_mug.status_code == 200, one_mug.text
    assert one_mug.json()["refunded"] == usd(550)


async def test_staff_bad_promotions_are_refused_precisely_and_make_nothing(
    store: Storefront,
) -> None:
    await store.promotion(code="TAKEN", percent_off=10)
    for body, status, problem in [
        ({"code": "both", "percent_off": 10, "amount_off": [usd(100)]}, 422, "invalid_promotion"),
        ({"code": "neither"}, 422, "invalid_promotion"),
        ({"code": "taken", "percent_off": 10}, 409, "promotion_code_taken"),
        ({"code": "x", "percent_off": 10}, 422, "invalid_promotion_code"),
        ({"code": "TOOMUCH", "percent_off": 101}, 422, "invalid_promotion"),
        (
            {
                "code": "BACKWARDS",
                "percent_off": 10,
                "starts_at": "2026-11-28T00:00:00Z",
                "ends_at": "2026-11-27T00:00:00Z",
            },
            422,
            "invalid_promotion_window",
        ),
        (
            {"code": "TWICE", "amount_off": [usd(100), usd(200)]},
            422,
            "duplicate_currency",
        ),
    ]:
        answer = await store.http.post("/admin/promotions", json=body, headers=store.staff)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["code"] == problem, (body, answer.text)
    listed = await store.http.get("/admin/promotions", headers=store.staff)
    assert [p["code"] for p in listed.json()] == ["TAKEN"]
    shopper = await customer(store.http, "eve@example.com", "Eve")
    forbidden = await store.http.post(
        "/admin/promotions", json={"code": "MINE", "percent_off": 90}, headers=shopper
    )
    assert forbidden.status_code == 403


async def test_a_thousand_buyers_racing_for_a_hundred_uses_get_exactly_a_hundred(
    store: Storefront,
) -> None:
    mug = await product(store.shop, price=1000, on_hand=2000)
    made = await store.promotion(code="FIRST100", percent_off=25, usage_limit=100)
    carts = []
    for _ in range(1000):
        cart = await store.shop.carts.create("US")
        await store.shop.carts.add_line(cart.id, mug, 1)
        await store.shop.carts.apply_promotion(cart.id, "FIRST100")
        carts.append(cart.id)

    answers = await asyncio.gather(*(store.check_out(cart_id) for cart_id in carts))

    outcomes = Counter(
        "discounted"
        if a.status_code == 201 and a.json()["discount"] == usd(250)
        else a.json().get("code", a.status_code)
        for a in answers
    )
    assert outcomes == {"discounted": 100, "promotion_used_up": 900}
    report = await store.report(made["id"])
    assert report["used"] == 100
    assert report["uses"][0]["uses"] == 100
    assert await store.count("orders_orders") == 100
    assert await store.count("payments_payments") == 100
    stock = await store.shop.inventory.stock(mug)
    assert (stock.sold, stock.reserved, stock.available) == (100, 0, 1900)


async def test_a_gift_card_pays_the_discounted_total_and_a_declined_rest_gives_the_use_back(
    store: Storefront,
) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    made = await store.promotion(code="GIFTED", percent_off=50, usage_limit=1)
    card = await store.shop.payments.issue_gift_card(Money(300, "USD"))

    async def pay_with_gift_card(token: str) -> httpx.Response:
        cart_id = await store.cart((mug, 1))
        assert (await store.apply(cart_id, "GIFTED")).status_code == 200
        body = checkout_body("ada@example.com", ADDRESS)
        body["payment"] = {"method": "gift_card", "gift_card_code": card.code, "token": token}
        return await store.http.post(
            f"/store/carts/{cart_id}/checkout",
            json=body,
            headers={"Idempotency-Key": f"key-{uuid.uuid4().hex}"},
        )

    declined = await pay_with_gift_card("tok_chargeDeclined")

    assert declined.status_code == 402, declined.text
    assert (await store.report(made["id"]))["used"] == 0
    assert await store.shop.payments.gift_card_balance(card.code) == Money(300, "USD")

    bought = await pay_with_gift_card("tok_visa")

    assert bought.status_code == 201, bought.text
    # Half of 10.00, plus 10% tax on the 5.00 left: 3.00 from the gift card, 2.50 by card.
    assert bought.json()["total"] == usd(550)
    assert bought.json()["lines"][0]["discount"] == usd(500)
    assert await store.shop.payments.gift_card_balance(card.code) == Money(0, "USD")
    assert (await store.report(made["id"]))["used"] == 1


async def test_recovery_gives_back_the_use_of_a_checkout_that_died(store: Storefront) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    made = await store.promotion(code="CRASHED", percent_off=10, usage_limit=1)
    # The half-done checkout is an hour old by the system's clock; the shop's follows it.
    store.clock.advance(datetime.now(UTC) - store.clock.now())
    crashed = await half_done_checkout(store.shop, mug, placed=False)
    basket = Basket("US", "USD", ((mug, 1000),), None)
    async with store.shop.db.transaction() as uow:
        [offer] = await store.shop.promotions.decide_batch(uow, [("CRASHED", basket)])
        assert not isinstance(offer, Exception)
        await store.shop.promotions.keep_batch(
            uow, [(crashed["checkout_id"], None, offer, Money(990, "USD"))]
        )
        await uow.commit()
    assert (await store.report(made["id"]))["used"] == 1

    assert await store.shop.checkout.recover(timedelta(minutes=1)) == 1

    assert (await store.report(made["id"]))["used"] == 0
    assert await store.count("promotions_uses") == 0


async def variant_on_shelf(store: Storefront, sku: str) -> dict[str, Any]:
    listed = await store.http.get("/store/products", params={"market": "US"})
    assert listed.status_code == 200, listed.text
    [variant] = [v for p in listed.json() for v in p["variants"] if v["sku"] == sku]
    return dict(variant)


async def test_a_scheduled_sale_starts_and_ends_by_itself_on_shelves_carts_and_orders(
    store: Storefront,
) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    tee = await product(store.shop, price=2500, on_hand=10)
    starts = START + timedelta(days=1)
    made = await store.http.post(
        "/admin/sales",
        json={
            "name": "Black Friday",
            "market": "US",
            "percent_off": 20,
            "prices": [{"sku": mug}, {"sku": tee, "price": usd(1999)}],
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(days=4)).isoformat(),
        },
        headers=store.staff,
    )
    assert made.status_code == 201, made.text
    # Before it starts: the price alone, and the page is kept.
    before = await variant_on_shelf(store, mug)
    assert (before["price"], before["compare_at"]) == (usd(1000), None)

    store.clock.advance(timedelta(days=1))

    # At the start the kept page is read again, with no event and no deploy.
    during = await variant_on_shelf(store, mug)
    assert (during["price"], during["compare_at"]) == (usd(800), usd(1000))
    assert (await variant_on_shelf(store, tee))["price"] == usd(1999)
    cart_id = await store.cart((mug, 1), (tee, 1))
    cart = (await store.http.get(f"/store/carts/{cart_id}")).json()
    assert [(ln["unit_price"], ln["compare_at"]) for ln in cart["lines"]] == [
        (usd(800), usd(1000)),
        (usd(1999), usd(2500)),
    ]
    bought = await store.check_out(cart_id)
    assert bought.status_code == 201, bought.text
    assert bought.json()["total"] == usd(3079)

    store.clock.advance(timedelta(days=4))

    after = await variant_on_shelf(store, mug)
    assert (after["price"], after["compare_at"]) == (usd(1000), None)


async def test_a_code_takes_its_percentage_off_the_sale_price(store: Storefront) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    await store.shop.pricing.create_sale(NewSale("Sale", "US", ((mug, Money(600, "USD")),)))
    await store.promotion(code="EXTRA10", percent_off=10)
    cart_id = await store.cart((mug, 1))

    applied = await store.apply(cart_id, "EXTRA10")

    assert applied.json()["lines"][0]["unit_price"] == usd(600)
    assert applied.json()["discount"] == usd(60)
    assert applied.json()["total"] == usd(594)


async def test_sales_that_would_price_a_sku_twice_at_once_are_refused(store: Storefront) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    tee = await product(store.shop, price=1000, on_hand=10)
    week = [START + timedelta(days=d) for d in (1, 8, 15)]

    async def sale(name: str, skus: list[str], starts: datetime, ends: datetime) -> httpx.Response:
        return await store.http.post(
            "/admin/sales",
            json={
                "name": name,
                "market": "US",
                "percent_off": 10,
                "prices": [{"sku": sku} for sku in skus],
                "starts_at": starts.isoformat(),
                "ends_at": ends.isoformat(),
            },
            headers=store.staff,
        )

    first = await sale("First", [mug], week[0], week[1])
    clash = await sale("Clash", [tee, mug], week[0] + timedelta(days=3), week[2])
    next_week = await sale("Next week", [mug], week[1], week[2])
    other_sku = await sale("Tees", [tee], week[0], week[1])

    assert first.status_code == 201, first.text
    assert clash.status_code == 409, clash.text
    assert clash.json()["code"] == "sale_overlaps"
    assert clash.json()["skus"] == [mug]
    assert next_week.status_code == 201, next_week.text
    assert other_sku.status_code == 201, other_sku.text
    listed = await store.http.get("/admin/sales", headers=store.staff)
    assert sorted(s["name"] for s in listed.json()) == ["First", "Next week", "Tees"]


async def test_bad_sales_are_refused_precisely_and_make_nothing(store: Storefront) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    for body, status, problem in [
        (
            {
                "name": "Euros",
                "market": "US",
                "prices": [{"sku": mug, "price": {"amount": 5, "currency": "EUR"}}],
            },
            422,
            "currency_mismatch",
        ),
        ({"name": "No price", "market": "US", "prices": [{"sku": mug}]}, 422, "invalid_sale"),
        (
            {
                "name": "Twice",
                "market": "US",
                "percent_off": 5,
                "prices": [{"sku": mug}, {"sku": mug}],
            },
            422,
            "invalid_sale",
        ),
        (
            {"name": "Nowhere", "market": "XX", "percent_off": 5, "prices": [{"sku": mug}]},
            422,
            "unknown_market",
        ),
        (
            {
                "name": "Backwards",
                "market": "US",
                "percent_off": 5,
                "prices": [{"sku": mug}],
                "starts_at": "2026-11-28T00:00:00Z",
                "ends_at": "2026-11-27T00:00:00Z",
            },
            422,
            "invalid_sale_window",
        ),
    ]:
        answer = await store.http.post("/admin/sales", json=body, headers=store.staff)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["code"] == problem, (body, answer.text)
    assert (await store.http.get("/admin/sales", headers=store.staff)).json() == []
    assert (await variant_on_shelf(store, mug))["price"] == usd(1000)


async def test_a_flash_sale_with_a_sale_price_and_a_code_sells_exactly_its_stock(
    store: Storefront,
) -> None:
    hot = await product(store.shop, price=12900, on_hand=50)
    await store.shop.pricing.create_sale(NewSale("Flash", "US", ((hot, None),), percent_off=30))
    made = await store.promotion(code="FLASH", percent_off=10)
    carts = []
    for _ in range(300):
        cart = await store.shop.carts.create("US")
        await store.shop.carts.add_line(cart.id, hot, 1)
        await store.shop.carts.apply_promotion(cart.id, "flash")
        carts.append(cart.id)

    answers = await asyncio.gather(*(store.check_out(cart_id) for cart_id in carts))

    outcomes = Counter(
        a.json()["total"]["amount"] if a.status_code == 201 else a.json()["code"] for a in answers
    )
    # 129.00 less 30% is 90.30, less 10% is 81.27, plus 10% tax: 89.40.
    assert outcomes == {8940: 50, "out_of_stock": 250}
    stock = await store.shop.inventory.stock(hot)
    assert (stock.sold, stock.reserved, stock.available) == (50, 0, 0)
    report = await store.report(made["id"])
    assert report["uses"] == [
        {"currency": "USD", "uses": 50, "discount": usd(903 * 50), "revenue": usd(8940 * 50)}
    ]


async def test_a_batch_of_single_use_codes_buys_one_order_each(store: Storefront) -> None:
    mug = await product(store.shop, price=1000, on_hand=50)
    made = await store.promotion(code="FLYER", percent_off=25)
    codes = await store.shop.promotions.generate_codes(made["id"], 20)
    assert len(set(codes)) == 20
    assert all(code.startswith("FLYER-") and code == code.upper() for code in codes)

    first = await store.cart((mug, 1))
    applied = await store.apply(first, codes[0].lower())
    assert applied.status_code == 200, applied.text
    assert applied.json()["discount"] == usd(250)
    assert (await store.check_out(first)).status_code == 201
    again = await store.cart((mug, 1))
    used = await store.apply(again, codes[0])
    assert used.status_code == 409, used.text
    assert used.json()["code"] == "promotion_code_used"

    declined_cart = await store.cart((mug, 1))
    assert (await store.apply(declined_cart, codes[1])).status_code == 200
    assert (await store.check_out(declined_cart, token="tok_chargeDeclined")).status_code == 402
    # A declined card lets its code go: the next buyer with it gets the discount.
    assert (await store.apply(again, codes[1])).status_code == 200
    assert (await store.check_out(again)).status_code == 201

    report = await store.report(made["id"])
    assert (report["codes"], report["codes_used"], report["used"]) == (20, 2, 2)


async def test_buyers_racing_with_one_single_use_code_get_one_discount(
    store: Storefront,
) -> None:
    mug = await product(store.shop, price=1000, on_hand=100)
    made = await store.promotion(code="ONECODE", percent_off=50)
    [code] = await store.shop.promotions.generate_codes(made["id"], 1)
    carts = []
    for _ in range(40):
        cart = await store.shop.carts.create("US")
        await store.shop.carts.add_line(cart.id, mug, 1)
        await store.shop.carts.apply_promotion(cart.id, code)
        carts.append(cart.id)

    answers = await asyncio.gather(*(store.check_out(cart_id) for cart_id in carts))

    outcomes = Counter(a.status_code if a.status_code == 201 else a.json()["code"] for a in answers)
    assert outcomes == {201: 1, "promotion_code_used": 39}
    assert (await store.report(made["id"]))["codes_used"] == 1


async def test_an_erased_customers_uses_stay_counted_but_name_nobody(store: Storefront) -> None:
    mug = await product(store.shop, price=1000, on_hand=10)
    made = await store.promotion(code="LOYAL", percent_off=10, per_customer_limit=1)
    ada = await customer(store.http, "ada@example.com", "Ada")
    cart_id = await store.cart((mug, 1), headers=ada)
    assert (await store.apply(cart_id, "LOYAL", headers=ada)).status_code == 200
    assert (await store.check_out(cart_id, headers=ada)).status_code == 201
    named = "SELECT count(*) FROM promotions_uses WHERE customer_id IS NOT NULL"

    async def uses_naming_a_customer() -> int:
        async with store.shop.db.reading() as conn:
            return int(await conn.scalar(text(named)) or 0)

    assert await uses_naming_a_customer() == 1

    erased = await store.http.delete("/store/customers/me", headers=ada)

    assert erased.status_code == 204, erased.text
    for _ in range(100):  # the erasure reaches promotions as an event
        if await uses_naming_a_customer() == 0:
            break
        await asyncio.sleep(0.1)
    assert await uses_naming_a_customer() == 0
    assert (await store.report(made["id"]))["uses"][0]["uses"] == 1
