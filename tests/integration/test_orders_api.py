"""Orders over HTTP: guests with their secret, staff with their scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.crypto import Keyring
from colonnade.kernel.db import Database
from colonnade.kernel.errors import Unauthorized
from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.modules.orders.api import router
from colonnade.modules.orders.service import NewOrder, OrderLine, OrdersService, PlacedOrder
from colonnade.web import problems

START = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)
PRINCIPALS = {
    "staff": Principal("staff-1", "staff", frozenset({"orders:read", "orders:write"})),
    "reader": Principal("staff-2", "staff", frozenset({"orders:read"})),
    "ada": Principal("cust-1", "customer"),
}
STAFF = {"Authorization": "Bearer staff"}
READER = {"Authorization": "Bearer reader"}


async def authenticate(token: str) -> Principal:
    if token not in PRINCIPALS:
        raise Unauthorized("unknown test token")
    return PRINCIPALS[token]


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def orders(db: Database, keyring: Keyring, clock: SettableClock) -> OrdersService:
    return OrdersService(db, keyring=keyring, clock=clock)


@pytest.fixture
async def client(orders: OrdersService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)
    app.state.authenticate = authenticate
    app.include_router(router(orders))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://shop.test"
    ) as http:
        yield http


async def place(
    orders: OrdersService,
    checkout_id: str = "chk-1",
    email: str = "ada@example.com",
    customer_id: str | None = None,
) -> PlacedOrder:
    price = Money(1200, "USD")
    return await orders.place(
        NewOrder(
            checkout_id=checkout_id,
            email=email,
            market="US",
            currency="USD",
            tax_inclusive=False,
            lines=[OrderLine("MUG-RED", "Red mug", 2, price, price.times(2), Money(192, "USD"))],
            shipping=Money(500, "USD"),
            shipping_address={"name": "Ada Lovelace", "country": "US"},
            payment_id="pay-1",
            customer_id=customer_id,
        )
    )


async def paid(orders: OrdersService, checkout_id: str = "chk-1") -> str:
    placed = await place(orders, checkout_id)
    await orders.mark_paid(placed.order.id, placed.order.total)
    return placed.order.id


async def test_a_guest_sees_their_order_with_its_secret(
    client: httpx.AsyncClient, orders: OrdersService
) -> None:
    placed = await place(orders)
    order_id = placed.order.id

    response = await client.get(f"/store/orders/{order_id}", params={"token": placed.access_token})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": order_id,
        "number": placed.order.number,
        "status": "placed",
        "email": "ada@example.com",
        "market": "US",
        "currency": "USD",
        "tax_inclusive": False,
        "lines": [
            {
                "sku": "MUG-RED",
                "title": "Red mug",
                "quantity": 2,
                "unit_price": usd(1200),
                "line_total": usd(2400),
                "tax": usd(192),
                "discount": usd(0),
                "promotions": [],
                "refunded_quantity": 0,
            }
        ],
        "subtotal": usd(2400),
        "discount": usd(0),
        "tax": usd(192),
        "shipping": usd(500),
        "total": usd(3092),
        "paid": usd(0),
        "refunded": usd(0),
        "shipping_address": {"name": "Ada Lovelace", "country": "US"},
        "placed_at": "2025-11-28T09:00:00Z",
        "history": [
            {
                "from": None,
                "to": "placed",
                "at": "2025-11-28T09:00:00Z",
                "actor": None,
                "note": None,
            }
        ],
    }


async def test_without_the_right_secret_the_order_does_not_exist(
    client: httpx.AsyncClient, orders: OrdersService
) -> None:
    placed = await place(orders)
    wrong = await client.get(f"/store/orders/{placed.order.id}", params={"token": "guess"})
    missing = await client.get(f"/store/orders/{placed.order.id}")
    unknown = await client.get("/store/orders/nope", params={"token": placed.access_token})

    for response in (wrong, missing, unknown):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "order_not_found"


async def test_a_customer_sees_only_their_own_orders(
    client: httpx.AsyncClient, orders: OrdersService
) -> None:
    mine = await place(orders, "chk-a", customer_id="cust-1")
    theirs = await place(orders, "chk-b", customer_id="cust-2")
    ada = {"Authorization": "Bearer ada"}

    listed = await client.get("/store/orders", headers=ada)
    assert [o["id"] for o in listed.json()["items"]] == [mine.order.id]
    assert (await client.get(f"/store/orders/{mine.order.id}", headers=ada)).status_code == 200
    assert (await client.get(f"/store/orders/{theirs.order.id}", headers=ada)).status_code == 404
    assert (await client.get("/store/orders", headers=STAFF)).status_code == 403


async def test_staff_list_orders_with_filters_and_pages(
    client: httpx.AsyncClient, orders: OrdersService, clock: SettableClock
) -> None:
    ids = []
    for n in range(3):
        placed = await place(orders, f"chk-{n}", email=f"buyer{n % 2}@example.com")
        ids.append(placed.order.id)
        clock.advance(timedelta(minutes=5))
    await orders.mark_paid(ids[1], placed.order.total)

    first = await client.get("/admin/orders", params={"limit": 2}, headers=READER)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["total"], body["limit"], body["offset"]) == (3, 2, 0)
    assert [o["id"] for o in body["items"]] == [ids[2], ids[1]]
    assert body["items"][0]["history"][0]["actor"] == "checkout"
    second = await client.get("/admin/orders", params={"limit": 2, "offset": 2}, headers=READER)
    assert [o["id"] for o in second.json()["items"]] == [ids[0]]

    by_status = await client.get("/admin/orders", params={"status": "paid"}, headers=READER)
    assert [o["id"] for o in by_status.json()["items"]] == [ids[1]]
    by_email = await client.get(
        "/admin/orders", params={"email": "buyer0@example.com"}, headers=READER
    )
    assert [o["id"] for o in by_email.json()["items"]] == [ids[2], ids[0]]


async def test_listing_refuses_bad_filters_precisely(client: httpx.AsyncClient) -> None:
    bad_status = await client.get("/admin/orders", params={"status": "lost"}, headers=READER)
    assert bad_status.status_code == 422
    assert "'lost' is not an order status" in bad_status.json()["detail"]
    too_many = await client.get("/admin/orders", params={"limit": 1000}, headers=READER)
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "limit"


async def test_staff_fulfil_ship_and_deliver_an_order(
    client: httpx.AsyncClient, orders: OrdersService
) -> None:
    order_id = await paid(orders)

    fulfilled = await client.post(f"/admin/orders/{order_id}/fulfil", headers=STAFF)
    assert fulfilled.status_code == 200, fulfilled.text
    assert fulfilled.json()["status"] == "fulfilled"
    shipped = await client.post(
        f"/admin/orders/{order_id}/ship",
        json={"carrier": "UPS", "tracking": "1Z999"},
        headers=STAFF,
    )
    assert shipped.json()["history"][-1] == {
        "from": "fulfilled",
        "to": "shipped",
        "at": "2025-11-28T09:00:00Z",
        "actor": "staff-1",
        "note": "UPS 1Z999",
    }
    delivered = await client.post(f"/admin/orders/{order_id}/deliver", headers=STAFF)
    assert delivered.json()["status"] == "delivered"
    shown = await client.get(f"/admin/orders/{order_id}", headers=READER)
    assert shown.json()["paid"] == usd(3092)
    assert len(shown.json()["history"]) == 5


async def test_cancelling_a_shipped_order_is_a_conflict(
    client: httpx.AsyncClient, orders: OrdersService
) -> None:
    order_id = await paid(orders)
    await orders.fulfil(order_id, "staff-1")
    await orders.ship(order_id, "staff-1", "UPS", "1Z999")

    response = await client.post(
        f"/admin/orders/{order_id}/cancel", json={"reason": "changed mind"}, headers=STAFF
    )

    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "illegal_transition"
    assert problem["detail"] == "an order that is shipped cannot be cancelled"
    assert (problem["order_status"], problem["action"]) == ("shipped", "cancelled")
    assert (await orders.order(order_id)).status.value == "shipped"


async def test_staff_cancel_a_paid_order_with_a_reason(
    client: httpx.AsyncClient, orders: OrdersService
) -> None:
    order_id = await paid(orders)
    response = await client.post(
        f"/admin/orders/{order_id}/cancel", json={"reason": "customer called"}, headers=STAFF
    )
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["history"][-1]["note"] == "customer called"


async def test_bad_action_bodies_are_refused_and_change_nothing(
    client: httpx.AsyncClient, orders: OrdersService
) -> None:
    order_id = await paid(orders)
    await orders.fulfil(order_id, "staff-1")
    for body in (
        {"carrier": "UPS"},
        {"carrier": "UPS", "tracking": 123},
        {"carrier": "UPS", "tracking": "1Z", "extra": True},
        {"carrier": " ", "tracking": "1Z"},
    ):
        response = await client.post(f"/admin/orders/{order_id}/ship", json=body, headers=STAFF)
        assert response.status_code == 422, body
        assert response.json()["code"] in ("invalid_input", "invalid_order")
    empty_reason = await client.post(
        f"/admin/orders/{order_id}/cancel", json={"reason": ""}, headers=STAFF
    )
    assert empty_reason.status_code == 422
    assert (await orders.order(order_id)).status.value == "fulfilled"


async def test_staff_actions_need_their_scopes(
    client: httpx.AsyncClient, orders: OrdersService
) -> None:
    order_id = await paid(orders)

    anonymous = await client.get("/admin/orders")
    assert anonymous.status_code == 401
    read_only = await client.post(f"/admin/orders/{order_id}/fulfil", headers=READER)
    assert read_only.status_code == 403
    assert read_only.json()["scope"] == "orders:write"
    customer = await client.get(
        f"/admin/orders/{order_id}", headers={"Authorization": "Bearer ada"}
    )
    assert customer.status_code == 403
    assert (await orders.order(order_id)).status.value == "paid"


async def test_an_unknown_order_is_a_404_for_staff(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/orders/nope/fulfil", headers=STAFF)
    assert response.status_code == 404
    assert response.json()["detail"] == "there is no order nope"
