"""Catalog's routes: the store's localized, priced product listings and the admin's product
and category editing. Thin: they parse, authorize and call the catalog (and, for prices,
the price book the composition root hands in)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

from colonnade.kernel.errors import DuplicateCurrency, UnknownCurrency
from colonnade.kernel.money import Money, currency_code
from colonnade.modules.catalog.domain import (
    MAX_ATTRIBUTE_NAME_LENGTH,
    MAX_ATTRIBUTE_TEXT_LENGTH,
    MAX_ATTRIBUTES,
    MAX_CATEGORY_NAME_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_OFFSET,
    MAX_PAGE,
    MAX_SLUG_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_VARIANTS,
    SKU_SHAPE,
    SLUG_SHAPE,
    CategoryCycle,
    CategoryNotFound,
    InvalidCategory,
    InvalidProduct,
    InvalidSku,
    MissingTitle,
    ProductNotFound,
    RepeatedSku,
    StockLabel,
    UnknownCategory,
    UnknownLocale,
)
from colonnade.modules.catalog.pages import StorePages, StorePrices
from colonnade.modules.catalog.service import (
    CatalogService,
    Category,
    DuplicateSku,
    NewProduct,
    NewVariant,
    Product,
)
from colonnade.modules.catalog.warming import SaleEnded, SaleWarming
from colonnade.web import caching
from colonnade.web.auth import requires
from colonnade.web.fields import (
    INTEGRAL,
    LOCALE_PATTERN,
    MAX_WHOLE_NUMBER,
    CurrencyCode,
    Locale,
    MarketCode,
    declared,
)
from colonnade.web.money import MoneyOut
from colonnade.web.problems import refusals

WRITE = "catalog:write"
# Sales are promotions: the staff who run them warm their store pages too.
SALES_WRITE = "promotions:write"


# --- what the routes need from pricing ---------------------------------------------------


class PriceBook(StorePrices, Protocol):
    async def set_prices(self, sku: str, prices: list[Money]) -> None: ...

    async def prices(self, sku: str) -> list[Money]:
        """The SKU's prices as set, one per currency."""
        ...


# --- requests -----------------------------------------------------------------------------

# Pricing's refusals a store page passes on: it knows the markets and the sales.
UNKNOWN_MARKET = (422, "unknown_market")
SALE_NOT_FOUND = (404, "sale_not_found")

# The rules below are the catalog domain's (it answers each with its own problem); the
# schema declares them and pydantic leaves them to it.
CatalogSku = Annotated[StrictStr, declared(pattern=f"^{SKU_SHAPE}$")]
"""A new variant's SKU: 1 to 64 letters, digits, '-', '_' or '.'."""

Slug = Annotated[StrictStr, declared(maxLength=MAX_SLUG_LENGTH, pattern=f"^{SLUG_SHAPE}$")]
"""A category's slug: lowercase letters and digits in words joined by '-', such as coffee-beans."""

_NOT_BLANK = r"\S"
# A map's key rules go to propertyNames: given to pydantic, a key pattern would become
# patternProperties, which lets every other key through.
_LOCALE_KEYS = declared(propertyNames={"pattern": LOCALE_PATTERN})

Titles = Annotated[
    dict[StrictStr, Annotated[StrictStr, declared(maxLength=MAX_TITLE_LENGTH, pattern=_NOT_BLANK)]],
    _LOCALE_KEYS,
]
"""Title per locale tag: text, not blank."""

Descriptions = Annotated[
    dict[StrictStr, Annotated[StrictStr, declared(maxLength=MAX_DESCRIPTION_LENGTH)]],
    _LOCALE_KEYS,
]
"""Description per locale tag; may be blank."""

CategoryNames = Annotated[
    dict[
        StrictStr,
        Annotated[StrictStr, declared(maxLength=MAX_CATEGORY_NAME_LENGTH, pattern=_NOT_BLANK)],
    ],
    _LOCALE_KEYS,
    declared(minProperties=1),
]
"""Name per locale tag, in one locale at least."""

