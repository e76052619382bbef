"""Browsing: the front door, home, categories, search, product pages, the sitemap."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.money import Money
from colonnade.modules.catalog.service import Category
from colonnade.storefront.pages import (
    NO_SHOP,
    PageRoute,
    Pages,
)
from colonnade.storefront.shops import Storefront, best_for

PAGE_SIZE = 12
FEATURED = 8
LONGEST_SEARCH = 200


def _page_number(raw: str | None) -> int:
    if raw is None:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise HTTPException(404)
    return int(raw)


def _offers(product: dict[str, Any]) -> list[dict[str, Any]]:
    """schema.org offers of a product's priced variants."""
    availability = {
        "in_stock": "https://schema.org/InStock",
        "low": "https://schema.org/LimitedAvailability",
        "sold_out": "https://schema.org/OutOfStock",
    }
    return [
        {
            "@type": "Offer",
            "sku": v["sku"],
            "price": str(Money(v["price"]["amount"], v["price"]["currency"]).to_decimal()),
            "priceCurrency": v["price"]["currency"],
            "availability": availability.get(v["stock"], "https://schema.org/InStock"),
        }
        for v in product["variants"]
        if v["price"] is not None
    ]


def routes(pages: Pages) -> APIRouter:
    services = pages.services
    routes = APIRouter(route_class=PageRoute, include_in_schema=False)

    @routes.get("/")
    async def front_door(request: Request) -> Response:
        shops = await pages.shops()
        if not shops:
            raise HTTPException(404)
        shop = best_for(request.headers.get("accept-language"), shops)
        return RedirectResponse(f"/{shop.prefix}/", status_code=307)

    @routes.get("/sitemap.xml")
    async def sitemap(request: Request) -> Response:
        shops = await pages.shops()
        categories = await pages.categories()
        paths = ["/"] + [f"/c/{quote(c.slug)}" for c in categories]
        offset = 0
        while shops:
            found = await services.catalog.products(
                shops[0].locale, q=None, category=None, limit=100, offset=offset
            )
            paths += [f"/p/{quote(p.id)}" for p in found]
            if len(found) < 100:
                break
            offset += 100
        origin = f"{request.url.scheme}://{request.url.netloc}"
        shop = shops[0] if shops else NO_SHOP
        body = pages.renderer.render(
            shop, "sitemap.xml", {"paths": paths, "shops": shops, "origin": origin}
        )
        return Response(body, media_type="application/xml")

    @routes.get("/robots.txt")
    async def robots(request: Request) -> Response:
        origin = f"{request.url.scheme}://{request.url.netloc}"
        lines = [
            "User-agent: *",
            "Disallow: /ops",
            "Disallow: /admin",
            "Disallow: /*/checkout",
            "Disallow: /*/account",
            f"Sitemap: {origin}/sitemap.xml",
        ]
        return Response("\n".join(lines) + "\n", media_type="text/plain")

    # --- browsing -------------------------------------------------------------------------

    @routes.get("/{prefix:shop}/")
    async def home(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        featured = orjson.loads(
            (await services.shelves.listing(shop.market, shop.locale, None, None, FEATURED, 0)).body
        )
        return await pages.page(request, shop, "home.html", {"products": featured})

    async def listing(
        request: Request,
        shop: Storefront,
        *,
        q: str | None,
        category: Category | None,
        page_number: int,
    ) -> Response:
        shelf = await services.shelves.listing(
            shop.market,
            shop.locale,
            q,
            None if category is None else category.slug,
            PAGE_SIZE + 1,
            (page_number - 1) * PAGE_SIZE,
        )
        found = orjson.loads(shelf.body)
        more = len(found) > PAGE_SIZE
        query = {} if q is None else {"q": q}
        return await pages.page(
            request,
            shop,
            "listing.html",
            {
                "products": found[:PAGE_SIZE],
                "category": category,
                "q": q,
                "page_number": page_number,
                "previous": None
                if page_number == 1
                else "?" + urlencode({**query, "page": page_number - 1}),
                "next": "?" + urlencode({**query, "page": page_number + 1}) if more else None,
            },
        )

    @routes.get("/{prefix:shop}/c/{slug}")
    async def category_page(
        request: Request, prefix: str, slug: str, page: str | None = None
    ) -> Response:
        shop = await pages.shop(prefix)
        found = next((c for c in await pages.categories() if c.slug == slug), None)
        if found is None:
            raise HTTPException(404)
        return await listing(request, shop, q=None, category=found, page_number=_page_number(page))

    @routes.get("/{prefix:shop}/search")
    async def search_page(
        request: Request, prefix: str, q: str = "", page: str | None = None
    ) -> Response:
        shop = await pages.shop(prefix)
        words = q.strip()
        if len(words) > LONGEST_SEARCH:
            return await pages.page(
                request,
                shop,
                "listing.html",
                {"products": [], "q": words[:LONGEST_SEARCH], "too_long": True},
                status=422,
            )
        return await listing(
            request, shop, q=words or None, category=None, page_number=_page_number(page)
        )

    @routes.get("/{prefix:shop}/p/{product_id}")
    async def product_page(request: Request, prefix: str, product_id: str) -> Response:
        shop = await pages.shop(prefix)
        try:
            shelf = await services.shelves.product(product_id, shop.market, shop.locale)
        except ColonnadeError as missing:
            if missing.status == 404:
                raise HTTPException(404) from missing
            raise
        product = orjson.loads(shelf.body)
        structured = {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": product["title"],
            "description": product["description"] or product["title"],
            "sku": product["variants"][0]["sku"] if product["variants"] else None,
            "image": f"{request.url.scheme}://{request.url.netloc}/static/store/product.svg",
            "offers": _offers(product),
        }
        return await pages.page(
            request, shop, "product.html", {"product": product, "structured": structured}
        )

    return routes
