"""Pricing's routes over HTTP: markets for shoppers, prices and exchange rates for staff."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.db import Database
from colonnade.kernel.errors import Unauthorized
from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.modules.pricing.api import router
from colonnade.modules.pricing.service import PricingService
from colonnade.web import problems
from tests.conftest import count_rows

TOKENS = {
    "admin": frozenset({"pricing:read", "pricing:write"}),
    "reader": frozenset({"pricing:read"}),
}
GERMANY = {
    "name": "Deutschland",
    "currency": "EUR",
    "locale": "de-DE",
    "tax_inclusive": True,
    "tax_rate": "0.19",
    "time_zone": "Europe/Berlin",
}


async def authenticate(token: str) -> Principal:
    if token not in TOKENS:
        raise Unauthorized("unknown token")
    return Principal(subject=token, kind="staff", scopes=TOKENS[token])


@pytest.fixture
def pricing(db: Database) -> PricingService:
    return PricingService(db, base_currency="USD")


@pytest.fixture
async def client(pricing: PricingService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)
    app.state.authenticate = authenticate
    app.include_router(router(pricing))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://shop.test",
        headers={"Authorization": "Bearer admin"},
    ) as http:
        yield http


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["detail"]
    return body


async def nothing_written(db: Database) -> None:
    for table in ("pricing_markets", "pricing_prices", "pricing_fx_rates", "kernel_outbox"):
        assert await count_rows(db, table) == 0, table


# --- markets ------------------------------------------------------------------------------


async def test_staff_open_a_market_and_shoppers_see_it(client: httpx.AsyncClient) -> None:
    response = await client.put("/admin/markets/DE", json=GERMANY)
    assert response.status_code == 200
    assert response.json() == {"code": "DE", **GERMANY}

    listed = await client.get("/store/markets", headers={"Authorization": ""})
    assert listed.status_code == 200
    assert listed.json() == [{"code": "DE", **GERMANY}]


async def test_no_markets_is_an_empty_list(client: httpx.AsyncClient) -> None:
    assert (await client.get("/store/markets")).json() == []


@pytest.mark.parametrize(
    ("change", "code", "detail_mentions"),
    [
        ({"currency": "ZZZ"}, "unknown_currency", "'ZZZ' is not an ISO 4217 currency code"),
        ({"locale": "xx-YY"}, "unknown_locale", "'xx-YY'"),
        ({"locale": "en.UTF-8"}, "unknown_locale", "'en.UTF-8'"),
        ({"tax_rate": "0.1234567"}, "invalid_tax_rate", "0.1234567"),
        ({"tax_rate": "1.5"}, "invalid_tax_rate", "1.5"),
        ({"tax_rate": 0.19}, "invalid_input", "tax_rate"),
        ({"tax_inclusive": "yes"}, "invalid_input", "tax_inclusive"),
        ({"currency": "eur"}, "unknown_currency", "'eur'"),
        ({"colour": "blue"}, "invalid_input", "colour"),
    ],
)
async def test_a_bad_market_is_refused_precisely_and_changes_nothing(
    client: httpx.AsyncClient,
    db: Database,
    change: dict[str, Any],
    code: str,
    detail_mentions: str,
) -> None:
    response = await client.put("/admin/markets/DE", json={**GERMANY, **change})
    body = assert_problem(response, 422, code)
    assert detail_mentions in body["detail"]
    await nothing_written(db)


async def test_a_market_code_must_be_uppercase_letters(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.put("/admin/markets/de", json=GERMANY)
    assert "'de'" in assert_problem(response, 422, "invalid_market_code")["detail"]
    await nothing_written(db)


async def test_changing_markets_needs_the_write_scope(
    client: httpx.AsyncClient, db: Database
) -> None:
    response = await client.put(
        "/admin/markets/DE", json=GERMANY, headers={"Authorization": "Bearer reader"}
    )
    assert_problem(response, 403, "forbidden")
    response = await client.put("/admin/markets/DE", json=GERMANY, headers={"Authorization": ""})
    assert_problem(response, 401, "unauthorized")
    await nothing_written(db)


# --- prices -------------------------------------------------------------------------------


async def test_staff_set_prices_and_read_them_back(client: httpx.AsyncClient) -> None:
    prices = [{"amount": 1999, "currency": "USD"}, {"amount": 1799, "currency": "EUR"}]
    response = await client.put("/admin/prices/MUG-RED", json={"prices": prices})
    assert response.status_code == 200
    by_currency = [{"amount": 1799, "currency": "EUR"}, {"amount": 1999, "currency": "USD"}]
    assert response.json() == {"sku": "MUG-RED", "prices": by_currency}

    response = await client.get("/admin/prices/MUG-RED", headers={"Authorization": "Bearer reader"})
    assert response.status_code == 200
    assert response.json() == {"sku": "MUG-RED", "prices": by_currency}


async def test_an_amount_may_come_as_a_json_number_with_a_zero_fraction(
    client: httpx.AsyncClient,
) -> None:
    # JSON Schema's integer takes 1999.0, so the document promises it is accepted.
    response = await client.put(
        "/admin/prices/MUG-RED", json={"prices": [{"amount": 1999.0, "currency": "USD"}]}
    )
    assert response.status_code == 200
    assert response.json()["prices"] == [{"amount": 1999, "currency": "USD"}]


async def test_a_sku_without_prices_reads_as_an_empty_list(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/prices/NOTHING")
    assert response.json() == {"sku": "NOTHING", "prices": []}


@pytest.mark.parametrize(
    ("price", "status", "code", "detail_mentions"),
    [
        ({"amount": 1999, "currency": "ZZZ"}, 422, "unknown_currency", "'ZZZ'"),
        ({"amount": 19.99, "currency": "USD"}, 422, "invalid_input", "prices.1.amount"),
        ({"amount": "1999", "currency": "USD"}, 422, "invalid_input", "prices.1.amount"),
        ({"amount": True, "currency": "USD"}, 422, "invalid_input", "prices.1.amount"),
        ({"amount": -1, "currency": "USD"}, 422, "negative_price", "-1 USD"),
        ({"amount": 10**12, "currency": "USD"}, 422, "invalid_input", "prices.1.amount"),
        ({"amount": 1999}, 422, "invalid_input", "prices.1.currency"),
    ],
)
async def test_a_bad_price_is_refused_precisely_and_changes_nothing(
    client: httpx.AsyncClient,
    db: Database,
    pricing: PricingService,
    price: dict[str, Any],
    status: int,
    code: str,
    detail_mentions: str,
) -> None:
    response = await client.put(
        "/admin/prices/MUG-RED", json={"prices": [{"amount": 500, "currency": "EUR"}, price]}
    )
    body = assert_problem(response, status, code)
    assert detail_mentions in body["detail"]
    assert await pricing.prices("MUG-RED") == []
    await nothing_written(db)


async def test_two_prices_in_one_currency_are_refused(
    client: httpx.AsyncClient, db: Database, pricing: PricingService
) -> None:
    await pricing.set_prices("MUG-RED", [Money(1999, "USD")])
    response = await client.put(
        "/admin/prices/MUG-RED",
        json={"prices": [{"amount": 1, "currency": "USD"}, {"amount": 2, "currency": "USD"}]},
    )
    assert "USD" in assert_problem(response, 422, "duplicate_currency")["detail"]
    assert await pricing.prices("MUG-RED") == [Money(1999, "USD")]
    assert await count_rows(db, "kernel_outbox") == 1  # only the first, accepted change


async def test_reading_prices_needs_the_read_scope(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/prices/MUG-RED", headers={"Authorization": "Bearer x"})
    assert_problem(response, 401, "unauthorized")


# --- exchange rates -----------------------------------------------------------------------


async def test_staff_set_an_exchange_rate_and_it_prices_the_market(
    client: httpx.AsyncClient, pricing: PricingService
) -> None:
    await client.put("/admin/markets/DE", json=GERMANY)
    await client.put("/admin/prices/TEE", json={"prices": [{"amount": 1999, "currency": "USD"}]})

    response = await client.put("/admin/fx-rates/USD/EUR", json={"rate": "0.92"})
    assert response.status_code == 200
    assert response.json() == {"base": "USD", "quote": "EUR", "rate": "0.92"}
    assert await pricing.prices_for(["TEE"], "DE") == {"TEE": Money(1839, "EUR")}


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/admin/fx-rates/USD/EUR", {"rate": "0"}, "invalid_fx_rate"),
        ("/admin/fx-rates/USD/EUR", {"rate": 0.92}, "invalid_input"),
        ("/admin/fx-rates/USD/EUR", {"rate": "-0.92"}, "invalid_input"),
        ("/admin/fx-rates/USD/ZZZ", {"rate": "0.92"}, "unknown_currency"),
        ("/admin/fx-rates/USD/USD", {"rate": "1"}, "invalid_fx_rate"),
    ],
)
async def test_a_bad_exchange_rate_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, path: str, body: dict[str, Any], code: str
) -> None:
    assert_problem(await client.put(path, json=body), 422, code)
    await nothing_written(db)


async def test_an_unknown_market_is_a_problem_naming_the_known_ones(
    client: httpx.AsyncClient, db: Database
) -> None:
    await client.put("/admin/markets/DE", json=GERMANY)
    await client.put("/admin/markets/US", json={**GERMANY, "name": "USA", "currency": "USD"})

    response = await client.get("/store/markets/FR", headers={"Authorization": ""})
    body = assert_problem(response, 422, "unknown_market")
    assert body["detail"] == "there is no market with the code 'FR' (known markets: DE, US)"
    assert body["known_markets"] == ["DE", "US"]
    assert await count_rows(db, "pricing_markets") == 2

    response = await client.get("/store/markets/DE", headers={"Authorization": ""})
    assert response.json() == {"code": "DE", **GERMANY}
