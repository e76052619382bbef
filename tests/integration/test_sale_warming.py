"""Store pages read ahead of a scheduled sale, on both databases: within the lead time a
process reads the pages the sale changes, priced as from its start, so its first shoppers
are answered without a single statement; before the start shoppers still see the prices of
before; a sale is warmed once (again only for what a change dropped), a sale far off is not
warmed yet, a process starting within the lead time warms by itself, and staff can warm one
at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from colonnade.app import Shop
from colonnade.kernel.clock import SettableClock
from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.modules.pricing.service import NewSale
from tests.integration.storefront import PASSWORD, SECRET, client, product, scrape, started
from tests.integration.test_store_pages import statements

START = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
# The sale starts an hour after the tests' shop opens; the default lead time is 5 minutes.
SALE_STARTS = START + timedelta(hours=1)


@dataclass
class Front:
    shop: Shop
    http: httpx.AsyncClient
    clock: SettableClock
    staff: dict[str, str]

    async def sale(self, starts_at: datetime = SALE_STARTS, **body: Any) -> dict[str, Any]:
        made = await self.http.post(
            "/admin/sales",
            json={"name": "Black Friday", "market": "US", "starts_at": starts_at.isoformat()}
            | body,
            headers=self.staff,
        )
        assert made.status_code == 201, made.text
        return dict(made.json())

    async def product_id(self, sku: str) -> str:
        [(found, _)] = (await self.shop.catalog.placements([sku])).values()
        return found

    async def shown(self, product_id: str) -> tuple[int, int | None]:
        """The price and compare_at of the product's one SKU on its page."""
        page = await self.http.get(f"/store/products/{product_id}", params={"market": "US"})
        assert page.status_code == 200, page.text
        [variant] = page.json()["variants"]
        return variant["price"]["amount"], (variant["compare_at"] or {}).get("amount")

    async def listed(self) -> dict[str, tuple[int, int | None]]:
        """Every SKU's price and compare_at on the market's listing."""
        page = await self.http.get("/store/products", params={"market": "US"})
        assert page.status_code == 200, page.text
        return {
            v["sku"]: (v["price"]["amount"], (v["compare_at"] or {}).get("amount"))
            for p in page.json()
            for v in p["variants"]
        }


def settings_for(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SECRET,
        # Only the tests' reads go to the database while statements are counted.
        store_stock_seconds=3600,
        changes_poll_seconds=3600,
        # The tests move the clock by an hour.
        access_token_ttl_seconds=86_400,
    )


@pytest.fixture
async def front(database_url: str) -> AsyncIterator[Front]:
    clock = SettableClock(START)
    settings = settings_for(database_url)
    async with started(settings, us_tax=Decimal("0.1"), clock=clock) as app, client(app) as http:
        shop: Shop = app.state.shop
        # The tests warm when they say, not when the process's own schedule comes round.
        await shop.warming.stop()
        await shop.identity.create_staff("boss@shop.test", PASSWORD)
        token = await http.post(
            "/auth/token", data={"username": "boss@shop.test", "password": PASSWORD}
        )
        assert token.status_code == 200, token.text
        yield Front(shop, http, clock, {"Authorization": f"Bearer {token.json()['access_token']}"})


def prewarmed(metrics: str) -> dict[str, float]:
    """Sales warmed by trigger, and pages read ahead, as the metrics port shows them."""
    found = {"schedule": 0.0, "staff": 0.0, "pages": 0.0}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "colonnade_sale_prewarmed_total":
                found[sample.labels["trigger"]] = sample.value
            elif sample.name == "colonnade_sale_prewarmed_pages_total":
                found["pages"] = sample.value
    return found


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


async def test_the_pages_a_sale_changes_are_ready_at_its_start_without_a_statement(
    front: Front,
) -> None:
    await front.shop.catalog.set_category("apparel", {"en-US": "Apparel"})
    await front.shop.catalog.set_category("tees", {"en-US": "Tees"}, parent="apparel")
    mug = await product(front.shop, price=1000)
    tee = await product(front.shop, price=2000, category="tees")
    other = await product(front.shop, price=500)
    mug_id, tee_id, other_id = [await front.product_id(sku) for sku in (mug, tee, other)]
    await front.sale(prices=[{"sku": mug}], categories=["apparel"], percent_off=20)
    # A shopper reads the listing before the sale: it is kept until the sale starts.
    assert (await front.listed())[mug] == (1000, None)

    front.clock.advance(SALE_STARTS - START - timedelta(minutes=4))
    before = prewarmed(await scrape())
    # The listing, the mug's page and the tee's (a product of a category below the sale's).
    assert await front.shop.warming.warm_due() == 3
    assert moved(before, prewarmed(await scrape())) == {"schedule": 1, "staff": 0, "pages": 3}

    # Before the start shoppers see the prices of before: what was read ahead waits.
    assert await front.shown(mug_id) == (1000, None)
    assert await front.shown(other_id) == (500, None)

    front.clock.advance(timedelta(minutes=4))
    with statements(front.shop.db) as read:
        shelf = await front.listed()
        mug_page = await front.shown(mug_id)
        tee_page = await front.shown(tee_id)

    assert read == []
    assert (shelf[mug], shelf[tee], shelf[other]) == ((800, 1000), (1600, 2000), (500, None))
    assert (mug_page, tee_page) == ((800, 1000), (1600, 2000))


