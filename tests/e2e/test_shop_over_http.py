"""A started shop, as its customers and staff meet it: over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import RunningShop

ADMIN_EMAIL = "owner@demo.example"
ADMIN_PASSWORD = "a long and secret password"


@pytest.fixture(scope="module")
def admin(shop: RunningShop) -> dict[str, str]:
    created = shop.cli(
        "users", "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD
    )
    assert created.returncode == 0, created.stdout + created.stderr
    response = httpx.post(
        shop.base_url + "/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_the_process_reports_itself_live_ready_and_measured(shop: RunningShop) -> None:
    assert httpx.get(shop.base_url + "/health/live").json() == {"status": "live"}
    assert httpx.get(shop.base_url + "/health/ready").json() == {"status": "ready"}
    details = httpx.get(shop.metrics_url + "/health/details").json()
    assert details["checks"] == {"database": "ok", "bus": "ok", "outbox_relay": "ok"}
    metrics = httpx.get(shop.metrics_url + "/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    # The probes just made are counted by their route.
    assert 'route="/health/ready"' in metrics.text
    docs = httpx.get(shop.base_url + "/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert "/store/products" in httpx.get(shop.base_url + "/openapi.json").json()["paths"]


def test_the_demo_shop_sells_in_three_markets_and_languages(shop: RunningShop) -> None:
    us = httpx.get(shop.base_url + "/store/products", params={"market": "US", "limit": 100}).json()
    assert len(us) >= 20
    prices = [v["price"] for p in us for v in p["variants"]]
    assert all(p["currency"] == "USD" and isinstance(p["amount"], int) for p in prices)

    jp = httpx.get(shop.base_url + "/store/products", params={"market": "JP", "limit": 100}).json()
    assert {v["price"]["currency"] for p in jp for v in p["variants"]} == {"JPY"}
    assert any("豆" in p["title"] for p in jp)

    de = httpx.get(
        shop.base_url + "/store/products", params={"market": "DE", "locale": "de-AT", "q": "bohnen"}
    ).json()
    assert de
    assert all("Bohnen" in p["title"] for p in de)
    one = httpx.get(
        shop.base_url + f"/store/products/{de[0]['id']}", params={"market": "DE"}
    ).json()
    assert one["id"] == de[0]["id"]
    assert one["variants"][0]["price"]["currency"] == "EUR"


def test_staff_add_a_product_and_its_stock_and_customers_see_it(
    shop: RunningShop, admin: dict[str, str]
) -> None:
    created = httpx.post(
        shop.base_url + "/admin/products",
        headers=admin,
        json={
            "title": {"en-US": "Flash sale grinder", "de-DE": "Blitzverkauf-Mühle"},
            "variants": [{"sku": "E2E-GRINDER", "prices": [{"amount": 9900, "currency": "USD"}]}],
        },
    )
    assert created.status_code == 201, created.text
    stock = httpx.put(
        shop.base_url + "/admin/inventory/E2E-GRINDER", headers=admin, json={"on_hand": 100}
    )
    assert stock.status_code == 200, stock.text
    assert {k: stock.json()[k] for k in ("sku", "on_hand", "reserved", "available")} == {
        "sku": "E2E-GRINDER",
        "on_hand": 100,
        "reserved": 0,
        "available": 100,
    }
    found = httpx.get(
        shop.base_url + "/store/products", params={"market": "US", "q": "flash grinder"}
    ).json()
    assert [p["title"] for p in found] == ["Flash sale grinder"]
    assert found[0]["variants"][0]["price"] == {"amount": 9900, "currency": "USD"}
    # No explicit EUR price: converted from USD at the demo rate 0.92 and rounded to cents.
    de = httpx.get(
        shop.base_url + "/store/products/" + found[0]["id"], params={"market": "DE"}
    ).json()
    assert de["title"] == "Blitzverkauf-Mühle"
    assert de["variants"][0]["price"] == {"amount": 9108, "currency": "EUR"}


def test_bad_requests_get_precise_problems_and_change_nothing(
    shop: RunningShop, admin: dict[str, str]
) -> None:
    def problem(response: httpx.Response, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == code
        assert body["detail"]
        assert body["status"] == status

    base = shop.base_url
    problem(httpx.get(base + "/store/products", params={"market": "XX"}), 422, "unknown_market")
    problem(
        httpx.get(base + "/store/products/no-such-product", params={"market": "US"}),
        404,
        "product_not_found",
    )
    problem(
        httpx.put(base + "/admin/inventory/ETHIOPIA-YIRGACHEFFE", json={"on_hand": 5}),
        401,
        "unauthorized",
    )
    problem(
        httpx.put(
            base + "/admin/inventory/ETHIOPIA-YIRGACHEFFE", headers=admin, json={"on_hand": -1}
        ),
        422,
        "invalid_quantity",
    )
    problem(
        httpx.put(base + "/admin/inventory/NO-SUCH-SKU", headers=admin, json={"on_hand": 5}),
        404,
        "unknown_sku",
    )
    duplicate = {
        "title": {"en-US": "Copy"},
        "variants": [{"sku": "ETHIOPIA-YIRGACHEFFE", "prices": [{"amount": 1, "currency": "USD"}]}],
    }
    problem(
        httpx.post(base + "/admin/products", headers=admin, json=duplicate), 409, "duplicate_sku"
    )
    bad_money = {
        "title": {"en-US": "Odd"},
        "variants": [{"sku": "ODD-1", "prices": [{"amount": 1, "currency": "ZZZ"}]}],
    }
    problem(
        httpx.post(base + "/admin/products", headers=admin, json=bad_money), 422, "unknown_currency"
    )
    problem(
        httpx.post(
            base + "/auth/token", data={"username": ADMIN_EMAIL, "password": "wrong password!"}
        ),
        401,
        "invalid_credentials",
    )
    stock = httpx.get(base + "/admin/inventory/ETHIOPIA-YIRGACHEFFE", headers=admin).json()
    assert stock["on_hand"] == 120
    assert (
        httpx.get(base + "/store/products", params={"market": "US", "q": "odd copy"}).json() == []
    )
