"""Carts and orders belong to the customer who made them: to anyone else they do not exist.

Guests keep working as before: their carts are reached by id, their orders by the secret
handed out at checkout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from colonnade.app import Shop
from tests.conftest import count_rows
from tests.integration.storefront import (
    check_out,
    checkout_body,
    customer,
    open_cart,
    product,
    storefront,
)

ADDRESS = {"name": "Ada", "line1": "1 Row", "city": "Town", "postal_code": "1", "country": "US"}


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[Shop, httpx.AsyncClient]]:
    async with storefront(database_url) as opened:
        yield opened


async def test_a_customers_cart_answers_only_to_them(
    store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = store
    sku = await product(shop)
    ada = await customer(http, "ada@example.com", "Ada")
    bob = await customer(http, "bob@example.com", "Bob")
    ada_id = await me(http, ada)
    cart_id = await open_cart(http, sku, ada)
    assert (await shop.carts.snapshot(cart_id, ada_id)).customer_id == ada_id

    for stranger in ({}, bob):
        for method, path, body in (
            ("GET", f"/store/carts/{cart_id}", None),
            ("POST", f"/store/carts/{cart_id}/lines", {"sku": sku, "quantity": 5}),
            ("PATCH", f"/store/carts/{cart_id}/lines/{sku}", {"quantity": 9}),
            ("DELETE", f"/store/carts/{cart_id}/lines/{sku}", None),
        ):
            response = await http.request(method, path, json=body, headers=stranger)
            assert response.status_code == 404, (method, path, response.text)
            # Exactly what a cart that does not exist answers.
            assert response.json()["code"] == "cart_not_found"
    bad_token = await http.get(
        f"/store/carts/{cart_id}", headers={"Authorization": "Bearer forged"}
    )
    assert bad_token.status_code == 401

    mine = await http.get(f"/store/carts/{cart_id}", headers=ada)
    assert mine.status_code == 200
    assert [(line["sku"], line["quantity"]) for line in mine.json()["lines"]] == [(sku, 1)]


async def test_only_the_owner_checks_out_their_cart_and_the_order_is_theirs(
    store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = store
    sku = await product(shop, on_hand=5)
    ada = await customer(http, "ada@example.com", "Ada")
    bob = await customer(http, "bob@example.com", "Bob")
    cart_id = await open_cart(http, sku, ada)

    for stranger in ({}, bob):
        refused = await check_out(http, cart_id, "thief@example.com", ADDRESS, stranger)
        assert refused.status_code == 404
        assert refused.json()["code"] == "cart_not_found"
    assert await count_rows(shop.db, "checkout_checkouts") == 0
    assert await count_rows(shop.db, "payments_payments") == 0
    assert (await shop.inventory.stock(sku)).available == 5

    bought = await check_out(http, cart_id, "ada@example.com", ADDRESS, ada)
    assert bought.status_code == 201, bought.text
    order_id = bought.json()["id"]
    assert "email" not in bought.json()
    ada_id = await me(http, ada)
    assert (await shop.orders.order(order_id)).customer_id == ada_id

    listed = await http.get("/store/orders", headers=ada)
    assert [o["id"] for o in listed.json()["items"]] == [order_id]
    assert (await http.get(f"/store/orders/{order_id}", headers=ada)).status_code == 200
    assert (await http.get("/store/orders", headers=bob)).json()["items"] == []
    for stranger in ({}, bob):
        hidden = await http.get(f"/store/orders/{order_id}", headers=stranger)
        assert hidden.status_code == 404
        assert hidden.json()["code"] == "order_not_found"


async def test_a_customer_lists_their_orders_newest_first_page_by_page(
    store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = store
    sku = await product(shop)
    ada = await customer(http, "ada@example.com", "Ada")
    ids = []
    for _ in range(3):
        bought = await check_out(http, await open_cart(http, sku, ada), "a@x.io", ADDRESS, ada)
        ids.append(bought.json()["id"])

    first = await http.get("/store/orders", params={"limit": 2}, headers=ada)
    second = await http.get("/store/orders", params={"limit": 2, "offset": 2}, headers=ada)

    assert first.json()["total"] == 3
    assert [o["id"] for o in first.json()["items"]] == [ids[2], ids[1]]
    assert [o["id"] for o in second.json()["items"]] == [ids[0]]
    assert (await http.get("/store/orders")).status_code == 401


async def test_guests_shop_as_before_and_read_their_order_with_its_secret(
    store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = store
    sku = await product(shop)
    ada = await customer(http, "ada@example.com", "Ada")
    cart_id = await open_cart(http, sku)
    # A guest cart is anyone's who has its id, a signed-in customer's too.
    assert (await http.get(f"/store/carts/{cart_id}", headers=ada)).status_code == 200

    bought = await http.post(
        f"/store/carts/{cart_id}/checkout",
        json=checkout_body("guest@example.com", ADDRESS),
        headers={"Idempotency-Key": "guest-key-0001"},
    )
    assert bought.status_code == 201, bought.text
    order = bought.json()
    assert (await shop.orders.order(order["id"])).customer_id is None

    shown = await http.get(f"/store/orders/{order['id']}", params={"token": order["access_token"]})
    assert shown.status_code == 200
    assert shown.json()["email"] == "guest@example.com"
    assert (await http.get(f"/store/orders/{order['id']}", headers=ada)).status_code == 404
    assert (await http.get("/store/orders", headers=ada)).json()["items"] == []


async def test_forgetting_a_customer_cuts_their_carts_loose(
    store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = store
    sku = await product(shop)
    ada = await customer(http, "ada@example.com", "Ada")
    ada_id = await me(http, ada)
    bought = await check_out(http, await open_cart(http, sku, ada), "a@x.io", ADDRESS, ada)
    assert bought.status_code == 201
    open_id = await open_cart(http, sku, ada)
    guest_cart = await open_cart(http, sku)

    assert await shop.carts.forget_customer(ada_id) == 2

    # The open cart is gone for everyone, its owner included; the guest's is untouched.
    for who in ({}, ada):
        gone = await http.get(f"/store/carts/{open_id}", headers=who)
        assert gone.status_code == 404
    assert (await http.get(f"/store/carts/{guest_cart}")).status_code == 200
    assert await shop.carts.forget_customer(ada_id) == 0


async def me(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await http.get("/store/customers/me", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])