# An attribute's value is text, a whole number or true/false. A number is bounded here: no
# attribute needs 13 digits, and the store's pages encode it as a 64-bit integer.
AttributeValue = (
    Annotated[StrictStr, declared(maxLength=MAX_ATTRIBUTE_TEXT_LENGTH)]
    | Annotated[StrictInt, Field(ge=-MAX_WHOLE_NUMBER, le=MAX_WHOLE_NUMBER), INTEGRAL]
    | StrictBool
)
Attributes = Annotated[
    dict[StrictStr, AttributeValue],
    declared(
        maxProperties=MAX_ATTRIBUTES,
        propertyNames={
            "minLength": 1,
            "maxLength": MAX_ATTRIBUTE_NAME_LENGTH,
            "pattern": _NOT_BLANK,
        },
    ),
]
"""A variant's attributes by name, such as {"size": "L", "grams": 250}."""


class VariantPriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[StrictInt, Field(ge=0, le=MAX_WHOLE_NUMBER), INTEGRAL] = Field(
        description="Whole minor units (cents for USD)."
    )
    currency: CurrencyCode = Field(description="ISO 4217 code, such as USD.")


class NewVariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: CatalogSku
    attributes: Attributes = Field(default_factory=dict)
    prices: list[VariantPriceIn] = Field(
        default_factory=list, max_length=200, description="At most one per currency."
    )


class NewProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Titles = Field(
        min_length=1, description="Title per locale, such as {'en-US': 'Kenya AA beans'}."
    )
    description: Descriptions = Field(
        default_factory=dict, description="Description per locale; each needs a title too."
    )
    default_locale: Locale | None = Field(
        default=None, description="The locale shown when no other fits; the first title's."
    )
    category: Slug | None = None
    status: Literal["draft", "published"] = "published"
    variants: Annotated[list[NewVariantIn], declared(minItems=1)] = Field(
        max_length=MAX_VARIANTS, description="Each with a SKU no other variant has."
    )


class ProductChangesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Titles | None = Field(default=None, description="Titles to add or replace, per locale.")
    description: Descriptions | None = Field(
        default=None, description="Descriptions to add or replace, per titled locale."
    )
    status: Literal["draft", "published"] | None = Field(
        default=None, description="draft takes the product out of the store at once."
    )


class CategoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    names: CategoryNames = Field(description="Name per locale.")
    parent: Slug | None = Field(default=None, description="The parent category's slug.")


# --- responses ----------------------------------------------------------------------------


class StoreVariantOut(BaseModel):
    sku: str
    attributes: dict[str, Any]
    price: MoneyOut | None = Field(description="In the market's currency; null when unpriced.")
    compare_at: MoneyOut | None = Field(
        description="The price before a running sale lowered it; null when no sale does."
    )
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


class WarmedOut(BaseModel):
    sale_id: str
    market: str
    starts_at: datetime
    pages: int = Field(
        description="Store pages this process read ahead, priced as from the sale's start (or "
        "for now, once it has started); pages ready already are not read again."
    )


class CategoryOut(BaseModel):
    slug: str
    names: dict[str, str]
    parent: str | None

    @classmethod
    def of(cls, category: Category) -> CategoryOut:
        return cls(slug=category.slug, names=category.names, parent=category.parent)


# --- routes -------------------------------------------------------------------------------