async def test_a_sale_is_warmed_once_and_again_only_for_what_a_change_dropped(
    front: Front,
) -> None:
    mug = await product(front.shop, price=1000)
    tee = await product(front.shop, price=2000)
    mug_id, tee_id = await front.product_id(mug), await front.product_id(tee)
    await front.sale(prices=[{"sku": mug}, {"sku": tee}], percent_off=10)
    front.clock.advance(SALE_STARTS - START - timedelta(minutes=2))
    before = prewarmed(await scrape())

    assert await front.shop.warming.warm_due() == 2
    assert await front.shop.warming.warm_due() == 0
    assert moved(before, prewarmed(await scrape()))["schedule"] == 1

    # Staff change the tee's price: its page read ahead is wrong now and dropped. The next
    # round reads that one again, not the mug's.
    await front.shop.pricing.set_prices(tee, [Money(3000, "USD")])
    assert await front.shop.warming.warm_due() == 1
    assert await front.shop.warming.warm_due() == 0

    front.clock.advance(timedelta(minutes=2))
    with statements(front.shop.db) as read:
        shown = (await front.shown(mug_id), await front.shown(tee_id))
    assert read == []
    assert shown == ((900, 1000), (2700, 3000))


async def test_a_sale_far_off_is_not_warmed_yet(front: Front) -> None:
    mug = await product(front.shop, price=1000)
    mug_id = await front.product_id(mug)
    await front.sale(prices=[{"sku": mug}], percent_off=50)
    before = prewarmed(await scrape())

    # An hour before its start, outside the lead time of five minutes.
    assert await front.shop.warming.warm_due() == 0
    assert moved(before, prewarmed(await scrape())) == {"schedule": 0, "staff": 0, "pages": 0}

    front.clock.advance(SALE_STARTS - START)
    with statements(front.shop.db) as read:
        assert await front.shown(mug_id) == (500, 1000)
    assert read, "nothing was read ahead, so the first shopper's page is read"


async def test_a_process_starting_within_the_lead_time_warms_the_sale_by_itself(
    database_url: str,
) -> None:
    clock = SettableClock(START)
    async with started(settings_for(database_url), us_tax=Decimal("0.1"), clock=clock) as app:
        shop: Shop = app.state.shop
        mug = await product(shop, price=1000)
        [(mug_id, _)] = (await shop.catalog.placements([mug])).values()
        await shop.pricing.create_sale(
            NewSale("Door buster", "US", ((mug, Money(600, "USD")),), starts_at=SALE_STARTS)
        )
    clock.advance(SALE_STARTS - START - timedelta(minutes=3))
    before = prewarmed(await scrape())

    async with started(settings_for(database_url), clock=clock) as app, client(app) as http:
        # Its first round, as it starts, finds the sale due.
        deadline = time.monotonic() + 10
        while moved(before, prewarmed(await scrape()))["schedule"] < 1:
            assert time.monotonic() < deadline, "the process did not warm the sale"
            await asyncio.sleep(0.05)
        clock.advance(timedelta(minutes=3))
        with statements(app.state.shop.db) as read:
            page = await http.get(f"/store/products/{mug_id}", params={"market": "US"})

    assert read == []
    assert page.json()["variants"][0]["price"] == {"amount": 600, "currency": "USD"}
    assert moved(before, prewarmed(await scrape())) == {"schedule": 1, "staff": 0, "pages": 1}


async def test_staff_warm_a_sale_at_once_and_are_told_of_one_unknown_or_over(
    front: Front,
) -> None:
    mug = await product(front.shop, price=1000)
    mug_id = await front.product_id(mug)
    made = await front.sale(prices=[{"sku": mug, "price": {"amount": 750, "currency": "USD"}}])

    warmed = await front.http.post(f"/admin/sales/{made['id']}/warm", headers=front.staff)

    assert warmed.status_code == 200, warmed.text
    assert warmed.json() == {
        "sale_id": made["id"],
        "market": "US",
        "starts_at": made["starts_at"],
        "pages": 1,
    }
    # The schedule finds it warmed already when its lead time comes.
    front.clock.advance(SALE_STARTS - START - timedelta(minutes=1))
    assert await front.shop.warming.warm_due() == 0
    front.clock.advance(timedelta(minutes=1))
    with statements(front.shop.db) as read:
        assert await front.shown(mug_id) == (750, 1000)
    assert read == []

    unknown = await front.http.post("/admin/sales/no-such-sale/warm", headers=front.staff)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["code"] == "sale_not_found"
    ended = await front.http.post(f"/admin/sales/{made['id']}/end", headers=front.staff)
    assert ended.status_code == 200, ended.text
    front.clock.advance(timedelta(seconds=1))
    over = await front.http.post(f"/admin/sales/{made['id']}/warm", headers=front.staff)
    assert over.status_code == 409
    assert over.json()["code"] == "sale_ended"


async def test_a_sale_naming_categories_no_page_shows_warms_the_rest(front: Front) -> None:
    """A sale may name a category staff have not made yet, or one no category slug can name
    (pricing keeps what it is given): warming reads the pages that exist and says so."""
    mug = await product(front.shop, price=1000)
    made = await front.sale(
        prices=[{"sku": mug}], categories=["coming-soon", "3\U0005dbbf"], percent_off=20
    )

    warmed = await front.http.post(f"/admin/sales/{made['id']}/warm", headers=front.staff)

    assert warmed.status_code == 200, warmed.text
    assert warmed.json()["pages"] == 1
