"""A slow or failing payment provider, as buyers and operators meet it over HTTP, on both
databases: the breaker trips, checkouts fail fast without holding stock or money, and the
shop goes back to the provider once it answers again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from colonnade.app import Shop
from colonnade.kernel.settings import Settings
from tests.conftest import count_rows
from tests.integration.storefront import SECRET, client, open_cart, product, scrape, started

TIMEOUT = 3.0
COOLDOWN = 4.0
ADDRESS = {"name": "Ada", "line1": "1 Row", "city": "Town", "postal_code": "1", "country": "US"}


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[tuple[Shop, httpx.AsyncClient]]:
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        payment_timeout_seconds=TIMEOUT,
        payment_retries=1,
        payment_retry_backoff_seconds=0.05,
        payment_breaker_failures=2,
        payment_breaker_cooldown_seconds=COOLDOWN,
        # tok_timeout keeps the shop waiting far past its own timeout: a processor that hangs.
        test_gateway_no_answer_seconds=600,
    )
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        yield app.state.shop, http


async def checkout(http: httpx.AsyncClient, cart_id: str, token: str) -> httpx.Response:
    return await http.post(
        f"/store/carts/{cart_id}/checkout",
        json={
            "email": "ada@example.com",
            "shipping_address": ADDRESS,
            "payment": {"method": "card", "token": token},
        },
        headers={"Idempotency-Key": f"key-{uuid.uuid4().hex}"},
    )


async def metric(name: str, **labels: str) -> float:
    """The sum of the samples of `name` (with these labels) that the metrics port shows now."""
    exposition = await scrape()
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def provider_calls() -> float:
    return await metric("colonnade_payment_provider_calls_total")


async def payment_statuses(shop: Shop) -> list[str]:
    async with shop.db.reading() as conn:
        return list((await conn.scalars(text("SELECT status FROM payments_payments"))).all())


async def test_a_tripped_breaker_fails_checkouts_fast_and_holds_nothing(
    store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = store
    sku = await product(shop, on_hand=5)
    cart_id = await open_cart(http, sku)

    # The provider hangs: the first attempt and its retry both time out, and trip the breaker.
    hung = await checkout(http, cart_id, "tok_timeout")
    assert hung.status_code == 503, hung.text
    assert hung.json()["code"] == "payment_provider_unavailable"
    assert await metric("colonnade_payment_circuit_state") == 2
    calls_before = await provider_calls()

    started_at = time.monotonic()
    fast = await checkout(http, cart_id, "tok_visa")
    took = time.monotonic() - started_at

    assert fast.status_code == 503, fast.text
    assert fast.headers["content-type"].startswith("application/problem+json")
    problem = fast.json()
    assert problem["code"] == "payment_provider_unavailable"
    assert "unavailable" in problem["detail"]
    assert "try again later" in problem["detail"]
    assert problem["detail"].endswith("retry with a new Idempotency-Key")
    assert 1 <= int(fast.headers["Retry-After"]) <= COOLDOWN
    # Not one provider call, and no waiting for a timeout.
    assert await provider_calls() == calls_before
    assert took < TIMEOUT / 2
    stock = await shop.inventory.stock(sku)
    assert (stock.reserved, stock.available) == (0, 5)
    assert await count_rows(shop.db, "orders_orders") == 0
    assert await count_rows(shop.db, "payments_gateway_charges") == 0
    # The hung one is unknown until the provider answers a void; the fast one never began.
    assert sorted(await payment_statuses(shop)) == ["unknown", "voided"]

    await asyncio.sleep(COOLDOWN)
    paid = await checkout(http, cart_id, "tok_visa")

    assert paid.status_code == 201, paid.text
    assert await metric("colonnade_payment_circuit_state") == 0
    assert (await shop.inventory.stock(sku)).available == 4
    # With the provider back, the reconcile job voids what had no answer.
    assert await shop.payments.reconcile() == 1
    assert sorted(await payment_statuses(shop)) == ["captured", "voided", "voided"]


async def test_an_answer_lost_on_the_way_back_is_asked_again_and_charges_once(
    store: tuple[Shop, httpx.AsyncClient],
) -> None:
    shop, http = store
    sku = await product(shop, price=1000, on_hand=5)
    cart_id = await open_cart(http, sku)
    lost = await metric(
        "colonnade_payment_provider_calls_total", operation="charge", outcome="unavailable"
    )

    paid = await checkout(http, cart_id, "tok_answerLost")

    assert paid.status_code == 201, paid.text
    assert paid.json()["total"] == {"amount": 1100, "currency": "USD"}
    assert (
        await metric(
            "colonnade_payment_provider_calls_total",
            operation="charge",
            outcome="unavailable",
        )
        == lost + 1
    )
    async with shop.db.reading() as conn:
        charges = (
            await conn.execute(text("SELECT status, captured_amount FROM payments_gateway_charges"))
        ).all()
    assert [tuple(charge) for charge in charges] == [("captured", 1100)]
    assert await payment_statuses(shop) == ["captured"]
    assert await metric("colonnade_payment_circuit_state") == 0
