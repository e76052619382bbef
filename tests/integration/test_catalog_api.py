"""The catalog over HTTP: the store's priced listings and the admin's product editing.

Pricing is a small in-test price book here (a dict); the real pricing module is wired in by
the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from colonnade.kernel.changes import Changes
from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import InvalidInput, Unauthorized
from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.modules.catalog import api
from colonnade.modules.catalog.pages import StorePages
from colonnade.modules.catalog.service import CatalogService
from colonnade.modules.catalog.warming import SaleWarming
from colonnade.modules.pricing.service import Sale, SaleNotFound, ShelfPrice
from colonnade.web import problems
from tests.conftest import count_rows

ADMIN = {"Authorization": "Bearer admin-token"}
CLERK = {"Authorization": "Bearer clerk-token"}


@dataclass(frozen=True)
class Market:
    code: str
    currency: str
    locale: str


class UnknownMarket(InvalidInput):
    code = "unknown_market"


class DictPriceBook:
    """Prices per SKU, one per currency; a market shows the price in its own currency."""

    def __init__(self) -> None:
        self.markets = {
            "US": Market("US", "USD", "en-US"),
            "DE": Market("DE", "EUR", "de-DE"),
        }
        self.price_lists: dict[str, list[Money]] = {}

    async def market(self, code: str) -> Market:
        if code not in self.markets:
            raise UnknownMarket(f"no market has the code '{code}'", market=code)
        return self.markets[code]

    async def shelf_prices(
        self, skus: list[str], market_code: str, at: datetime | None = None
    ) -> tuple[dict[str, ShelfPrice], datetime | None]:
        """Prices without sales: none runs here, and none will start (none is made here)."""
        currency = self.markets[market_code].currency
        found = {
            sku: ShelfPrice(price, None)
            for sku in skus
            for price in self.price_lists.get(sku, [])
            if price.currency == currency
        }
        return found, None

    async def set_prices(self, sku: str, prices: list[Money]) -> None:
        self.price_lists[sku] = list(prices)

    async def prices(self, sku: str) -> list[Money]:
        return self.price_lists.get(sku, [])

    async def sale(self, sale_id: str) -> Sale:
        raise SaleNotFound(sale_id)

    async def sales_starting(self, after: datetime, until: datetime) -> list[Sale]:
        return []


class DictStock:
    """Units available per SKU; none for a SKU never stocked."""

    def __init__(self) -> None:
        self.available: dict[str, int] = {}

    async def __call__(self, skus: list[str]) -> dict[str, int]:
        return {sku: self.available.get(sku, 0) for sku in skus}


async def authenticate(token: str) -> Principal:
    if token == "admin-token":
        return Principal("staff-1", "staff", frozenset({"catalog:write"}))
    if token == "clerk-token":
        return Principal("staff-2", "staff", frozenset({"inventory:write"}))
    raise Unauthorized("the token is not valid")


@pytest.fixture
def changes(db: Database) -> Changes:
    return Changes(db)


@pytest.fixture
def catalog(db: Database, changes: Changes) -> CatalogService:
    return CatalogService(
        db, clock=SettableClock(datetime(2025, 11, 28, tzinfo=UTC)), changes=changes
    )


@pytest.fixture
def pricing() -> DictPriceBook:
    return DictPriceBook()


@pytest.fixture
def stock() -> DictStock:
    return DictStock()


@pytest.fixture
def client(
    catalog: CatalogService, pricing: DictPriceBook, stock: DictStock, changes: Changes
) -> httpx.AsyncClient:
    app = FastAPI()
    problems.install(app)
    app.state.authenticate = authenticate
    pages = StorePages(catalog, pricing, stock)
    pages.listen(changes)
    warming = SaleWarming(
        pages,
        catalog,
        pricing,
        lead=timedelta(minutes=5),
        clock=SettableClock(datetime(2025, 11, 28, tzinfo=UTC)),
    )
    app.include_router(api.router(catalog, pricing, pages, warming))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop")


def grinder(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": {"en-US": "Flash sale grinder", "de-DE": "Blitzverkauf-Mühle"},
        "description": {"en-US": "Steel burrs."},
        "variants": [
            {
                "sku": "GRINDER-1",
                "attributes": {"colour": "black"},
                "prices": [
                    {"amount": 9900, "currency": "USD"},
                    {"amount": 8900, "currency": "EUR"},
                ],
            },
            {"sku": "GRINDER-2", "attributes": {"colour": "white"}},
        ],
    }
    body.update(changes)
    return body


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["detail"]
    return problem


async def nothing_written(db: Database, pricing: DictPriceBook) -> None:
    assert await count_rows(db, "catalog_products") == 0
    assert await count_rows(db, "catalog_variants") == 0
    assert pricing.price_lists == {}


# --- the happy path -----------------------------------------------------------------------


async def test_staff_add_a_product_and_shoppers_see_it_localized_and_priced(
    client: httpx.AsyncClient, pricing: DictPriceBook
) -> None:
    created = await client.post("/admin/products", headers=ADMIN, json=grinder())
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["title"] == {"de-DE": "Blitzverkauf-Mühle", "en-US": "Flash sale grinder"}
    assert product["default_locale"] == "en-US"
    assert product["status"] == "published"
    assert product["variants"] == [
        {
            "sku": "GRINDER-1",
            "attributes": {"colour": "black"},
            "prices": [{"amount": 9900, "currency": "USD"}, {"amount": 8900, "currency": "EUR"}],
        },
        {"sku": "GRINDER-2", "attributes": {"colour": "white"}, "prices": []},
    ]
    assert pricing.price_lists == {"GRINDER-1": [Money(9900, "USD"), Money(8900, "EUR")]}

    us = (await client.get("/store/products", params={"market": "US"})).json()
    assert [(p["id"], p["title"], p["locale"]) for p in us] == [
        (product["id"], "Flash sale grinder", "en-US")
    ]
    assert [v["price"] for v in us[0]["variants"]] == [
        {"amount": 9900, "currency": "USD"},
        None,
    ]

    de = await client.get(f"/store/products/{product['id']}", params={"market": "DE"})
    assert de.status_code == 200
    assert de.json()["title"] == "Blitzverkauf-Mühle"
    assert de.json()["variants"][0]["price"] == {"amount": 8900, "currency": "EUR"}

    austrian = await client.get(
        "/store/products", params={"market": "US", "locale": "de-at", "q": "mühle"}
    )
    assert [(p["title"], p["locale"]) for p in austrian.json()] == [("Blitzverkauf-Mühle", "de-DE")]


async def test_the_default_locale_may_be_named_and_products_start_as_drafts(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        "/admin/products",
        headers=ADMIN,
        json=grinder(default_locale="de-DE", status="draft"),
    )
    assert created.status_code == 201, created.text
    assert created.json()["default_locale"] == "de-DE"
    assert (await client.get("/store/products", params={"market": "US"})).json() == []
    assert_problem(
        await client.get(f"/store/products/{created.json()['id']}", params={"market": "US"}),
        404,
        "product_not_found",
    )


async def test_staff_put_categories_and_shoppers_browse_them(client: httpx.AsyncClient) -> None:
    drinks = await client.put(
        "/admin/categories/drinks", headers=ADMIN, json={"names": {"en-US": "Drinks"}}
    )
    assert drinks.status_code == 200
    coffee = await client.put(
        "/admin/categories/coffee",
        headers=ADMIN,
        json={"names": {"en-US": "Coffee", "de-de": "Kaffee"}, "parent": "drinks"},
    )
    assert coffee.json() == {
        "slug": "coffee",
        "names": {"en-US": "Coffee", "de-DE": "Kaffee"},
        "parent": "drinks",
    }
    await client.post("/admin/products", headers=ADMIN, json=grinder(category="coffee"))
    listed = await client.get("/store/products", params={"market": "US", "category": "drinks"})
    assert [p["category"] for p in listed.json()] == ["coffee"]
    assert_problem(
        await client.get("/store/products", params={"market": "US", "category": "garden"}),
        404,
        "category_not_found",
    )


@pytest.mark.parametrize(
    "q", ['" OR 1=1 --', "*", "NEAR(", "'", "grinder OR", "-", ":*", "&|!", "\\", "%00"]
)
async def test_any_search_text_gets_an_ordinary_answer(client: httpx.AsyncClient, q: str) -> None:
    await client.post("/admin/products", headers=ADMIN, json=grinder())
    response = await client.get("/store/products", params={"market": "US", "q": q})
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)


# --- who may edit -------------------------------------------------------------------------


async def test_editing_the_catalog_needs_a_token_with_the_catalog_write_scope(
    client: httpx.AsyncClient, db: Database, pricing: DictPriceBook
) -> None:
    assert_problem(await client.post("/admin/products", json=grinder()), 401, "unauthorized")
    assert_problem(
        await client.post("/admin/products", headers=CLERK, json=grinder()), 403, "forbidden"
    )
    assert_problem(
        await client.put("/admin/categories/tea", headers=CLERK, json={"names": {"en": "Tea"}}),
        403,
        "forbidden",
    )
    await nothing_written(db, pricing)


# --- bad input ----------------------------------------------------------------------------


def priced(price: Any) -> dict[str, Any]:
    return grinder(variants=[{"sku": "GRINDER-1", "prices": [price]}])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (priced({"amount": 99.5, "currency": "USD"}), "invalid_input"),
        (priced({"amount": "9900", "currency": "USD"}), "invalid_input"),
        (priced({"amount": True, "currency": "USD"}), "invalid_input"),
        (priced({"amount": -1, "currency": "USD"}), "invalid_input"),
        (priced({"amount": 100, "currency": "ZZZ"}), "unknown_currency"),
        (priced({"amount": 100}), "invalid_input"),
        (
            grinder(
                variants=[
                    {
                        "sku": "GRINDER-1",
                        "prices": [
                            {"amount": 1, "currency": "USD"},
                            {"amount": 2, "currency": "USD"},
                        ],
                    }
                ]
            ),
            "duplicate_currency",
        ),
        (grinder(title={}), "invalid_input"),
        (grinder(title={"en-US": "  "}), "invalid_product"),
        (grinder(title={"klingon": "Mühle"}), "unknown_locale"),
        (grinder(default_locale="fr-FR"), "missing_title"),
        (grinder(default_locale=""), "unknown_locale"),
        (grinder(variants=[]), "invalid_product"),
        (grinder(variants=[{"sku": "has spaces"}]), "invalid_sku"),
        (grinder(variants=[{"sku": "A-1"}, {"sku": "A-1"}]), "repeated_sku"),
        (grinder(variants=[{"sku": "A-1", "attributes": {"weight": 1.5}}]), "invalid_input"),
        (grinder(variants=[{"sku": "A-1", "attributes": {"code": 10**12}}]), "invalid_input"),
        (grinder(category="no-such-category"), "unknown_category"),
        (grinder(status="archived"), "invalid_input"),
        (grinder(colour="red"), "invalid_input"),
        (grinder(variants=[{"sku": "A-1", "stock": 5}]), "invalid_input"),
    ],
)
async def test_a_bad_product_gets_a_precise_problem_and_changes_nothing(
    client: httpx.AsyncClient,
    db: Database,
    pricing: DictPriceBook,
    body: dict[str, Any],
    code: str,
) -> None:
    assert_problem(await client.post("/admin/products", headers=ADMIN, json=body), 422, code)
    await nothing_written(db, pricing)


async def test_a_sku_already_in_the_shop_is_a_conflict_and_keeps_its_prices(
    client: httpx.AsyncClient, db: Database, pricing: DictPriceBook
) -> None:
    await client.post("/admin/products", headers=ADMIN, json=grinder())
    copy = {
        "title": {"en-US": "Copy"},
        "variants": [
            {"sku": "NEW-1", "prices": [{"amount": 1, "currency": "USD"}]},
            {"sku": "GRINDER-1", "prices": [{"amount": 1, "currency": "USD"}]},
        ],
    }
    problem = assert_problem(
        await client.post("/admin/products", headers=ADMIN, json=copy), 409, "duplicate_sku"
    )
    assert problem["sku"] == "GRINDER-1"
    assert "GRINDER-1" in problem["detail"]
    assert await count_rows(db, "catalog_products") == 1
    assert pricing.price_lists["GRINDER-1"] == [Money(9900, "USD"), Money(8900, "EUR")]
    assert "NEW-1" not in pricing.price_lists


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"market": "XX"}, 422, "unknown_market"),
        ({}, 422, "invalid_input"),
        ({"market": "US", "locale": "xx-YY"}, 422, "unknown_locale"),
        ({"market": "US", "locale": "de_AT"}, 422, "unknown_locale"),
        ({"market": "US", "locale": ""}, 422, "unknown_locale"),
        ({"market": "US", "limit": 0}, 422, "invalid_input"),
        ({"market": "US", "limit": 101}, 422, "invalid_input"),
        ({"market": "US", "limit": "ten"}, 422, "invalid_input"),
        ({"market": "US", "offset": -1}, 422, "invalid_input"),
        ({"market": "US", "category": "Not A Slug"}, 422, "invalid_category"),
    ],
)
async def test_bad_listing_requests_get_precise_problems(
    client: httpx.AsyncClient, params: dict[str, Any], status: int, code: str
) -> None:
    assert_problem(await client.get("/store/products", params=params), status, code)


async def test_an_unknown_product_is_not_found(client: httpx.AsyncClient) -> None:
    assert_problem(
        await client.get("/store/products/no-such-product", params={"market": "US"}),
        404,
        "product_not_found",
    )


@pytest.mark.parametrize(
    ("slug", "body", "code"),
    [
        ("Coffee Beans", {"names": {"en-US": "Coffee"}}, "invalid_category"),
        ("coffee", {"names": {}}, "invalid_category"),
        ("coffee", {"names": {"en-US": " "}}, "invalid_category"),
        ("coffee", {"names": {"xx-YY": "Coffee"}}, "unknown_locale"),
        ("coffee", {"names": {"en-US": "Coffee"}, "parent": "drinks"}, "unknown_category"),
        ("coffee", {"names": {"en-US": "Coffee"}, "parent": "coffee"}, "category_cycle"),
        ("coffee", {"names": {"en-US": "Coffee"}, "icon": "cup"}, "invalid_input"),
    ],
)
async def test_a_bad_category_gets_a_precise_problem_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, slug: str, body: dict[str, Any], code: str
) -> None:
    assert_problem(
        await client.put(f"/admin/categories/{slug}", headers=ADMIN, json=body), 422, code
    )
    assert await count_rows(db, "catalog_categories") == 0
