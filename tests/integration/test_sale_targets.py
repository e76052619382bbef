"""Scheduled sales of whole products and categories, and sale windows on a market's clock,
through the HTTP API on both databases: a category's sale reaches every product below it on
shelves, carts and orders, starting and ending by itself; the sale naming a SKU most closely
sets its price; sales that name the same product or category at once are refused; a market's
time zone shows when its sales start and end there."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from colonnade.kernel.db import Database
from colonnade.migrations import alembic_config, upgrade
from colonnade.modules import MODULES
from colonnade.modules.pricing.schema import markets, sale_prices, sales
from tests.integration.storefront import product
from tests.integration.test_promotions import (  # noqa: F401 - store is a fixture
    START,
    Storefront,
    store,
    usd,
    variant_on_shelf,
)


@pytest.fixture
async def front(store: Storefront) -> Storefront:  # noqa: F811 - the fixture
    await store.shop.catalog.set_category("apparel", {"en-US": "Apparel"})
    await store.shop.catalog.set_category("tees", {"en-US": "Tees"}, parent="apparel")
    await store.shop.catalog.set_category("kitchen", {"en-US": "Kitchen"})
    return store


async def product_id(front: Storefront, sku: str) -> str:
    [(found, _)] = (await front.shop.catalog.placements([sku])).values()
    return found


async def make_sale(front: Storefront, **body: Any) -> httpx.Response:
    return await front.http.post("/admin/sales", json={"market": "US", **body}, headers=front.staff)


async def shelf(front: Storefront, sku: str) -> tuple[int, int | None]:
    variant = await variant_on_shelf(front, sku)
    return variant["price"]["amount"], variant["compare_at"] and variant["compare_at"]["amount"]


async def test_a_category_sale_prices_everything_below_it_and_starts_and_ends_by_itself(
    front: Storefront,
) -> None:
    tee = await product(front.shop, price=2000, on_hand=10, category="tees")
    mug = await product(front.shop, price=1000, on_hand=10, category="kitchen")
    starts = START + timedelta(days=1)
    made = await make_sale(
        front,
        name="Apparel week",
        percent_off=25,
        categories=["apparel"],
        starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(days=7)).isoformat(),
    )
    assert made.status_code == 201, made.text
    assert (made.json()["categories"], made.json()["products"], made.json()["prices"]) == (
        ["apparel"],
        [],
        [],
    )
    assert await shelf(front, tee) == (2000, None)

    front.clock.advance(timedelta(days=1))

    assert await shelf(front, tee) == (1500, 2000)
    assert await shelf(front, mug) == (1000, None)
    cart_id = await front.cart((tee, 2), (mug, 1))
    cart = (await front.http.get(f"/store/carts/{cart_id}")).json()
    assert [(ln["unit_price"], ln["compare_at"]) for ln in cart["lines"]] == [
        (usd(1500), usd(2000)),
        (usd(1000), None),
    ]
    bought = await front.check_out(cart_id)
    assert bought.status_code == 201, bought.text
    # (2 x 15.00 + 10.00) and 10 % tax.
    assert bought.json()["total"] == usd(4400)

    front.clock.advance(timedelta(days=7))

    assert await shelf(front, tee) == (2000, None)


async def test_the_sale_naming_a_sku_most_closely_sets_its_price(front: Storefront) -> None:
    listed = await product(front.shop, price=1000, on_hand=10, category="tees")
    whole = await product(front.shop, price=1000, on_hand=10, category="tees")
    only_category = await product(front.shop, price=1000, on_hand=10, category="tees")
    for body in (
        {"name": "Tees", "percent_off": 30, "categories": ["tees"]},
        {"name": "Apparel", "percent_off": 40, "categories": ["apparel"]},
        {
            "name": "Thin margins",
            "percent_off": 10,
            "products": [await product_id(front, whole), await product_id(front, listed)],
        },
        {"name": "Door buster", "prices": [{"sku": listed, "price": usd(950)}]},
    ):
        made = await make_sale(front, **body)
        assert made.status_code == 201, made.text

    # The SKU's own price, though its product's and categories' sales go lower; then the
    # product's; then the lowest of the categories' (40 % by apparel over 30 % by tees).
    assert await shelf(front, listed) == (950, 1000)
    assert await shelf(front, whole) == (900, 1000)
    assert await shelf(front, only_category) == (600, 1000)


async def test_sales_naming_a_product_or_category_twice_at_once_and_bad_ones_are_refused(
    front: Storefront,
) -> None:
    tee = await product(front.shop, price=2000, on_hand=10, category="tees")
    tee_product = await product_id(front, tee)
    week = [START + timedelta(days=d) for d in (1, 8, 15)]

    def window(start: int, end: int) -> dict[str, str]:
        return {"starts_at": week[start].isoformat(), "ends_at": week[end].isoformat()}

    first = await make_sale(
        front,
        name="First",
        percent_off=10,
        categories=["tees"],
        products=[tee_product],
        **window(0, 1),
    )
    assert first.status_code == 201, first.text
    for body, problem, field in [
        ({"categories": ["tees"], **window(0, 2)}, "sale_overlaps", "categories"),
        ({"products": [tee_product], **window(0, 1)}, "sale_overlaps", "products"),
    ]:
        clash = await make_sale(front, name="Clash", percent_off=20, **body)
        assert clash.status_code == 409, clash.text
        assert clash.json()["code"] == problem
        assert clash.json()[field] == body[field]
    for body in [
        {"name": "No percentage", "categories": ["tees"]},
        {"name": "Nothing on sale", "percent_off": 10},
        {"name": "Twice", "percent_off": 10, "categories": ["tees", "tees"]},
    ]:
        refused = await make_sale(front, **body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["code"] == "invalid_sale", (body, refused.text)
    too_long = await make_sale(front, name="Long", percent_off=10, products=["p" * 201])
    assert too_long.status_code == 422
    # The category next week, after the first sale ends, is a sale of its own.
    next_week = await make_sale(
        front, name="Next week", percent_off=20, categories=["tees"], **window(1, 2)
    )
    assert next_week.status_code == 201, next_week.text
    listed = await front.http.get("/admin/sales", headers=front.staff)
    assert sorted(s["name"] for s in listed.json()) == ["First", "Next week"]


async def test_a_markets_time_zone_shows_its_sales_on_its_clock(front: Storefront) -> None:
    body = {
        "name": "Germany",
        "currency": "EUR",
        "locale": "de-DE",
        "tax_inclusive": True,
        "tax_rate": "0.19",
    }
    for zone in ["Mars/Olympus_Mons", "../../etc/passwd", "Europe/Berlin ", ""]:
        refused = await front.http.put(
            "/admin/markets/DE", json={**body, "time_zone": zone}, headers=front.staff
        )
        assert refused.status_code == 422, (zone, refused.text)
        assert refused.json()["code"] == "unknown_time_zone", (zone, refused.text)
    assert (await front.http.get("/store/markets/DE")).status_code == 422
    made = await front.http.put(
        "/admin/markets/DE", json={**body, "time_zone": "Europe/Berlin"}, headers=front.staff
    )
    assert made.status_code == 200, made.text
    # Changed without a time zone, the market keeps its own.
    renamed = await front.http.put(
        "/admin/markets/DE", json={**body, "name": "Deutschland"}, headers=front.staff
    )
    assert renamed.json()["time_zone"] == "Europe/Berlin"

    # Black Friday from midnight in Berlin: 23:00 UTC the day before.
    sale = await front.http.post(
        "/admin/sales",
        json={
            "name": "Black Friday",
            "market": "DE",
            "percent_off": 20,
            "categories": ["apparel"],
            "starts_at": "2026-11-27T00:00:00+01:00",
            "ends_at": "2026-11-30T23:59:59+01:00",
        },
        headers=front.staff,
    )

    assert sale.status_code == 201, sale.text
    shown = (await front.http.get(f"/admin/sales/{sale.json()['id']}", headers=front.staff)).json()
    assert (shown["starts_at"], shown["starts_at_local"], shown["ends_at_local"]) == (
        "2026-11-26T23:00:00Z",
        "2026-11-27T00:00:00+01:00",
        "2026-11-30T23:59:59+01:00",
    )
    assert shown["time_zone"] == "Europe/Berlin"
    us = await front.http.get("/store/markets/US")
    assert us.json()["time_zone"] == "UTC"


async def test_sales_and_markets_made_before_targets_and_time_zones_survive_the_upgrade(
    db: Database,
) -> None:
    config = alembic_config(MODULES)

    def down(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, "pricing_0002")

    async with db.transaction() as uow:
        await uow.connection.run_sync(down)
        await uow.execute(
            insert(markets).values(
                code="US",
                name="United States",
                currency="USD",
                locale="en-US",
                tax_inclusive=False,
                tax_rate="0.1",
            )
        )
        await uow.execute(
            insert(sales).values(
                id="s-old",
                name="Old sale",
                market="US",
                currency="USD",
                percent_off=10,
                starts_at=START,
                ends_at=None,
                created_at=START,
            )
        )
        await uow.execute(insert(sale_prices).values(sale_id="s-old", sku="MUG", amount=None))
        await uow.commit()

    await upgrade(db, MODULES)

    async with db.reading() as conn:
        market = (await conn.execute(select(markets))).one()
        sale = (await conn.execute(select(sales))).one()
        listed = (await conn.execute(select(sale_prices))).all()
    assert (market.code, market.time_zone) == ("US", "UTC")
    assert (sale.id, sale.percent_off, sale.target) == ("s-old", 10, None)
    assert [(p.sale_id, p.sku) for p in listed] == [("s-old", "MUG")]