def router(
    catalog: CatalogService, pricing: PriceBook, pages: StorePages, warming: SaleWarming
) -> APIRouter:
    routes = APIRouter(tags=["catalog"])

    @routes.get(
        "/store/products",
        response_model=list[StoreProductOut],
        responses=refusals(UNKNOWN_MARKET, UnknownLocale, InvalidCategory, CategoryNotFound),
    )
    async def list_products(
        request: Request,
        market: Annotated[MarketCode, Query(description="Market code, e.g. US.")],
        locale: Annotated[
            Locale | None, Query(description="e.g. de-AT; the market's locale if left out.")
        ] = None,
        q: str | None = Query(default=None, max_length=500, description="Words to search for."),
        category: Annotated[
            Slug | None, Query(description="A category's slug; its subcategories count too.")
        ] = None,
        limit: int = Query(default=20, ge=1, le=MAX_PAGE),
        offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
    ) -> Response:
        """Published products, localized and priced for a market, oldest first."""
        page = await pages.listing(market, locale, q, category, limit, offset)
        return caching.public(request, page.body, page.etag, page.surrogate_key)

    @routes.get(
        "/store/products/{product_id}",
        response_model=StoreProductOut,
        responses=refusals(UNKNOWN_MARKET, UnknownLocale, ProductNotFound),
    )
    async def show_product(
        request: Request,
        product_id: str,
        market: Annotated[MarketCode, Query(description="Market code, e.g. US.")],
        locale: Annotated[
            Locale | None, Query(description="e.g. de-AT; the market's locale if left out.")
        ] = None,
    ) -> Response:
        """One published product, localized and priced for a market."""
        page = await pages.product(product_id, market, locale)
        return caching.public(request, page.body, page.etag, page.surrogate_key)

    @routes.post(
        "/admin/products",
        status_code=201,
        dependencies=[Depends(requires(WRITE))],
        response_model=AdminProductOut,
        responses=refusals(
            UnknownLocale,
            MissingTitle,
            InvalidProduct,
            InvalidSku,
            RepeatedSku,
            InvalidCategory,
            UnknownCategory,
            UnknownCurrency,
            DuplicateCurrency,
            DuplicateSku,
        ),
    )
    async def create_product(body: NewProductIn) -> AdminProductOut:
        """Create a product with its variants and their prices."""
        # Every price is checked before anything is written, so a bad one changes nothing.
        for variant in body.variants:
            currencies = [p.currency for p in variant.prices]
            for currency in currencies:
                if currencies.count(currency) > 1:
                    raise DuplicateCurrency(variant.sku, currency)
        prices = {
            v.sku: [Money(p.amount, currency_code(p.currency)) for p in v.prices]
            for v in body.variants
        }
        product = await catalog.create_product(
            NewProduct(
                titles=body.title,
                descriptions=body.description,
                default_locale=(
                    next(iter(body.title)) if body.default_locale is None else body.default_locale
                ),
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
        responses=refusals(UnknownLocale, InvalidProduct, ProductNotFound),
    )
    async def change_product(product_id: str, body: ProductChangesIn) -> AdminProductOut:
        """Add or replace texts, publish, or take a product out of the store (draft)."""
        product = await catalog.update_product(
            product_id, titles=body.title, descriptions=body.description, status=body.status
        )
        prices = {v.sku: await pricing.prices(v.sku) for v in product.variants}
        return AdminProductOut.of(product, prices)

    @routes.post(
        "/admin/sales/{sale_id}/warm",
        dependencies=[Depends(requires(SALES_WRITE))],
        response_model=WarmedOut,
        responses=refusals(SALE_NOT_FOUND, SaleEnded),
    )
    async def warm_sale(sale_id: str) -> WarmedOut:
        """Read the store pages a sale changes ahead of its start, now, in the process that
        answers (every process does so by itself shortly before a sale starts): the page of
        each product it reaches, and the pages kept that its start ends, priced as from then."""
        warmed = await warming.warm(sale_id)
        return WarmedOut(
            sale_id=warmed.sale.id,
            market=warmed.sale.market,
            starts_at=warmed.sale.starts_at,
            pages=warmed.pages,
        )

    @routes.put(
        "/admin/categories/{slug}",
        dependencies=[Depends(requires(WRITE))],
        response_model=CategoryOut,
        responses=refusals(InvalidCategory, UnknownLocale, UnknownCategory, CategoryCycle),
    )
    async def set_category(slug: Slug, body: CategoryIn) -> CategoryOut:
        """Create a category, or rename it and move it under another."""
        return CategoryOut.of(await catalog.set_category(slug, body.names, body.parent))

    return routes
