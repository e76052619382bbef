"""Catalog's routes: the store's localized, priced product listings and the admin's product
and category editing. Thin: they parse, authorize and call the catalog (and, for prices,
the price book the composition root hands in)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from colonnade.kernel.money import Money, currency_code
from colonnade.modules.catalog.domain import MAX_OFFSET, MAX_PAGE, StockLabel
from colonnade.modules.catalog.pages import StorePages, StorePrices
from colonnade.modules.catalog.service import (
    CatalogService,
    Category,
    NewProduct,
    NewVariant,
    Product,
)
from colonnade.web import caching
from colonnade.web.auth import requires
from colonnade.web.money import MoneyOut

WRITE = "catalog:write"


# --- what the routes need from pricing ---------------------------------------------------


class PriceBook(StorePrices, Protocol):
    async def set_prices(self, sku: str, prices: list[Money]) -> None: ...

    async def prices(self, sku: str) -> list[Money]:
        """The SKU's prices as set, one per currency."""
        ...


# --- requests -----------------------------------------------------------------------------

AttributeValue = StrictStr | StrictInt | StrictBool


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(ge=0, description="Whole minor units (cents for USD).")
    currency: StrictStr = Field(max_length=16, description="ISO 4217 code, such as USD.")


class NewVariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: StrictStr = Field(max_length=200)
    attributes: dict[StrictStr, AttributeValue] = Field(default_factory=dict)
    prices: list[MoneyIn] = Field(default_factory=list, max_length=200)

    @field_validator("prices")
    @classmethod
    def _one_price_per_currency(cls, prices: list[MoneyIn]) -> list[MoneyIn]:
        currencies = [p.currency for p in prices]
        repeated = sorted({c for c in currencies if currencies.count(c) > 1})
        if repeated:
            raise ValueError(f"more than one price in {', '.join(repeated)}")
        return prices


class NewProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: dict[StrictStr, StrictStr] = Field(
        min_length=1, description="Title per locale, such as {'en-US': 'Kenya AA beans'}."
    )
    description: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    default_locale: StrictStr | None = Field(
        default=None, description="The locale shown when no other fits; the first title's."
    )
    category: StrictStr | None = None
    status: Literal["draft", "published"] = "published"
    variants: list[NewVariantIn] = Field(max_length=100)


class ProductChangesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: dict[StrictStr, StrictStr] | None = Field(
        default=None, description="Titles to add or replace, per locale."
    )
    description: dict[StrictStr, StrictStr] | None = None
    status: Literal["draft", "published"] | None = Field(
        default=None, description="draft takes the product out of the store at once."
    )


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    names: dict[StrictStr, StrictStr] = Field(description="Name per locale.")
    parent: StrictStr | None = Field(default=None, description="The parent category's slug.")


# --- responses ----------------------------------------------------------------------------


class StoreVariantOut(BaseModel):
    sku: str
    attributes: dict[str, Any]
    price: MoneyOut | None = Field(description="In the market's currency; null when unpriced.")
    stock: StockLabel = Field(description="in_stock, low (a few left) or sold_out.")


class StoreProductOut(BaseModel):
    """What the store shows (the routes send it pre-encoded; this documents its shape)."""

    id: str
    title: str
    description: str | None
    locale: str = Field(description="The locale the texts are in (after fallback).")
    category: str | None
    variants: list[StoreVariantOut]


class AdminVariantOut(BaseModel):
    sku: str
    attributes: dict[str, Any]
    prices: list[MoneyOut]


class AdminProductOut(BaseModel):
    id: str
    title: dict[str, str]
    description: dict[str, str]
    default_locale: str
    status: str
    category: str | None
    variants: list[AdminVariantOut]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, product: Product, prices: dict[str, list[Money]]) -> AdminProductOut:
        return cls(
            id=product.id,
            title=product.titles,
            description=product.descriptions,
            default_locale=product.default_locale,
            status=product.status.value,
            category=product.category,
            variants=[
                AdminVariantOut(
                    sku=v.sku,
                    attributes=v.attributes,
                    prices=[MoneyOut.of(m) for m in prices.get(v.sku, [])],
                )
                for v in product.variants
            ],
            created_at=product.created_at,
            updated_at=product.updated_at,
        )


class CategoryOut(BaseModel):
    slug: str
    names: dict[str, str]
    parent: str | None

    @classmethod
    def of(cls, category: Category) -> CategoryOut:
        return cls(slug=category.slug, names=category.names, parent=category.parent)


# --- routes -------------------------------------------------------------------------------


def router(catalog: CatalogService, pricing: PriceBook, pages: StorePages) -> APIRouter:
    routes = APIRouter(tags=["catalog"])

    @routes.get("/store/products", response_model=list[StoreProductOut])
    async def list_products(
        request: Request,
        market: str = Query(min_length=1, max_length=40, description="Market code, e.g. US."),
        locale: str | None = Query(
            default=None, max_length=40, description="e.g. de-AT; the market's locale if left out."
        ),
        q: str | None = Query(default=None, max_length=500, description="Words to search for."),
        category: str | None = Query(default=None, max_length=64),
        limit: int = Query(default=20, ge=1, le=MAX_PAGE),
        offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    ) -> Response:
        """Published products, localized and priced for a market, oldest first."""
        page = await pages.listing(market, locale, q, category, limit, offset)
        return caching.public(request, page.body, page.etag, page.surrogate_key)

    @routes.get("/store/products/{product_id}", response_model=StoreProductOut)
    async def show_product(
        request: Request,
        product_id: str,
        market: str = Query(min_length=1, max_length=40),
        locale: str | None = Query(default=None, max_length=40),
    ) -> Response:
        """One published product, localized and priced for a market."""
        page = await pages.product(product_id, market, locale)
        return caching.public(request, page.body, page.etag, page.surrogate_key)

    @routes.post(
        "/admin/products",
        status_code=201,
        dependencies=[Depends(requires(WRITE))],
        response_model=AdminProductOut,
    )
    async def create_product(body: NewProductIn) -> AdminProductOut:
        """Create a product with its variants and their prices."""
        # Every price is checked before anything is written, so a bad one changes nothing.
        prices = {
            v.sku: [Money(p.amount, currency_code(p.currency)) for p in v.prices]
            for v in body.variants
        }
        product = await catalog.create_product(
            NewProduct(
                titles=body.title,
                descriptions=body.description,
                default_locale=body.default_locale or next(iter(body.title)),
                variants=[NewVariant(sku=v.sku, attributes=v.attributes) for v in body.variants],
                category=body.category,
                status=body.status,
            )
        )
        for sku, money in prices.items():
            if money:
                await pricing.set_prices(sku, money)
        return AdminProductOut.of(product, prices)

    @routes.patch(
        "/admin/products/{product_id}",
        dependencies=[Depends(requires(WRITE))],
        response_model=AdminProductOut,
    )
    async def change_product(product_id: str, body: ProductChangesIn) -> AdminProductOut:
        """Add or replace texts, publish, or take a product out of the store (draft)."""
        product = await catalog.update_product(
            product_id, titles=body.title, descriptions=body.description, status=body.status
        )
        prices = {v.sku: await pricing.prices(v.sku) for v in product.variants}
        return AdminProductOut.of(product, prices)

    @routes.put(
        "/admin/categories/{slug}",
        dependencies=[Depends(requires(WRITE))],
        response_model=CategoryOut,
    )
    async def set_category(slug: str, body: CategoryIn) -> CategoryOut:
        """Create a category, or rename it and move it under another."""
        return CategoryOut.of(await catalog.set_category(slug, body.names, body.parent))

    return routes
