"""The whole app on a real database, as shoppers meet it over HTTP: for the tests of who owns
carts and orders, and of what the database keeps of them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from colonnade.app import Shop, create_app
from colonnade.kernel.clock import Clock
from colonnade.kernel.metrics import shop_registry
from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.modules.catalog.service import NewProduct, NewVariant
from colonnade.ops.metrics_port import operations_app

SECRET = "storefront-tests-" + "s" * 32
PASSWORD = "correct horse battery staple"


@asynccontextmanager
async def started(
    settings: Settings,
    *,
    us_tax: Decimal | None = None,
    metrics_listener: bool = False,
    clock: Clock | None = None,
) -> AsyncIterator[FastAPI]:
    """The whole app, started (migrated, keys loaded); with a US market when `us_tax` is set,
    its metrics port listening with `metrics_listener`, and on `clock`'s time if given."""
    app: FastAPI = create_app(settings, metrics_listener=metrics_listener, clock=clock)
    async with app.router.lifespan_context(app):
        if us_tax is not None:
            shop: Shop = app.state.shop
            await shop.pricing.set_market("US", "United States", "USD", "en-US", False, us_tax)
        yield app


def client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """An HTTP client of the app, calling from `address`."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 50000)),
        base_url="http://shop.test",
    )


async def scrape() -> str:
    """What the metrics port's /metrics shows now (every shop of the test process moves the
    same registry)."""
    transport = httpx.ASGITransport(app=operations_app(shop_registry(), None))
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics.test") as port:
        answer = await port.get("/metrics")
        assert answer.status_code == 200, answer.text
        return answer.text


@asynccontextmanager
async def storefront(database_url: str) -> AsyncIterator[tuple[Shop, httpx.AsyncClient]]:
    """A started app with a US market, and a client for it."""
    settings = Settings(database_url=database_url, secret_key=SECRET)
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        yield app.state.shop, http


async def product(
    shop: Shop, *, price: int = 1000, on_hand: int = 10, category: str | None = None
) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:8].upper()}"
    await shop.catalog.create_product(
        NewProduct(
            titles={"en-US": f"Thing {sku}"},
            default_locale="en-US",
            variants=[NewVariant(sku=sku)],
            category=category,
        )
    )
    await shop.pricing.set_prices(sku, [Money(price, "USD")])
    await shop.inventory.set_on_hand(sku, on_hand)
    return sku


async def customer(http: httpx.AsyncClient, email: str, name: str) -> dict[str, str]:
    """Register a customer and log them in; their Authorization header."""
    registered = await http.post(
        "/store/customers", json={"email": email, "password": PASSWORD, "name": name}
    )
    assert registered.status_code == 201, registered.text
    token = await http.post("/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def open_cart(
    http: httpx.AsyncClient, sku: str, headers: dict[str, str] | None = None
) -> str:
    cart = await http.post("/store/carts", json={"market": "US"}, headers=headers or {})
    assert cart.status_code == 201, cart.text
    added = await http.post(
        f"/store/carts/{cart.json()['id']}/lines",
        json={"sku": sku, "quantity": 1},
        headers=headers or {},
    )
    assert added.status_code == 200, added.text
    return str(cart.json()["id"])


def checkout_body(email: str, address: dict[str, str]) -> dict[str, Any]:
    return {
        "email": email,
        "shipping_address": address,
        "payment": {"method": "card", "token": "tok_visa"},
    }


async def check_out(
    http: httpx.AsyncClient,
    cart_id: str,
    email: str,
    address: dict[str, str],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await http.post(
        f"/store/carts/{cart_id}/checkout",
        json=checkout_body(email, address),
        headers={"Idempotency-Key": f"key-{uuid.uuid4().hex}", **(headers or {})},
    )
