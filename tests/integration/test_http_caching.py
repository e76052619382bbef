"""What a CDN or a browser may keep, route by route from the OpenAPI: the public catalog for a
few seconds with validators and purge keys, everything else never.

A new route is private until someone puts it on the list below on purpose."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.money import Money
from colonnade.kernel.settings import Settings
from colonnade.modules.catalog.service import NewProduct, NewVariant
from tests.integration.storefront import client, started

# The same answer for every shopper, so a CDN may share it.
PUBLIC_CATALOG = {
    ("GET", "/store/products"),
    ("GET", "/store/products/{product_id}"),
    ("GET", "/store/markets"),
    ("GET", "/store/markets/{code}"),
}
SECRET = "http-caching-tests-" + "s" * 32
PASSWORD = "a long and secret password"
SOME_ID = "0190f3c8-0000-7000-8000-000000000000"


def operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(database_url=database_url, secret_key=SECRET)
    async with started(settings, us_tax=Decimal("0.1")) as app:
        yield app


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        yield http


async def test_public_catalog_answers_carry_validators_freshness_and_purge_keys(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    shop = app.state.shop
    product = await shop.catalog.create_product(
        NewProduct(
            titles={"en-US": "Kenya beans"},
            default_locale="en-US",
            variants=[NewVariant(sku="KENYA-1")],
        )
    )
    await shop.pricing.set_prices("KENYA-1", [Money(1000, "USD")])
    ids = {"product_id": product.id, "code": "US"}
    checked = []
    for method, path in operations(app.openapi()):
        if (method, path) not in PUBLIC_CATALOG:
            continue
        url = re.sub(r"\{([^}]+)\}", lambda m: ids[m.group(1)], path)
        response = await http.get(url, params={"market": "US"} if "products" in path else {})
        assert response.status_code == 200, (path, response.text)
        control = response.headers["cache-control"]
        assert re.fullmatch(r"public, max-age=\d+, stale-while-revalidate=\d+", control), path
        assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"]), path
        assert response.headers["vary"] == "Accept-Encoding"
        keys = response.headers["surrogate-key"].split()
        assert "market-US" in keys, path
        if "products" in path:
            assert f"product-{product.id}" in keys, path
        revalidated = await http.get(
            str(response.url), headers={"If-None-Match": response.headers["etag"]}
        )
        assert revalidated.status_code == 304, path
        checked.append(path)

    assert len(checked) == len(PUBLIC_CATALOG)


async def test_every_other_answer_is_private_and_never_stored(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    await app.state.shop.identity.create_staff("boss@shop.test", PASSWORD)
    token = await http.post(
        "/auth/token", data={"username": "boss@shop.test", "password": PASSWORD}
    )
    staff = {"Authorization": f"Bearer {token.json()['access_token']}"}
    wrong = []
    checked = 0
    for method, path in operations(app.openapi()):
        url = re.sub(r"\{[^}]+\}", SOME_ID, path)
        if (method, path) in PUBLIC_CATALOG:
            # Their refusals are private too: a CDN must not keep a problem.
            refused = await http.get(url, params={"market": "XX"})
            answers = [refused] if refused.status_code >= 400 else []
        else:
            answers = [
                await http.request(method, url, headers=headers, json={}) for headers in ({}, staff)
            ]
        for response in answers:
            checked += 1
            control = response.headers.get("cache-control")
            if control != "private, no-store" or "etag" in response.headers:
                wrong.append(f"{method} {path} {response.status_code}: {control}")

    assert checked > 80
    assert not wrong, "\n".join(wrong)
