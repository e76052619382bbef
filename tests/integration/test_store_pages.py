"""The store's catalog pages through the whole app: read once, then answered from memory,
and never staler than the issue allows: a staff change is in the next answer of the process
that made it, stock labels follow the shelves within a second."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from colonnade.app import Shop
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.kernel.uow import listen_to_driver_statements
from colonnade.modules.catalog.service import NewProduct, NewVariant
from tests.integration.storefront import client, started

SECRET = "store-pages-tests-" + "s" * 32
ADMIN_EMAIL = "staff@shop.test"
PASSWORD = "a long and secret password"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[Shop, httpx.AsyncClient]]:
    settings = Settings(database_url=database_url, secret_key=SECRET)
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        yield app.state.shop, http


@pytest.fixture
async def quiet_store(database_url: str) -> AsyncIterator[tuple[Shop, httpx.AsyncClient]]:
    """A shop whose background checks wait an hour, so every statement counted is a read's."""
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        store_stock_seconds=3600,
        changes_poll_seconds=3600,
    )
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        yield app.state.shop, http


@pytest.fixture
async def staff(store: tuple[Shop, httpx.AsyncClient]) -> dict[str, str]:
    shop, http = store
    await shop.identity.create_staff(
        ADMIN_EMAIL, PASSWORD, scopes=frozenset({"catalog:write", "pricing:write"})
    )
    token = await http.post("/auth/token", data={"username": ADMIN_EMAIL, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """Every statement the app sends to the modules' tables meanwhile (not the outbox relay's),
    through SQLAlchemy or straight on the driver."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # BEGIN is SQLite's snapshot of a read, not a statement of it.
        if statement != "BEGIN" and "kernel_" not in statement:
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    stop = listen_to_driver_statements(db.engine, lambda sql: count(None, None, sql))
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        stop()


async def stocked(shop: Shop, title: str, *, price: int = 1000, on_hand: int = 50) -> str:
    sku = title.upper().replace(" ", "-")
    await shop.catalog.create_product(
        NewProduct(titles={"en-US": title}, default_locale="en-US", variants=[NewVariant(sku=sku)])
    )
    await shop.pricing.set_prices(sku, [Money(price, "USD")])
    await shop.inventory.set_on_hand(sku, on_hand)
    return sku


async def settled(shop: Shop) -> None:
    """Wait until the outbox relay has published what the setting up wrote."""
    for _ in range(200):
        if not await shop.relay.pending():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)


async def listed(http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await http.get("/store/products", params={"market": "US", **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def variants(page: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["sku"]: v for p in page for v in p["variants"]}


async def test_a_listing_is_read_once_then_answered_from_memory(
    quiet_store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = quiet_store
    await stocked(shop, "Kenya beans")
    await settled(shop)

    with statements(shop.db) as first:
        one = await listed(http)
    with statements(shop.db) as again:
        two = await listed(http)

    assert one == two
    assert [p["title"] for p in one] == ["Kenya beans"]
    assert first
    assert again == []


async def test_a_first_read_takes_the_same_few_statements_whatever_the_page_size(
    quiet_store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = quiet_store
    for n in range(30):
        await stocked(shop, f"Mug number {n}")
    await listed(http, limit=1)  # the market is read once and kept
    await settled(shop)

    counts = {}
    for params in (
        {"limit": 2},
        {"limit": 30},
        {"limit": 30, "q": "mug"},
        {"limit": 3, "q": "mug"},
    ):
        with statements(shop.db) as seen:
            page = await listed(http, **params)
        assert len(page) == params["limit"]
        counts[tuple(params.items())] = len(seen)

    # The products with their variants and translations, their prices, their stock; a search
    # on PostgreSQL finds the page's products first (walking the listing), then reads them.
    searching = 4 if shop.db.dialect == "postgresql" else 3
    assert counts == {
        (("limit", 2),): 3,
        (("limit", 30),): 3,
        (("limit", 30), ("q", "mug")): searching,
        (("limit", 3), ("q", "mug")): searching,
    }


async def test_many_shoppers_asking_for_the_same_new_page_cause_one_read(
    quiet_store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = quiet_store
    await stocked(shop, "Kenya beans")
    await listed(http, limit=1)
    await settled(shop)

    with statements(shop.db) as seen:
        pages = await asyncio.gather(*(listed(http) for _ in range(20)))

    assert all(page == pages[0] for page in pages)
    assert len(seen) == 3


async def test_a_price_staff_change_is_in_the_very_next_listing(
    store: tuple[Shop, httpx.AsyncClient], staff: dict[str, str]
) -> None:
    shop, http = store
    sku = await stocked(shop, "Kenya beans", price=1000)
    assert variants(await listed(http))[sku]["price"] == {"amount": 1000, "currency": "USD"}
    product_id = (await listed(http))[0]["id"]
    await http.get(f"/store/products/{product_id}", params={"market": "US"})

    changed = await http.put(
        f"/admin/prices/{sku}", headers=staff, json={"prices": [{"amount": 800, "currency": "USD"}]}
    )
    assert changed.status_code == 200, changed.text

    assert variants(await listed(http))[sku]["price"] == {"amount": 800, "currency": "USD"}
    page = await http.get(f"/store/products/{product_id}", params={"market": "US"})
    assert page.json()["variants"][0]["price"] == {"amount": 800, "currency": "USD"}


async def test_a_product_taken_out_of_the_store_is_gone_from_the_very_next_answers(
    store: tuple[Shop, httpx.AsyncClient], staff: dict[str, str]
) -> None:
    shop, http = store
    await stocked(shop, "Kenya beans")
    await stocked(shop, "Rwanda beans")
    shown = await listed(http)
    kenya = next(p["id"] for p in shown if p["title"] == "Kenya beans")
    assert (await http.get(f"/store/products/{kenya}", params={"market": "US"})).status_code == 200
    assert [p["title"] for p in await listed(http, q="kenya")] == ["Kenya beans"]

    withdrawn = await http.patch(
        f"/admin/products/{kenya}", headers=staff, json={"status": "draft"}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "draft"

    assert [p["title"] for p in await listed(http)] == ["Rwanda beans"]
    assert await listed(http, q="kenya") == []
    gone = await http.get(f"/store/products/{kenya}", params={"market": "US"})
    assert gone.status_code == 404
    assert gone.json()["code"] == "product_not_found"


async def test_new_titles_markets_and_exchange_rates_show_at_once(
    store: tuple[Shop, httpx.AsyncClient], staff: dict[str, str]
) -> None:
    shop, http = store
    sku = await stocked(shop, "Kenya beans", price=1000)
    product_id = (await listed(http))[0]["id"]
    await shop.pricing.set_market("DE", "Germany", "EUR", "de-DE", True, Decimal("0.19"))
    await shop.pricing.set_fx_rate("USD", "EUR", Decimal("0.9"))
    assert variants(await listed(http, market="DE"))[sku]["price"] == {
        "amount": 900,
        "currency": "EUR",
    }

    renamed = await http.patch(
        f"/admin/products/{product_id}", headers=staff, json={"title": {"de-DE": "Kenia Bohnen"}}
    )
    assert renamed.status_code == 200, renamed.text
    await shop.pricing.set_fx_rate("USD", "EUR", Decimal("0.8"))

    german = await listed(http, market="DE")
    assert german[0]["title"] == "Kenia Bohnen"
    assert variants(german)[sku]["price"] == {"amount": 800, "currency": "EUR"}
    await shop.pricing.set_market("DE", "Germany", "CHF", "de-DE", True, Decimal("0.19"))
    assert variants(await listed(http, market="DE"))[sku]["price"] is None


async def test_stock_labels_follow_the_shelves_within_a_second(
    store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = store
    sku = await stocked(shop, "Kenya beans", on_hand=50)
    assert variants(await listed(http))[sku]["stock"] == "in_stock"

    for on_hand, label in ((3, "low"), (0, "sold_out"), (40, "in_stock")):
        await shop.inventory.set_on_hand(sku, on_hand)
        changed_at = time.monotonic()
        while variants(await listed(http))[sku]["stock"] != label:
            assert time.monotonic() - changed_at < 1.0, f"still not {label} after a second"
            await asyncio.sleep(0.05)


async def test_a_client_holding_the_page_gets_304_until_it_changes(
    store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = store
    sku = await stocked(shop, "Kenya beans", price=1000)
    first = await http.get("/store/products", params={"market": "US"})
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    same = await http.get(
        "/store/products", params={"market": "US"}, headers={"If-None-Match": etag}
    )
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    assert same.headers["cache-control"] == first.headers["cache-control"]
    weak = await http.get(
        "/store/products", params={"market": "US"}, headers={"If-None-Match": f'"x", W/{etag}'}
    )
    assert weak.status_code == 304

    await shop.pricing.set_prices(sku, [Money(900, "USD")])
    changed = await http.get(
        "/store/products", params={"market": "US"}, headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
