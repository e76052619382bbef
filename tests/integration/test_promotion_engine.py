"""Promotions beyond one code, through the HTTP API on both databases: automatic promotions
every qualifying cart gets, targets by SKU, product and category, buy X get Y, and stacking
(which promotions combine, which one wins alone, and the cart saying why the others do not);
each kept on the order's lines and counted in the promotion's uses."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from colonnade.app import Shop
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.migrations import alembic_config, upgrade
from colonnade.modules import MODULES
from colonnade.modules.promotions.schema import promotions, uses
from tests.integration.storefront import customer, product
from tests.integration.test_promotions import (  # noqa: F401 - store is a fixture
    START,
    Storefront,
    store,
    usd,
)


@pytest.fixture
async def front(store: Storefront) -> Storefront:  # noqa: F811 - the fixture
    return store


async def placed_product(shop: Shop, *, price: int, category: str | None = None) -> str:
    """A product with one variant in `category`, priced in USD, 100 in stock; its SKU."""
    return await product(shop, price=price, on_hand=100, category=category)


async def shown(
    front: Storefront, cart_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    answer = await front.http.get(f"/store/carts/{cart_id}", headers=headers or {})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def offers(cart: dict[str, Any]) -> list[tuple[str, bool, int, str | None]]:
    """Each promotion on the cart: its name, whether it applies, what it takes off, and the
    code of its reason when it does not."""
    return [
        (p["name"], p["applied"], p["discount"]["amount"], p["reason"] and p["reason"]["code"])
        for p in cart["promotions"]
    ]


async def order_lines(front: Storefront, order_id: str) -> dict[str, tuple[int, list[str]]]:
    order = await front.http.get(f"/admin/orders/{order_id}", headers=front.staff)
    assert order.status_code == 200, order.text
    return {ln["sku"]: (ln["discount"]["amount"], ln["promotions"]) for ln in order.json()["lines"]}


async def test_an_automatic_promotion_takes_off_its_category_and_those_below_it(
    front: Storefront,
) -> None:
    await front.shop.catalog.set_category("kitchen", {"en-US": "Kitchen"})
    await front.shop.catalog.set_category("mugs", {"en-US": "Mugs"}, parent="kitchen")
    mug = await placed_product(front.shop, price=1000, category="mugs")
    tee = await placed_product(front.shop, price=2000)
    made = await front.promotion(title="Kitchen week", percent_off=10, categories=["kitchen"])
    assert (made["code"], made["automatic"], made["categories"]) == (None, True, ["kitchen"])

    cart_id = await front.cart((mug, 2), (tee, 1))
    cart = await shown(front, cart_id)

    # 10% of the two mugs (20.00) only; no code was entered.
    assert cart["discount"] == usd(200)
    assert [(ln["sku"], ln["discount"]) for ln in cart["lines"]] == [
        (mug, usd(200)),
        (tee, usd(0)),
    ]
    assert offers(cart) == [("Kitchen week", True, 200, None)]
    assert cart["promotion"] is None

    bought = await front.check_out(cart_id)

    assert bought.status_code == 201, bought.text
    assert bought.json()["discount"] == usd(200)
    assert await order_lines(front, bought.json()["id"]) == {
        mug: (200, [made["id"]]),
        tee: (0, []),
    }
    report = await front.report(made["id"])
    assert report["uses"] == [
        {"currency": "USD", "uses": 1, "discount": usd(200), "revenue": usd(4180)}
    ]
    # A cart with nothing of the category is told why it gets nothing.
    other = await shown(front, await front.cart((tee, 1)))
    assert other["discount"] == usd(0)
    assert offers(other) == [("Kitchen week", False, 0, "promotion_no_matching_items")]


async def test_buy_two_get_one_free_gives_the_cheapest_of_each_three(front: Storefront) -> None:
    mug = await placed_product(front.shop, price=1000)
    cup = await placed_product(front.shop, price=600)
    other = await placed_product(front.shop, price=5000)
    made = await front.promotion(
        title="3 for 2", percent_off=100, buy_quantity=2, get_quantity=1, skus=[mug, cup]
    )

    two = await shown(front, await front.cart((mug, 1), (cup, 1), (other, 1)))
    assert two["discount"] == usd(0)
    assert offers(two) == [("3 for 2", False, 0, "promotion_quantity_not_met")]

    three_id = await front.cart((mug, 2), (cup, 1), (other, 1))
    three = await shown(front, three_id)
    # 10.00, 10.00, 6.00: the cup is the one got.
    assert [(ln["sku"], ln["discount"]["amount"]) for ln in three["lines"]] == [
        (mug, 0),
        (cup, 600),
        (other, 0),
    ]
    # Five items are one group of three (10, 10, 10: one mug free) and two left over.
    five = await shown(front, await front.cart((mug, 3), (cup, 2)))
    assert [(ln["sku"], ln["discount"]["amount"]) for ln in five["lines"]] == [
        (mug, 1000),
        (cup, 0),
    ]

    bought = await front.check_out(three_id)

    assert bought.status_code == 201, bought.text
    assert (await order_lines(front, bought.json()["id"]))[cup] == (600, [made["id"]])


async def test_combinable_promotions_stack_and_the_best_exclusive_one_wins_alone(
    front: Storefront,
) -> None:
    mug = await placed_product(front.shop, price=10000)
    ten = await front.promotion(title="Ten off", percent_off=10, combines=True)
    five = await front.promotion(code="FIVE", amount_off=[usd(500)], combines=True)
    await front.promotion(code="TWENTY", percent_off=20)
    await front.promotion(title="Small exclusive", percent_off=5)

    stacked_id = await front.cart((mug, 1))
    stacked = await front.apply(stacked_id, "five")

    assert stacked.status_code == 200, stacked.text
    # 10% of 100.00 first, then 5.00 off: 15.00 together beat the exclusive 5%.
    assert stacked.json()["discount"] == usd(1500)
    assert offers(stacked.json()) == [
        ("Ten off", True, 1000, None),
        ("FIVE", True, 500, None),
        ("Small exclusive", False, 0, "promotion_not_combinable"),
    ]
    assert stacked.json()["promotion"] == {"code": "FIVE", "applied": True, "refusal": None}

    alone_id = await front.cart((mug, 1))
    alone = await front.apply(alone_id, "TWENTY")

    assert alone.status_code == 200, alone.text
    assert alone.json()["discount"] == usd(2000)
    assert offers(alone.json()) == [
        ("TWENTY", True, 2000, None),
        ("Ten off", False, 0, "promotion_not_combinable"),
        ("Small exclusive", False, 0, "promotion_not_combinable"),
    ]
    # The same cart chooses alike every time it is priced.
    assert await shown(front, alone_id) == alone.json()

    bought = await front.check_out(stacked_id)

    assert bought.status_code == 201, bought.text
    assert bought.json()["discount"] == usd(1500)
    discount, ids = (await order_lines(front, bought.json()["id"]))[mug]
    assert (discount, sorted(ids)) == (1500, sorted([ten["id"], five["id"]]))
    assert (await front.report(ten["id"]))["uses"][0]["discount"] == usd(1000)
    assert (await front.report(five["id"]))["uses"][0]["discount"] == usd(500)


async def test_a_code_outdone_by_an_exclusive_promotion_stays_on_the_cart_unused(
    front: Storefront,
) -> None:
    mug = await placed_product(front.shop, price=10000)
    big = await front.promotion(title="Half off", percent_off=50)
    small = await front.promotion(code="SMALL", percent_off=10, usage_limit=10)
    cart_id = await front.cart((mug, 1))

    applied = await front.apply(cart_id, "SMALL")

    assert applied.status_code == 200, applied.text
    cart = applied.json()
    assert cart["discount"] == usd(5000)
    assert cart["promotion"]["applied"] is False
    assert cart["promotion"]["refusal"]["code"] == "promotion_not_combinable"
    bought = await front.check_out(cart_id)
    assert bought.status_code == 201, bought.text
    assert bought.json()["discount"] == usd(5000)
    # Only the promotion that applied holds a use.
    assert (await front.report(big["id"]))["uses"][0]["uses"] == 1
    assert (await front.report(small["id"]))["used"] == 0


async def test_buyers_racing_for_an_automatic_promotions_last_uses_get_exactly_its_limit(
    front: Storefront,
) -> None:
    mug = await placed_product(front.shop, price=1000)
    made = await front.promotion(title="First five", percent_off=50, usage_limit=5)
    carts = [await front.cart((mug, 1)) for _ in range(30)]

    answers = await asyncio.gather(*(front.check_out(cart_id) for cart_id in carts))

    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
    # Past its limit the promotion simply no longer applies: the rest pay the full price.
    assert Counter(a.json()["discount"]["amount"] for a in answers) == {500: 5, 0: 25}
    report = await front.report(made["id"])
    assert (report["used"], report["uses"][0]["uses"]) == (5, 5)
    assert offers(await shown(front, carts[0])) == [("First five", False, 0, "promotion_used_up")]


async def test_a_first_order_promotion_goes_to_each_customers_first_order_once(
    front: Storefront,
) -> None:
    mug = await placed_product(front.shop, price=1000)
    made = await front.promotion(title="Welcome", percent_off=15, first_order_only=True)
    ada = await customer(front.http, "ada@example.com", "Ada")
    guest = await shown(front, await front.cart((mug, 1)))
    assert offers(guest) == [("Welcome", False, 0, "promotion_customers_only")]

    # Ada checks out five carts at once: only one of them is her first order.
    carts = [await front.cart((mug, 1), headers=ada) for _ in range(5)]
    assert offers(await shown(front, carts[0], ada)) == [("Welcome", True, 150, None)]
    answers = await asyncio.gather(*(front.check_out(c, headers=ada) for c in carts))

    assert all(a.status_code == 201 for a in answers), [a.text for a in answers]
    assert Counter(a.json()["discount"]["amount"] for a in answers) == {150: 1, 0: 4}
    again = await shown(front, await front.cart((mug, 1), headers=ada), ada)
    assert offers(again) == [("Welcome", False, 0, "promotion_first_order_only")]
    assert (await front.report(made["id"]))["uses"][0]["uses"] == 1
    # A first-timer still gets it.
    bob = await customer(front.http, "bob@example.com", "Bob")
    bought = await front.check_out(await front.cart((mug, 1), headers=bob), headers=bob)
    assert bought.json()["discount"] == usd(150)


async def refund(front: Storefront, order_id: str, key: str, **body: Any) -> Any:
    return await front.http.post(
        f"/admin/orders/{order_id}/refund",
        json=body,
        headers={"Idempotency-Key": f"refund-{key}", **front.staff},
    )


async def test_a_discounted_line_is_refunded_by_units_prorated_to_exactly_what_it_paid(
    front: Storefront,
) -> None:
    mug = await placed_product(front.shop, price=1000)
    tee = await placed_product(front.shop, price=2000)
    await front.promotion(title="A euro off", amount_off=[usd(100)], skus=[mug])
    bought = await front.check_out(await front.cart((mug, 3), (tee, 1)))
    assert bought.status_code == 201, bought.text
    order_id = bought.json()["id"]
    # The mugs paid 29.00 after the discount, plus 10% tax: 31.90, which is not a third of
    # anything: the units give back 10.63, 10.63 and 10.64.
    first = await refund(front, order_id, "one", lines=[{"sku": mug, "quantity": 1}])

    assert first.status_code == 200, first.text
    assert first.json()["refunded"] == usd(1063)
    again = await refund(front, order_id, "one", lines=[{"sku": mug, "quantity": 1}])
    assert (again.status_code, again.json()["refunded"]) == (200, usd(1063))
    before = (await front.http.get(f"/admin/orders/{order_id}", headers=front.staff)).json()
    for key, body, status, problem in [
        ("one", {"lines": [{"sku": mug, "quantity": 2}]}, 409, "refund_key_reused"),
        ("three", {"lines": [{"sku": mug, "quantity": 3}]}, 409, "refund_exceeds_line"),
        ("none", {"lines": [{"sku": "NOT-BOUGHT", "quantity": 1}]}, 422, "line_not_on_order"),
        ("zero", {"lines": [{"sku": mug, "quantity": 0}]}, 422, "invalid_refund_lines"),
        ("empty", {"lines": []}, 422, "invalid_refund_lines"),
        (
            "twice",
            {"lines": [{"sku": mug, "quantity": 1}, {"sku": mug, "quantity": 1}]},
            422,
            "invalid_refund_lines",
        ),
        (
            "both",
            {"amount": usd(100), "lines": [{"sku": mug, "quantity": 1}]},
            422,
            ("invalid_refund"),
        ),
        ("neither", {}, 422, "invalid_refund"),
    ]:
        answer = await refund(front, order_id, key, **body)
        assert answer.status_code == status, (key, answer.text)
        assert answer.json()["code"] == problem, (key, answer.text)
    after = (await front.http.get(f"/admin/orders/{order_id}", headers=front.staff)).json()
    assert after == before

    rest = await refund(front, order_id, "rest", lines=[{"sku": mug, "quantity": 2}])

    assert rest.status_code == 200, rest.text
    assert rest.json()["refunded"] == usd(3190)
    order = (await front.http.get(f"/admin/orders/{order_id}", headers=front.staff)).json()
    assert [(ln["sku"], ln["refunded_quantity"]) for ln in order["lines"]] == [(mug, 3), (tee, 0)]
    payment = await front.shop.payments.payment(order["payment_id"])
    assert payment.refunded == Money(3190, "USD")


async def test_refunds_racing_for_a_lines_last_units_refund_each_unit_once(
    front: Storefront,
) -> None:
    mug = await placed_product(front.shop, price=999)
    bought = await front.check_out(await front.cart((mug, 3)))
    assert bought.status_code == 201, bought.text
    order_id = bought.json()["id"]

    answers = await asyncio.gather(
        *(
            refund(front, order_id, f"racer-{n}", lines=[{"sku": mug, "quantity": 1}])
            for n in range(8)
        )
    )

    assert Counter(a.status_code for a in answers) == {200: 3, 409: 5}
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"refund_exceeds_line"}
    order = (await front.http.get(f"/admin/orders/{order_id}", headers=front.staff)).json()
    # 29.97 and its tax, 3.00: every cent of what the line paid, and not one more.
    assert order["refunded"] == usd(3297)
    assert order["lines"][0]["refunded_quantity"] == 3
    payment = await front.shop.payments.payment(order["payment_id"])
    assert payment.refunded == Money(3297, "USD")


async def test_bad_automatic_and_targeted_promotions_are_refused_and_make_nothing(
    front: Storefront,
) -> None:
    for body, problem in [
        ({"percent_off": 10}, "invalid_promotion"),
        ({"title": "B2", "percent_off": 100, "buy_quantity": 2}, "invalid_promotion"),
        (
            {"title": "B2", "amount_off": [usd(100)], "buy_quantity": 2, "get_quantity": 1},
            ("invalid_promotion"),
        ),
        (
            {"title": "B2", "percent_off": 100, "buy_quantity": 0, "get_quantity": 1},
            ("invalid_promotion"),
        ),
        ({"title": "Twice", "percent_off": 10, "skus": ["A", "A"]}, "invalid_promotion"),
        ({"title": "Blank", "percent_off": 10, "categories": [" "]}, "invalid_promotion"),
    ]:
        answer = await front.http.post("/admin/promotions", json=body, headers=front.staff)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["code"] == problem, (body, answer.text)
    assert (await front.http.get("/admin/promotions", headers=front.staff)).json() == []


async def test_codes_and_uses_made_before_stacking_survive_the_upgrade(db: Database) -> None:
    config = alembic_config(MODULES)

    def down(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, "promotions_0002")

    async with db.transaction() as uow:
        await uow.connection.run_sync(down)
        await uow.execute(
            insert(promotions).values(
                id="p-old",
                code="OLD10",
                title=None,
                percent_off=10,
                amount_off={},
                min_subtotal={},
                markets=[],
                customers_only=False,
                usage_limit=5,
                per_customer_limit=None,
                used=1,
                starts_at=START,
                ends_at=None,
                created_at=START,
                updated_at=START,
            )
        )
        await uow.execute(
            insert(uses).values(
                checkout_id="c-old",
                promotion_id="p-old",
                customer_id=None,
                currency="USD",
                discount=100,
                total=900,
                used_at=START,
                code=None,
            )
        )
        await uow.commit()

    await upgrade(db, MODULES)

    async with db.reading() as conn:
        kept = (await conn.execute(select(promotions))).one()
        used = (await conn.execute(select(uses))).all()
    assert (kept.code, kept.used, kept.combines, kept.target) == ("OLD10", 1, False, None)
    assert [(u.checkout_id, u.promotion_id, u.discount) for u in used] == [("c-old", "p-old", 100)]
