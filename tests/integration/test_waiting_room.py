"""The waiting room over HTTP, on both databases: with at most two checkouts at once and a
payment provider that takes 0.2 s, buyers of a flash sale are queued with tickets, come back
when Retry-After says, and are let in, never more than two at once; every one gets an order or
"sold out", nothing is oversold or charged twice, and a forged or replayed ticket is refused."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import jwt
from prometheus_client.parser import text_string_to_metric_families

from colonnade.app import Shop
from colonnade.kernel.settings import Settings
from tests.conftest import count_rows
from tests.e2e.buyers import checkout_body
from tests.integration.storefront import SECRET, client, product, scrape, started

LIMIT = 2


@dataclass
class Buyer:
    cart_id: str
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The number of the first ticket it was given, if it had to wait.
    number: int | None = None
    admitted_at: float = 0.0
    status: int = 0
    code: str = "ok"
    checkout_id: str = ""


def _queue_figures(metrics: str) -> dict[str, float]:
    """The waiting room's counters (this test process's registry, shared by its shops)."""
    figures = {"waiting": 0.0}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "colonnade_checkout_queue_total":
                figures[sample.labels["outcome"]] = sample.value
            elif sample.name == "colonnade_checkout_queue_wait_seconds_count":
                figures["waits"] = sample.value
            elif sample.name == "colonnade_checkout_queue_waiting":
                figures["waiting"] += sample.value
    return figures


async def _cart(http: httpx.AsyncClient, sku: str) -> str:
    made = await http.post("/store/carts", json={"market": "US"})
    assert made.status_code == 201, made.text
    cart_id: str = made.json()["id"]
    added = await http.post(f"/store/carts/{cart_id}/lines", json={"sku": sku, "quantity": 1})
    assert added.status_code == 200, added.text
    return cart_id


async def _buy(http: httpx.AsyncClient, buyer: Buyer) -> None:
    """Check out; while queued, come back with the ticket when Retry-After says."""
    ticket = None
    while True:
        headers = {"Idempotency-Key": buyer.key}
        if ticket is not None:
            headers["Queue-Ticket"] = ticket
        answer = await http.post(
            f"/store/carts/{buyer.cart_id}/checkout", json=checkout_body(), headers=headers
        )
        body = answer.json()
        if answer.status_code == 503 and body["code"] == "checkout_queued":
            ticket = body["ticket"]
            if buyer.number is None:
                claims = jwt.decode(ticket, options={"verify_signature": False})
                buyer.number = int(claims["n"])
            assert int(answer.headers["Retry-After"]) == body["retry_after"] >= 1
            # Sooner than asked, so the test is quick; a holder looking early only waits.
            await asyncio.sleep(body["retry_after"] / 10)
            continue
        buyer.admitted_at = time.monotonic()
        buyer.status, buyer.code = answer.status_code, body.get("code", "ok")
        buyer.checkout_id = body["checkout_id"]
        return


async def test_a_queued_flash_sale_lets_ticket_holders_in_and_sells_exactly_the_stock(
    database_url: str,
) -> None:
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        checkout_concurrency=LIMIT,
        test_gateway_latency_seconds=0.2,
    )
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        shop: Shop = app.state.shop
        assert shop.waiting_room is not None
        stock, buyers = 8, 24
        sku = await product(shop, on_hand=stock)
        queue = [Buyer(await _cart(http, sku)) for _ in range(buyers)]
        most = 0

        async def watch() -> None:
            nonlocal most
            while True:
                most = max(most, shop.waiting_room.in_flight if shop.waiting_room else 0)
                await asyncio.sleep(0.005)

        before = _queue_figures(await scrape())
        watching = asyncio.create_task(watch())
        await asyncio.gather(*(_buy(http, b) for b in queue))
        watching.cancel()
        after = _queue_figures(await scrape())

        assert Counter(b.status for b in queue) == {201: stock, 409: buyers - stock}
        assert {b.code for b in queue if b.status == 409} == {"out_of_stock"}
        assert most == LIMIT
        waited = sorted((b for b in queue if b.number is not None), key=lambda b: b.admitted_at)
        assert len(waited) >= buyers - LIMIT
        level = await shop.inventory.stock(sku)
        assert (level.sold, level.reserved) == (stock, 0)
        # Each paid buyer charged once; nobody else charged at all.
        paid = [
            await shop.payments.payment_for_checkout(b.checkout_id)
            for b in queue
            if b.status == 201
        ]
        assert [p.status.value for p in paid] == ["captured"] * stock
        assert await count_rows(shop.db, "payments_payments") == stock
        # Operators see it: every ticket given, every holder let in with how long it waited,
        # and nobody left waiting.
        moved = {name: after[name] - before.get(name, 0.0) for name in after}
        assert moved["ticketed"] == moved["admitted"] == moved["waits"] == len(waited)
        assert after["waiting"] == 0


async def test_a_forged_or_replayed_ticket_is_refused_and_a_malformed_request_spends_none(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url, secret_key=SECRET, checkout_concurrency=1)
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        shop: Shop = app.state.shop
        assert shop.waiting_room is not None
        sku = await product(shop, on_hand=5)
        holder, other = await _cart(http, sku), await _cart(http, sku)
        first = await shop.waiting_room.enter("someone-else", None)
        queued = await http.post(
            f"/store/carts/{holder}/checkout",
            json=checkout_body(),
            headers={"Idempotency-Key": "holder-key-1"},
        )
        assert queued.status_code == 503, queued.text
        ticket = queued.json()["ticket"]

        forged = await http.post(
            f"/store/carts/{holder}/checkout",
            json=checkout_body(),
            headers={"Idempotency-Key": "holder-key-1", "Queue-Ticket": ticket[:-4] + "AAAA"},
        )
        assert (forged.status_code, forged.json()["code"]) == (422, "queue_ticket_invalid")
        borrowed = await http.post(
            f"/store/carts/{other}/checkout",
            json=checkout_body(),
            headers={"Idempotency-Key": "other-key-1", "Queue-Ticket": ticket},
        )
        assert (borrowed.status_code, borrowed.json()["code"]) == (422, "queue_ticket_invalid")

        await first.leave()
        malformed = await http.post(
            f"/store/carts/{holder}/checkout",
            json={"email": "buyer@example.com"},
            headers={"Idempotency-Key": "holder-key-1", "Queue-Ticket": ticket},
        )
        assert (malformed.status_code, malformed.json()["code"]) == (422, "invalid_input")
        # Refused before its checkout began: the ticket is still good, and its place free.
        admitted = await http.post(
            f"/store/carts/{holder}/checkout",
            json=checkout_body(),
            headers={"Idempotency-Key": "holder-key-1", "Queue-Ticket": ticket},
        )
        assert admitted.status_code == 201, admitted.text
        replayed = await http.post(
            f"/store/carts/{holder}/checkout",
            json=checkout_body(),
            headers={"Idempotency-Key": "holder-key-1", "Queue-Ticket": ticket},
        )
        assert (replayed.status_code, replayed.json()["code"]) == (409, "queue_ticket_used")
        # The retry without a ticket is let in (nobody waits) and gets the first answer.
        again = await http.post(
            f"/store/carts/{holder}/checkout",
            json=checkout_body(),
            headers={"Idempotency-Key": "holder-key-1"},
        )
        assert again.json() == admitted.json()
        assert (await shop.inventory.stock(sku)).sold == 1
