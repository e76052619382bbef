"""A staff member of a started shop, for setting up products and auditing outcomes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import RunningShop

EMAIL = "staff@demo.example"
PASSWORD = "a long and secret password"


@dataclass
class Staff:
    base_url: str
    headers: dict[str, str]

    @classmethod
    def sign_in(cls, shop: RunningShop) -> Staff:
        shop.cli("users", "create-admin", "--email", EMAIL, "--password", PASSWORD)
        response = httpx.post(
            shop.base_url + "/auth/token", data={"username": EMAIL, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return cls(shop.base_url, {"Authorization": f"Bearer {response.json()['access_token']}"})

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method, self.base_url + path, headers=self.headers, timeout=30, **kwargs
        )
        assert response.status_code < 300, response.text
        return response.json()

    def new_product(
        self,
        *,
        price_cents: int,
        on_hand: int,
        category: str | None = None,
        stockroom: Staff | None = None,
    ) -> str:
        """A product with one priced SKU and its stock (set through `stockroom` when another
        process serves inventory)."""
        sku = f"TEST-{uuid.uuid4().hex[:10].upper()}"
        self.call(
            "POST",
            "/admin/products",
            json={
                "title": {"en-US": f"Test product {sku}"},
                "variants": [{"sku": sku, "prices": [{"amount": price_cents, "currency": "USD"}]}],
                "category": category,
            },
        )
        (stockroom or self).call("PUT", f"/admin/inventory/{sku}", json={"on_hand": on_hand})
        return sku

    def stock(self, sku: str) -> dict[str, Any]:
        return self.call("GET", f"/admin/inventory/{sku}")

    def ledger(self, sku: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/admin/inventory/{sku}/ledger", params={"limit": 1000})["entries"]

    def orders(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", "/admin/orders", params={"limit": 100, "offset": len(found)})
            found += page["items"]
            if len(found) >= page["total"] or not page["items"]:
                return found

    def orders_for(self, sku: str) -> list[dict[str, Any]]:
        return [o for o in self.orders() if any(line["sku"] == sku for line in o["lines"])]

    def payment_of(self, order_id: str) -> dict[str, Any]:
        order = self.call("GET", f"/admin/orders/{order_id}")
        return self.call("GET", f"/admin/payments/{order['payment_id']}")
