"""The shop's protective layer through the real app on both databases: card numbers refused,
rate limits, body size limits, strict JSON, security headers and CORS. Every refusal leaves
the shop as it was."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from colonnade.app import Shop, create_app
from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.modules.catalog.service import NewProduct, NewVariant
from tests.conftest import count_rows
from tests.integration.storefront import client, started

SECRET = "web-hardening-tests-only-" + "k" * 32
ADDRESS = {"name": "Ada", "line1": "1 Row", "city": "Town", "postal_code": "1", "country": "US"}
TEST_CARDS = ["4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005"]


def checkout_body(**address: Any) -> dict[str, Any]:
    return {
        "email": "ada@example.com",
        "shipping_address": {**ADDRESS, **address},
        "payment": {"method": "card", "token": "tok_visa"},
    }


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SECRET,
        rate_limit_login_per_address=4,
        rate_limit_login_per_account=2,
        rate_limit_registration_per_address=3,
        rate_limit_registration_per_email=1,
        rate_limit_checkout_per_address=4,
        rate_limit_checkout_per_cart=2,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with started(settings, us_tax=Decimal("0")) as app:
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app, "203.0.113.7") as http:
        yield http


async def product(app: FastAPI, on_hand: int = 5) -> str:
    shop: Shop = app.state.shop
    sku = f"SKU-{uuid.uuid4().hex[:8].upper()}"
    await shop.catalog.create_product(
        NewProduct(
            titles={"en-US": f"Thing {sku}"}, default_locale="en-US", variants=[NewVariant(sku=sku)]
        )
    )
    await shop.pricing.set_prices(sku, [Money(1000, "USD")])
    await shop.inventory.set_on_hand(sku, on_hand)
    return sku


async def cart_with(http: httpx.AsyncClient, sku: str) -> str:
    cart = await http.post("/store/carts", json={"market": "US"})
    assert cart.status_code == 201, cart.text
    added = await http.post(f"/store/carts/{cart.json()['id']}/lines", json={"sku": sku})
    assert added.status_code == 200, added.text
    return str(cart.json()["id"])


async def nothing_sold(app: FastAPI, sku: str, on_hand: int = 5, checkouts: int = 0) -> None:
    shop: Shop = app.state.shop
    assert await count_rows(shop.db, "orders_orders") == 0
    assert await count_rows(shop.db, "checkout_checkouts") == checkouts
    assert await count_rows(shop.db, "payments_payments") == 0
    assert (await shop.inventory.stock(sku)).available == on_hand


# 1. Card numbers never enter the shop.


@pytest.mark.parametrize("card", TEST_CARDS)
async def test_a_card_number_in_the_address_is_refused_and_nothing_is_bought(
    app: FastAPI, http: httpx.AsyncClient, card: str
) -> None:
    sku = await product(app)
    cart_id = await cart_with(http, sku)

    refused = await http.post(
        f"/store/carts/{cart_id}/checkout",
        json=checkout_body(line2=f"card {card} exp 12/29"),
        headers=key(),
    )

    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["code"], problem["field"]) == ("card_number_rejected", "shipping_address.line2")
    assert card not in refused.text
    assert card.replace(" ", "").replace("-", "")[-4:] not in refused.text
    await nothing_sold(app, sku)
    cart = await http.get(f"/store/carts/{cart_id}")
    assert [line["sku"] for line in cart.json()["lines"]] == [sku]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payment": {"method": "card", "token": "4242424242424242"}}, "payment.token"),
        ({"payment": {"method": "card", "token": "tok_4242424242424242"}}, "payment.token"),
        ({"payment": {"method": "card", "token": 4242424242424242}}, "payment.token"),
        ({"email": "ada@example.com", "notes": ["fine", "5555 5555 5555 4444"]}, "notes.1"),
    ],
)
async def test_card_numbers_are_found_at_any_depth_and_in_any_json_type(
    app: FastAPI, http: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    sku = await product(app)
    cart_id = await cart_with(http, sku)
    refused = await http.post(
        f"/store/carts/{cart_id}/checkout", json={**checkout_body(), **body}, headers=key()
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "card_number_rejected")
    assert refused.json()["field"] == field
    await nothing_sold(app, sku)


async def test_card_numbers_spelled_with_json_escapes_are_found(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    sku = await product(app)
    cart_id = await cart_with(http, sku)
    escaped = "".join(f"\\u{ord(c):04x}" for c in "4242424242424242")
    body = (
        '{"email": "ada@example.com", "shipping_address": {"name": "Ada", "line1": "1 Row", '
        f'"line2": "{escaped}", "city": "Town", "postal_code": "1", "country": "US"}}, '
        '"payment": {"method": "card", "token": "tok_visa"}}'
    )
    refused = await http.post(
        f"/store/carts/{cart_id}/checkout",
        content=body,
        headers={**key(), "Content-Type": "application/json"},
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "shipping_address.line2")
    await nothing_sold(app, sku)


async def test_card_numbers_in_query_strings_and_forms_are_refused(
    http: httpx.AsyncClient,
) -> None:
    search = await http.get("/store/products", params={"market": "US", "q": TEST_CARDS[0]})
    assert (search.status_code, search.json()["code"]) == (422, "card_number_rejected")
    assert (search.json()["field"], search.json()["location"]) == ("q", "query")
    login = await http.post(
        "/auth/token", data={"username": "ada@example.com", "password": TEST_CARDS[1]}
    )
    assert (login.status_code, login.json()["code"]) == (422, "card_number_rejected")
    assert login.json()["field"] == "password"
    assert "4444" not in login.text


async def test_nul_characters_are_refused_wherever_they_come_and_nothing_is_bought(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    sku = await product(app)
    cart_id = await cart_with(http, sku)

    in_body = await http.post(
        f"/store/carts/{cart_id}/checkout",
        json=checkout_body(line2="flat 2\x00b"),
        headers=key(),
    )
    in_query = await http.get("/store/products", params={"market": "US", "q": "tea\x00"})
    in_path = await http.get("/store/products/abc%00def")
    in_form = await http.post("/auth/token", data={"username": "a\x00@b.example", "password": "x"})

    for answer, location in (
        (in_body, "body"),
        (in_query, "query"),
        (in_path, "path"),
        (in_form, "body"),
    ):
        assert (answer.status_code, answer.json()["code"]) == (422, "nul_character")
        assert answer.json()["location"] == location
    await nothing_sold(app, sku)


async def test_phone_and_order_numbers_pass_and_the_replayed_body_buys(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    sku = await product(app)
    cart_id = await cart_with(http, sku)
    bought = await http.post(
        f"/store/carts/{cart_id}/checkout",
        json=checkout_body(
            phone="+1 555 123 4567", line2="order 4242424242424241, ref 1234567890123"
        ),
        headers=key(),
    )
    assert bought.status_code == 201, bought.text
    assert bought.json()["status"] == "paid"


# 3. Rate limits on login, registration and checkout.


async def test_logins_are_limited_per_account_and_per_address(app: FastAPI) -> None:
    async with client(app, "198.51.100.1") as http:
        began = time.monotonic()
        for _ in range(2):
            wrong = await http.post(
                "/auth/token", data={"username": "ada@example.com", "password": "wrong"}
            )
            assert wrong.status_code == 401
        limited = await http.post(
            "/auth/token", data={"username": "ADA@example.com ", "password": "wrong"}
        )
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        # The account's bucket refills one login per 30 s (2 a minute), counted from the
        # first attempt: the wait is 30 s less what the attempts took on this machine.
        took = math.ceil(time.monotonic() - began)
        assert 30 - took <= int(limited.headers["Retry-After"]) <= 30
        # Other accounts from the same address: the address allows 4 in all.
        for name in ("bea", "cy"):
            other = await http.post(
                "/auth/token", data={"username": f"{name}@example.com", "password": "wrong"}
            )
            assert other.status_code == 401
        from_address = await http.post(
            "/auth/token", data={"username": "dee@example.com", "password": "wrong"}
        )
        assert from_address.status_code == 429
    # Ada's account stays limited from any address.
    async with client(app, "198.51.100.2") as elsewhere:
        again = await elsewhere.post(
            "/auth/token", data={"username": "ada@example.com", "password": "wrong"}
        )
        assert again.status_code == 429


async def test_registrations_are_limited_per_email_and_per_address(app: FastAPI) -> None:
    shop: Shop = app.state.shop

    def registration(email: str) -> dict[str, str]:
        return {"email": email, "password": "a long enough password", "name": "Ada"}

    async with client(app, "198.51.100.3") as http:
        first = await http.post("/store/customers", json=registration("ada@example.com"))
        assert first.status_code == 201, first.text
        again = await http.post("/store/customers", json=registration("Ada@Example.com"))
        assert (again.status_code, again.json()["code"]) == (429, "rate_limited")
        for name in ("bea", "cy"):
            other = await http.post("/store/customers", json=registration(f"{name}@example.com"))
            assert other.status_code == 201
        fourth = await http.post("/store/customers", json=registration("dee@example.com"))
        assert fourth.status_code == 429
        assert int(fourth.headers["Retry-After"]) >= 1
    assert await count_rows(shop.db, "identity_customers") == 3


async def test_checkouts_are_limited_per_cart_and_nothing_is_bought_when_limited(
    app: FastAPI,
) -> None:
    sku = await product(app)
    async with client(app, "198.51.100.4") as http:
        cart_id = await cart_with(http, sku)
        began = time.monotonic()
        for _ in range(2):
            bad_key = await http.post(
                f"/store/carts/{cart_id}/checkout",
                json=checkout_body(),
                headers={"Idempotency-Key": "short"},
            )
            assert bad_key.json()["code"] == "idempotency_key_required"
        limited = await http.post(
            f"/store/carts/{cart_id}/checkout", json=checkout_body(), headers=key()
        )
        assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
        # The cart's bucket refills one checkout per 30 s (2 a minute), counted from the
        # first attempt: the wait is 30 s less what the attempts took on this machine.
        took = math.ceil(time.monotonic() - began)
        assert 30 - took <= int(limited.headers["Retry-After"]) <= 30
        await nothing_sold(app, sku)


async def test_a_queue_tickets_returns_spend_the_address_allowance_not_the_carts(
    settings: Settings,
) -> None:
    """The cart's allowance is two a minute; a holder coming back with a ticket (here a
    forged one, refused before anything runs) spends only the address's four."""
    with_room = settings.model_copy(update={"checkout_concurrency": 5})
    async with started(with_room, us_tax=Decimal("0")) as app:
        sku = await product(app)
        async with client(app, "198.51.100.9") as http:
            cart_id = await cart_with(http, sku)
            for _ in range(3):
                returned = await http.post(
                    f"/store/carts/{cart_id}/checkout",
                    json=checkout_body(),
                    headers=key() | {"Queue-Ticket": "not-a-ticket"},
                )
                assert returned.json()["code"] == "queue_ticket_invalid", returned.text
            bought = await http.post(
                f"/store/carts/{cart_id}/checkout", json=checkout_body(), headers=key()
            )
            assert bought.status_code == 201, bought.text
            limited = await http.post(
                f"/store/carts/{cart_id}/checkout",
                json=checkout_body(),
                headers=key() | {"Queue-Ticket": "not-a-ticket"},
            )
            assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")


