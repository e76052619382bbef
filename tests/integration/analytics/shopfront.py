"""A shop with its analytics warehouse in a test's own directory, on the test's database and
on a settable clock, and what a test does through its HTTP API: buy, refund, ask insights."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from colonnade.app import Shop
from colonnade.kernel.clock import SettableClock
from colonnade.kernel.events import Envelope
from colonnade.kernel.money import Money
from colonnade.kernel.schema import outbox
from colonnade.kernel.settings import Settings
from tests.integration.storefront import PASSWORD, SECRET, checkout_body, client, product, started

ADDRESS = {"name": "Ada", "line1": "1 Row", "city": "Town", "postal_code": "1", "country": "US"}
START = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)


class Shopfront:
    def __init__(self, shop: Shop, http: httpx.AsyncClient, clock: SettableClock) -> None:
        self.shop = shop
        self.http = http
        self.clock = clock
        self.staff: dict[str, str] = {}
        self.signed_in_at = clock.now()

    async def fresh_staff(self) -> dict[str, str]:
        """The staff member's token, signed in again once the tests moved the clock past it
        (not at every call: logins are rate limited)."""
        if self.clock.now() - self.signed_in_at > timedelta(minutes=10) or not self.staff:
            self.staff = await self.sign_in_staff()
            self.signed_in_at = self.clock.now()
        return self.staff

    async def sign_in_staff(self, email: str = "boss@shop.test") -> dict[str, str]:
        token = await self.http.post("/auth/token", data={"username": email, "password": PASSWORD})
        assert token.status_code == 200, token.text
        return {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def buy(
        self,
        market: str,
        *lines: tuple[str, int],
        token: str = "tok_visa",
        signed_in: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A purchase, as a guest or as the customer `signed_in` names."""
        who = signed_in or {}
        opened = await self.http.post("/store/carts", json={"market": market}, headers=who)
        assert opened.status_code == 201, opened.text
        cart_id = opened.json()["id"]
        for sku, quantity in lines:
            added = await self.http.post(
                f"/store/carts/{cart_id}/lines",
                json={"sku": sku, "quantity": quantity},
                headers=who,
            )
            assert added.status_code == 200, added.text
        body = checkout_body("ada@example.com", ADDRESS)
        body["payment"]["token"] = token
        return await self.http.post(
            f"/store/carts/{cart_id}/checkout",
            json=body,
            headers={"Idempotency-Key": f"key-{uuid.uuid4().hex}", **who},
        )

    async def refund(self, order_id: str, amount: int, currency: str) -> None:
        await self.fresh_staff()
        refunded = await self.http.post(
            f"/admin/orders/{order_id}/refund",
            json={"amount": {"amount": amount, "currency": currency}},
            headers={"Idempotency-Key": f"refund-{uuid.uuid4().hex}", **self.staff},
        )
        assert refunded.status_code == 200, refunded.text

    async def sales(self, start: datetime, end: datetime, **params: str) -> dict[str, Any]:
        await self.settled()
        await self.fresh_staff()
        answer = await self.http.get(
            "/admin/insights/sales",
            params={"from": start.isoformat(), "to": end.isoformat(), **params},
            headers=self.staff,
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def insight(self, route: str, **params: str) -> dict[str, Any]:
        await self.settled()
        await self.fresh_staff()
        answer = await self.http.get(f"/admin/insights/{route}", params=params, headers=self.staff)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def told(self, *prefixes: str) -> list[Envelope]:
        """The events the shop wrote whose type starts with one of `prefixes` ("orders.",
        "cart.CartUpdated"), as the relay publishes them: to deliver them again."""
        async with self.shop.db.reading() as conn:
            rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).all()
        return [
            Envelope(
                event_type=row.event_type,
                payload=row.payload,
                occurred_at=row.occurred_at,
                event_id=row.event_id,
                headers=row.headers,
            )
            for row in rows
            if row.event_type.startswith(prefixes)
        ]

    async def settled(self) -> None:
        """Every event the shop wrote has reached its consumers."""
        for _ in range(400):
            if not await self.shop.relay.pending():
                return
            await asyncio.sleep(0.025)
        raise AssertionError("the outbox did not drain")


@asynccontextmanager
async def shopfront(database_url: str, tmp_path: Path) -> AsyncIterator[Shopfront]:
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        analytics_dir=str(tmp_path / "warehouse"),
        cart_idle_seconds=30 * 86400,
    )
    clock = SettableClock(START)
    async with started(settings, us_tax=Decimal("0.10"), clock=clock) as app, client(app) as http:
        shop: Shop = app.state.shop
        await shop.pricing.set_market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"))
        await shop.identity.create_staff("boss@shop.test", PASSWORD)
        front = Shopfront(shop, http, clock)
        front.staff = await front.sign_in_staff()
        yield front


async def priced(shop: Shop, usd: int, eur: int, on_hand: int = 20) -> str:
    sku = await product(shop, price=usd, on_hand=on_hand)
    await shop.pricing.set_prices(sku, [Money(usd, "USD"), Money(eur, "EUR")])
    return sku


def total(answer: httpx.Response) -> int:
    assert answer.status_code == 201, answer.text
    return int(answer.json()["total"]["amount"])


def cli_env(database_url: str, warehouse: Path) -> dict[str, str]:
    """The environment of a `colonnade` command on the shop's database and warehouse, in a
    wide terminal (table cells stay on one line)."""
    return {
        "COLONNADE_DATABASE_URL": database_url,
        "COLONNADE_SECRET_KEY": SECRET,
        "COLONNADE_ANALYTICS_DIR": str(warehouse),
        "COLUMNS": "250",
    }
