"""Customers as the tests and the benchmark see them: HTTP calls against a started shop."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

ADDRESS = {
    "name": "Ada Buyer",
    "line1": "1 Colonnade Row",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


def checkout_body(token: str = "tok_visa", email: str = "buyer@example.com") -> dict[str, Any]:
    return {
        "email": email,
        "shipping_address": ADDRESS,
        "payment": {"method": "card", "token": token},
    }


@dataclass
class Purchase:
    status: int
    body: dict[str, Any]
    key: str


@dataclass
class Tally:
    purchases: list[Purchase] = field(default_factory=list)

    @property
    def statuses(self) -> Counter[int]:
        return Counter(p.status for p in self.purchases)

    @property
    def codes(self) -> Counter[str]:
        return Counter(p.body.get("code", "ok") for p in self.purchases)


async def buy(
    session: aiohttp.ClientSession,
    base_url: str,
    sku: str,
    *,
    market: str = "US",
    quantity: int = 1,
    token: str = "tok_visa",
    key: str | None = None,
) -> Purchase:
    """Create a cart, add one line, check out: one guest purchase."""
    async with session.post(f"{base_url}/store/carts", json={"market": market}) as response:
        assert response.status == 201, await response.text()
        cart = await response.json()
    async with session.post(
        f"{base_url}/store/carts/{cart['id']}/lines", json={"sku": sku, "quantity": quantity}
    ) as response:
        assert response.status == 200, await response.text()
    key = key or uuid.uuid4().hex
    async with session.post(
        f"{base_url}/store/carts/{cart['id']}/checkout",
        json=checkout_body(token),
        headers={"Idempotency-Key": key},
    ) as response:
        return Purchase(response.status, await response.json(content_type=None), key)


async def flash_sale(base_url: str, sku: str, buyers: int, *, connections: int = 100) -> Tally:
    """`buyers` guests try to buy one unit of `sku` at the same moment."""
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(*(buy(session, base_url, sku) for _ in range(buyers)))
    return Tally(list(results))