async def test_without_a_waiting_room_a_queue_ticket_excuses_nothing(app: FastAPI) -> None:
    sku = await product(app)
    async with client(app, "198.51.100.10") as http:
        cart_id = await cart_with(http, sku)
        answers = [
            await http.post(
                f"/store/carts/{cart_id}/checkout",
                json=checkout_body(),
                headers={"Idempotency-Key": "short", "Queue-Ticket": "not-a-ticket"},
            )
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [422, 422, 429]
        await nothing_sold(app, sku)


async def test_checkouts_are_limited_per_address(app: FastAPI) -> None:
    sku = await product(app)
    async with client(app, "198.51.100.5") as http:
        cart_id = await cart_with(http, sku)
        for _ in range(4):
            unknown = await http.post(
                f"/store/carts/{uuid.uuid4()}/checkout", json=checkout_body(), headers=key()
            )
            assert unknown.status_code == 404
        attempts = await count_rows(app.state.shop.db, "checkout_checkouts")
        limited = await http.post(
            f"/store/carts/{cart_id}/checkout", json=checkout_body(), headers=key()
        )
        assert limited.status_code == 429
        await nothing_sold(app, sku, checkouts=attempts)
    async with client(app, "198.51.100.6") as neighbour:
        bought = await neighbour.post(
            f"/store/carts/{cart_id}/checkout", json=checkout_body(), headers=key()
        )
        assert bought.status_code == 201, bought.text


# 4. Request body size limit.


async def test_bodies_over_the_limit_are_refused_by_length_and_while_streaming(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    shop: Shop = app.state.shop
    padding = "x" * 70_000
    declared = await http.post("/store/carts", json={"market": "US", "note": padding})
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert declared.json()["code"] == "body_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"market": "US", "note": "'
        for _ in range(20):
            yield b"x" * 4096
        yield b'"}'

    streamed = await http.post(
        "/store/carts", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert (streamed.status_code, streamed.json()["code"]) == (413, "body_too_large")
    assert await count_rows(shop.db, "cart_carts") == 0

    async def small() -> AsyncIterator[bytes]:
        yield b'{"market": '
        yield b'"US"}'

    fits = await http.post(
        "/store/carts", content=small(), headers={"Content-Type": "application/json"}
    )
    assert fits.status_code == 201, fits.text


# 5. Strict JSON: every request body refuses fields it does not know.


def json_body_schemas(spec: dict[str, Any]) -> set[str]:
    """Names of the component schemas that JSON request bodies use, nested ones included."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in found:
                    found.add(name)
                    walk(spec["components"]["schemas"][name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for item in spec["paths"].values():
        for operation in item.values():
            content = operation.get("requestBody", {}).get("content", {})
            walk(content.get("application/json", {}))
    return found


def test_every_json_request_body_forbids_unknown_fields(tmp_path: Path) -> None:
    spec = offline_app(tmp_path).openapi()
    names = json_body_schemas(spec)
    assert {"OpenCart", "CheckoutIn", "Address"} <= names
    lenient = sorted(
        name
        for name in names
        if spec["components"]["schemas"][name].get("type") == "object"
        and spec["components"]["schemas"][name].get("additionalProperties") is not False
    )
    assert lenient == [], "request body models without extra='forbid'"


async def test_an_unknown_field_is_refused_by_name(app: FastAPI, http: httpx.AsyncClient) -> None:
    shop: Shop = app.state.shop
    refused = await http.post("/store/carts", json={"market": "US", "colour": "red"})
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_input")
    assert [error["field"] for error in refused.json()["errors"]] == ["colour"]
    assert await count_rows(shop.db, "cart_carts") == 0


# 6. Security headers; 7. CORS. No database work: the app is not started.


def offline_app(tmp_path: Path, **settings: Any) -> FastAPI:
    return create_app(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}", **settings)
    )


async def test_every_answer_says_nosniff_and_pages_get_a_strict_policy(tmp_path: Path) -> None:
    async with client(offline_app(tmp_path)) as http:
        live = await http.get("/health/live")
        assert live.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" not in live.headers
        assert "Strict-Transport-Security" not in live.headers
        refused = await http.post("/store/carts", content=b"x" * 70_000)
        assert refused.status_code == 413
        assert refused.headers["X-Content-Type-Options"] == "nosniff"

        for path in ("/docs", "/redoc"):
            docs = await http.get(path)
            assert docs.status_code == 200
            assert docs.headers["content-type"].startswith("text/html")
            assert docs.headers["X-Content-Type-Options"] == "nosniff"
            assert docs.headers["X-Frame-Options"] == "DENY"
            assert docs.headers["Referrer-Policy"] == "no-referrer"
            policy = docs.headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in policy
            # The docs page loads Swagger UI / ReDoc from this CDN, and nothing else may.
            assert "https://cdn.jsdelivr.net" in policy
            assert "cdn.jsdelivr.net/npm/" in docs.text


async def test_hsts_is_sent_when_the_shop_is_behind_https(tmp_path: Path) -> None:
    async with client(offline_app(tmp_path, behind_https=True)) as http:
        live = await http.get("/health/live")
        assert live.headers["Strict-Transport-Security"].startswith("max-age=")


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }


async def test_cors_is_closed_by_default(tmp_path: Path) -> None:
    async with client(offline_app(tmp_path)) as http:
        for origin in ("https://shop.example", "http://evil.example"):
            asked = await http.options("/store/carts", headers=preflight(origin))
            assert "access-control-allow-origin" not in asked.headers
            simple = await http.get("/health/live", headers={"Origin": origin})
            assert simple.status_code == 200
            assert "access-control-allow-origin" not in simple.headers


async def test_cors_opens_for_configured_origins_only(tmp_path: Path) -> None:
    app = offline_app(tmp_path, cors_origins=["https://shop.example"])
    async with client(app, "203.0.113.7") as http:
        asked = await http.options("/store/carts", headers=preflight("https://shop.example"))
        assert asked.status_code == 200
        assert asked.headers["access-control-allow-origin"] == "https://shop.example"
        assert "POST" in asked.headers["access-control-allow-methods"]
        simple = await http.get("/health/live", headers={"Origin": "https://shop.example"})
        assert simple.headers["access-control-allow-origin"] == "https://shop.example"

        other = await http.options("/store/carts", headers=preflight("http://evil.example"))
        assert "access-control-allow-origin" not in other.headers
        simple_other = await http.get("/health/live", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in simple_other.headers


async def test_a_storefront_elsewhere_may_send_the_checkout_headers(tmp_path: Path) -> None:
    app = offline_app(tmp_path, cors_origins=["https://shop.example"])
    async with client(app, "203.0.113.7") as http:
        asked = await http.options(
            "/store/carts/c-1/checkout",
            headers=preflight("https://shop.example")
            | {"Access-Control-Request-Headers": "content-type,idempotency-key,queue-ticket"},
        )
        assert asked.status_code == 200, asked.text
        allowed = asked.headers["access-control-allow-headers"].lower()
        assert {"idempotency-key", "queue-ticket"} <= {h.strip() for h in allowed.split(",")}
