"""The rehearsal's staff member: what it asks the shop through the admin API, as an operator
would. It reads the catalog a market shows, stocks the shelves the rehearsal will empty,
opens the flash sale, reads the shop's own mix of visits, and afterwards audits the orders
and the flash SKU's stock.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from colonnade.rehearsal.profile import Mix

# The shop's own mix is read from this much of its recent past.
MIX_DAYS = 28
PRODUCT_PAGE = "GET /store/products/{product_id}"
# Orders the audit asks for at once.
AUDIT_CALLS = 16


class StaffRefused(RuntimeError):
    """The shop refused what the rehearsal's staff member asked (the message says what)."""


@dataclass(frozen=True)
class Product:
    id: str
    sku: str


@dataclass(frozen=True)
class StockLevel:
    on_hand: int
    reserved: int
    sold: int
    available: int
    warehouse: str | None  # where more units go (the first of the SKU's warehouses)
    warehouse_on_hand: int


class Staff:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}

    @classmethod
    async def sign_in(
        cls, session: aiohttp.ClientSession, base_url: str, email: str, password: str
    ) -> Staff:
        async with session.post(
            base_url + "/auth/token", data={"username": email, "password": password}
        ) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise StaffRefused(f"staff sign-in refused ({response.status}): {body}")
        return cls(session, base_url, body["access_token"])

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self._session.request(
            method, self._base_url + path, headers=self._headers, **kwargs
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 300:
                raise StaffRefused(f"{method} {path} -> {response.status}: {body}")
            return body

    async def catalog(self, market: str) -> list[Product]:
        """Every product the market lists, with its first SKU."""
        found: list[Product] = []
        while True:
            page = await self.call(
                "GET",
                "/store/products",
                params={"market": market, "limit": 100, "offset": len(found)},
            )
            found += [Product(p["id"], p["variants"][0]["sku"]) for p in page if p["variants"]]
            if len(page) < 100:
                return found

    async def stock(self, sku: str) -> StockLevel:
        level = await self.call("GET", f"/admin/inventory/{sku}")
        first = level["warehouses"][0] if level["warehouses"] else None
        return StockLevel(
            level["on_hand"],
            level["reserved"],
            level["sold"],
            level["available"],
            first["code"] if first else None,
            first["on_hand"] if first else 0,
        )

    async def make_available(self, sku: str, units: int) -> StockLevel:
        """At least `units` available now (more on hand where fewer are); the level before."""
        level = await self.stock(sku)
        if level.available < units:
            body: dict[str, Any] = {"on_hand": level.warehouse_on_hand + units - level.available}
            if level.warehouse is not None:
                body["warehouse"] = level.warehouse
            await self.call("PUT", f"/admin/inventory/{sku}", json=body)
        return level

    async def open_flash_sale(self, sku: str, units: int) -> StockLevel:
        """Exactly `units` available from now; the level before."""
        level = await self.stock(sku)
        body: dict[str, Any] = {"on_hand": level.warehouse_on_hand + units - level.available}
        if level.warehouse is not None:
            body["warehouse"] = level.warehouse
        await self.call("PUT", f"/admin/inventory/{sku}", json=body)
        return level

    async def observed_mix(self, market: str) -> Mix | None:
        """The shop's own mix of visits over the last MIX_DAYS (analytics' funnel and routes),
        or None when it has too little to go by."""
        now = datetime.now(UTC)
        window = {
            "from": (now - timedelta(days=MIX_DAYS)).isoformat(),
            "to": (now + timedelta(minutes=1)).isoformat(),
        }
        funnel = await self.call(
            "GET", "/admin/insights/funnel", params={**window, "market": market}
        )
        routes = await self.call("GET", "/admin/insights/routes", params={**window, "limit": 100})
        carts = sum(m["carts"] for m in funnel["markets"])
        checkouts = sum(m["checkouts"] for m in funnel["markets"])
        views = sum(r["requests"] for r in routes["routes"] if r["route"] == PRODUCT_PAGE)
        return Mix.observed(carts, checkouts, views)

    async def orders_placed_with(self, email: str) -> int:
        page = await self.call("GET", "/admin/orders", params={"email": email, "limit": 1})
        return int(page["total"])

    async def order_statuses(self, ids: Iterable[str]) -> dict[str, str | None]:
        """Each order's status, None for one the shop does not hold. One by one (a few at a
        time), not page by page: orders placed in the same batch share their moment, and
        pages of a list ordered by it may overlap and skip."""
        asking = asyncio.Semaphore(AUDIT_CALLS)

        async def status(order_id: str) -> str | None:
            async with (
                asking,
                self._session.get(
                    f"{self._base_url}/admin/orders/{order_id}", headers=self._headers
                ) as response,
            ):
                body = await response.json(content_type=None)
                if response.status == 404:
                    return None
                if response.status >= 300:
                    raise StaffRefused(f"GET /admin/orders/{order_id} -> {response.status}: {body}")
                return str(body["status"])

        ids = list(ids)
        return dict(zip(ids, await asyncio.gather(*(status(i) for i in ids)), strict=True))


def units_to_stock(expected_purchases: float, skus: int) -> int:
    """Units each SKU should have available so that buyers spread at random over `skus` never
    find one sold out: three times its share of the purchases expected, at least 100."""
    return max(100, math.ceil(3 * expected_purchases / max(skus, 1)))
