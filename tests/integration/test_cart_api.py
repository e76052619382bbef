"""The storefront cart over HTTP: the public API of the purchase path, byte for byte."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import Unauthorized
from colonnade.kernel.principal import Principal
from colonnade.modules.cart.api import router
from colonnade.modules.cart.service import CartService
from colonnade.web import problems
from tests.integration.cart_collaborators import shop_collaborators


async def authenticate(token: str) -> Principal:
    # The cart routes take no token; this only completes the app as the shop builds it.
    raise Unauthorized("no tokens in this test")


@pytest.fixture
def carts(db: Database) -> CartService:
    pricing, catalog = shop_collaborators()
    return CartService(
        db,
        pricing=pricing,
        catalog=catalog,
        clock=SettableClock(datetime(2025, 11, 28, tzinfo=UTC)),
    )


@pytest.fixture
async def client(carts: CartService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)
    app.state.authenticate = authenticate
    app.include_router(router(carts))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://shop.test"
    ) as http:
        yield http


async def open_cart(client: httpx.AsyncClient, market: str = "US") -> dict[str, Any]:
    response = await client.post("/store/carts", json={"market": market})
    assert response.status_code == 201, response.text
    cart: dict[str, Any] = response.json()
    return cart


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


async def test_a_shopper_opens_a_cart_and_fills_it(client: httpx.AsyncClient) -> None:
    cart = await open_cart(client)
    assert cart == {
        "id": cart["id"],
        "market": "US",
        "currency": "USD",
        "status": "open",
        "lines": [],
        "subtotal": usd(0),
        "discount": usd(0),
        "tax": usd(0),
        "total": usd(0),
        "tax_inclusive": False,
        "promotion": None,
        "promotions": [],
    }

    response = await client.post(
        f"/store/carts/{cart['id']}/lines", json={"sku": "MUG-RED", "quantity": 2}
    )

    assert response.status_code == 200
    assert response.json()["lines"] == [
        {
            "sku": "MUG-RED",
            "quantity": 2,
            "unit_price": usd(1250),
            "line_total": usd(2500),
            "tax": usd(250),
            "discount": usd(0),
            "compare_at": None,
        }
    ]
    assert response.json()["total"] == usd(2750)
    shown = await client.get(f"/store/carts/{cart['id']}")
    assert shown.status_code == 200
    assert shown.json() == response.json()


async def test_a_line_without_a_quantity_adds_one(client: httpx.AsyncClient) -> None:
    cart = await open_cart(client)

    response = await client.post(f"/store/carts/{cart['id']}/lines", json={"sku": "MUG-RED"})

    assert response.json()["lines"][0]["quantity"] == 1


async def test_a_shopper_changes_and_removes_lines(client: httpx.AsyncClient) -> None:
    cart = await open_cart(client)
    lines = f"/store/carts/{cart['id']}/lines"
    await client.post(lines, json={"sku": "MUG-RED", "quantity": 1})
    await client.post(lines, json={"sku": "TEE-L", "quantity": 1})

    changed = await client.patch(f"{lines}/MUG-RED", json={"quantity": 3})
    assert changed.status_code == 200
    assert [(ln["sku"], ln["quantity"]) for ln in changed.json()["lines"]] == [
        ("MUG-RED", 3),
        ("TEE-L", 1),
    ]

    removed = await client.delete(f"{lines}/TEE-L")
    assert removed.status_code == 200
    assert [ln["sku"] for ln in removed.json()["lines"]] == ["MUG-RED"]

    zeroed = await client.patch(f"{lines}/MUG-RED", json={"quantity": 0})
    assert zeroed.json()["lines"] == []
    assert zeroed.json()["total"] == usd(0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sku": "MUG-RED", "quantity": "1"}, "quantity"),
        ({"sku": "MUG-RED", "quantity": True}, "quantity"),
        ({"sku": 42, "quantity": 1}, "sku"),
        ({"sku": "MUG-RED", "quantity": 1, "price": 1}, "price"),
        ({"quantity": 1}, "sku"),
    ],
)
async def test_a_malformed_line_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    cart = await open_cart(client)

    response = await client.post(f"/store/carts/{cart['id']}/lines", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_input"
    assert field in response.json()["detail"]
    assert (await client.get(f"/store/carts/{cart['id']}")).json()["lines"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"sku": "NOT-SOLD-HERE", "quantity": 1}, 422, "unknown_sku"),
        ({"sku": "POSTER", "quantity": 1}, 409, "price_missing"),
        ({"sku": "MUG-RED", "quantity": 0}, 422, "invalid_quantity"),
        ({"sku": "MUG-RED", "quantity": 100}, 422, "invalid_quantity"),
    ],
)
async def test_a_line_the_shop_cannot_sell_is_refused_with_a_reason(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, code: str
) -> None:
    cart = await open_cart(client)

    response = await client.post(f"/store/carts/{cart['id']}/lines", json=body)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert (await client.get(f"/store/carts/{cart['id']}")).json()["lines"] == []


async def test_opening_a_cart_needs_a_known_market_and_nothing_else(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.post("/store/carts", json={"market": "XX"})
    extra = await client.post("/store/carts", json={"market": "US", "customer_id": "c1"})
    missing = await client.post("/store/carts", json={})

    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_market"
    assert extra.status_code == 422
    assert missing.status_code == 422


async def test_an_unknown_cart_or_line_is_a_problem_not_a_crash(
    client: httpx.AsyncClient,
) -> None:
    missing_cart = await client.get("/store/carts/not-a-cart")
    assert missing_cart.status_code == 404
    assert missing_cart.headers["content-type"] == "application/problem+json"
    assert missing_cart.json()["code"] == "cart_not_found"

    cart = await open_cart(client)
    missing_line = await client.delete(f"/store/carts/{cart['id']}/lines/MUG-RED")
    assert missing_line.status_code == 404
    assert missing_line.json()["code"] == "line_not_found"


async def test_a_checked_out_cart_takes_no_more_lines(
    client: httpx.AsyncClient, carts: CartService
) -> None:
    cart = await open_cart(client)
    await carts.close(cart["id"])

    response = await client.post(
        f"/store/carts/{cart['id']}/lines", json={"sku": "MUG-RED", "quantity": 1}
    )

    assert response.status_code == 409
    assert response.json()["code"] == "cart_closed"
    assert (await client.get(f"/store/carts/{cart['id']}")).json()["status"] == "checked_out"
