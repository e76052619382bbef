"""A `colonnade serve` process can serve one module group: its modules' routes (and
consumers), while the rest of the shop is served by other processes on the same database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from colonnade.app import create_app
from colonnade.kernel.settings import Settings
from tests.integration.storefront import SECRET, client, product, started


async def test_a_browsing_group_serves_the_catalog_and_prices_and_nothing_else(
    database_url: str,
) -> None:
    # A loaded test machine may answer the probe's first statement slower than production's 1 s.
    settings = Settings(
        database_url=database_url,
        secret_key=SECRET,
        serve_modules="catalog, pricing",
        readiness_timeout_seconds=10,
    )
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        sku = await product(app.state.shop)

        listing = await http.get("/store/products", params={"market": "US"})
        assert listing.status_code == 200, listing.text
        assert sku in listing.text
        assert (await http.get("/store/markets")).status_code == 200
        assert (await http.get("/health/ready")).status_code == 200

        cart = await http.post("/store/carts", json={"market": "US"})
        assert cart.status_code == 404, "carts are another group's"
        token = await http.post("/auth/token", data={"username": "a", "password": "b"})
        assert token.status_code == 404, "signing in is another group's"
        paths = set((await http.get("/openapi.json")).json()["paths"])
        assert "/store/products" in paths
        assert not any(
            path.startswith(("/store/carts", "/auth/", "/admin/orders")) for path in paths
        )


async def test_every_module_is_served_when_none_is_named(database_url: str) -> None:
    settings = Settings(database_url=database_url, secret_key=SECRET)
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        assert (await http.post("/store/carts", json={"market": "US"})).status_code == 201
        assert (await http.get("/store/products", params={"market": "US"})).status_code == 200


def test_a_group_names_only_modules_the_shop_has() -> None:
    with pytest.raises(ValueError, match="no such modules: shipping"):
        create_app(Settings(serve_modules="catalog,shipping"))
