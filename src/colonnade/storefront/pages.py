"""The storefront's routes: browsing, the cart, checkout, orders and the customer's account,
each page rendered on the server in its market's language.

Every form post carries the session's secret (and must come from the shop's own pages, as
Sec-Fetch-Site or Origin say) and is answered with a redirect (303) when it did what it
asked, or with its page again, the fields' errors and the refusal's message on it, when it
did not: nothing is changed by a refused form, and a cart is kept whatever its checkout met.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import orjson
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

from colonnade.kernel.errors import ColonnadeError, InvalidInput, NotFound
from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.modules.cart.service import CartService, CartView
from colonnade.modules.catalog.service import CatalogService, Category
from colonnade.modules.checkout.service import CheckoutRequest, CheckoutService
from colonnade.modules.compliance.service import ComplianceService
from colonnade.modules.identity.service import IdentityService
from colonnade.modules.orders.service import OrdersService
from colonnade.modules.pricing.service import PricingService
from colonnade.storefront import forms
from colonnade.storefront.render import STATIC, Renderer
from colonnade.storefront.session import (
    CUSTOMER,
    SESSION,
    SESSION_SECONDS,
    Session,
    SessionSeal,
    fresh,
)
from colonnade.storefront.shops import PREFIX, Storefront, best_for, storefronts
from colonnade.storefront.texts import N_
from colonnade.web.caching import PRIVATE_CACHE_CONTROL
from colonnade.web.fields import IDEMPOTENCY_KEY_PATTERN

log = structlog.get_logger(__name__)

IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)

PAGE_SIZE = 12
FEATURED = 8
LONGEST_SEARCH = 200
# The test gateway's cards a shopper may choose from: never a card number field.
TEST_CARDS = ("tok_visa", "tok_chargeDeclined", "tok_timeout")
# How long the markets the pages offer are kept before they are asked for again.
MARKETS_SECONDS = 30.0


class Shelf(Protocol):
    @property
    def body(self) -> bytes: ...


class Shelves(Protocol):
    """The store's kept catalog pages (the same the store API answers with)."""

    async def listing(
        self,
        market: str,
        locale: str | None,
        q: str | None,
        category: str | None,
        limit: int,
        offset: int,
    ) -> Shelf: ...

    async def product(self, product_id: str, market: str, locale: str | None) -> Shelf: ...


class Admitted(Protocol):
    def begin(self) -> None: ...

    async def leave(self) -> None: ...


class Room(Protocol):
    """The checkout's waiting room (raises its 503 checkout_queued refusal with a ticket)."""

    async def enter(self, cart_id: str, presented: str | None) -> Admitted: ...


@dataclass(frozen=True)
class Services:
    catalog: CatalogService
    pricing: PricingService
    shelves: Shelves
    carts: CartService
    checkout: CheckoutService
    identity: IdentityService
    orders: OrdersService
    compliance: ComplianceService
    room: Room | None
    # Whether card payments go to the test gateway (its test cards are offered).
    test_cards: bool
    # The shop's own currency: the market selling in it has the default pages.
    home_currency: str


# What a refusal's code means to a shopper (message ids the catalogs translate).
REFUSALS = {
    "out_of_stock": N_(
        "Sorry: some of what is in your cart sold out while you were buying."
        " Your cart is kept; change it and try again."
    ),
    "payment_declined": N_("Your card was declined. Nothing was charged; try another card."),
    "payment_provider_unavailable": N_(
        "Payments cannot be taken just now. Nothing was charged; please try again in a minute."
    ),
    "total_changed": N_(
        "The total changed while you were buying (a sale started or ended)."
        " Check the new total and buy again."
    ),
    "rate_limited": N_("Too many attempts from here. Please wait a minute and try again."),
    "unknown_gift_card": N_("There is no gift card with this code."),
    "gift_card_insufficient": N_(
        "The gift card does not cover the total: add a card for the rest."
    ),
    "cart_empty": N_("Your cart is empty."),
    "cart_not_open": N_("This cart was bought already."),
    "invalid_credentials": N_("The e-mail address or the password is wrong."),
    "account_locked": N_("Too many wrong passwords: the account is locked for a while."),
    "card_number_rejected": N_(
        "A card number was typed into a field. We never take card"
        " numbers: pay with a card through the payment form."
    ),
    "checkout_in_progress": N_("This order is already being placed; please wait a moment."),
    "promotion_not_found": N_("This discount code does not exist."),
    "promotion_expired": N_("This discount code has ended."),
    "promotion_not_started": N_("This discount code has not started yet."),
    "promotion_exhausted": N_("This discount code is used up."),
    "cart_full": N_("Your cart cannot hold any more items."),
    "unknown_sku": N_("We do not sell this any more."),
    "session_expired": N_("Your session has expired. Please sign in again."),
    "invalid_quantity": N_("Enter a number of units from 0 to 99."),
    "cart_not_found": N_("Your cart has expired; it was empty or left too long."),
    "form_expired": N_("This form has expired. Please send it again."),
}
GENERIC_REFUSAL = N_("We could not do this. Nothing was changed; please try again.")


def refusal_message(code: str | None) -> str:
    return REFUSALS.get(code or "", GENERIC_REFUSAL)


class _ShopPrefix(Convertor[str]):
    """A storefront's prefix in a path (`de-de`): the storefront's routes match no other
    path, so the API's own paths keep their answers (404, 405) as they were."""

    regex = PREFIX.pattern.strip("^$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("shop", _ShopPrefix())


def install(app: FastAPI, pages: Pages) -> None:
    """The storefront's pages and files; after every other route, as its last route takes
    whatever else a storefront's prefix leads to (its 404 page)."""
    app.state.storefront = pages
    app.mount("/static/store", StaticFiles(directory=STATIC), name="store-static")
    app.include_router(pages_router(pages))


class PageRoute(APIRoute):
    """A storefront route: what its handler did not expect is the shop's 500 page, not a
    problem document, and is logged."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as refused:
                if refused.status_code != 404:
                    raise
                pages: Pages = request.app.state.storefront
                return await pages.not_found(request)
            except Exception:
                log.exception("storefront.page_failed", path=request.url.path)
                failed: Pages = request.app.state.storefront
                return await failed.failure(request)

        return answer


class Pages:
    def __init__(self, services: Services, *, secret: str, behind_https: bool) -> None:
        self.services = services
        self.seal = SessionSeal(secret)
        self.behind_https = behind_https
        self.renderer = Renderer()
        self._shops: list[Storefront] = []
        self._shops_at = -math.inf
        self._categories: list[Category] = []
        self._categories_at = -math.inf

    # --- what every page needs ------------------------------------------------------------

    async def shops(self) -> list[Storefront]:
        if time.monotonic() - self._shops_at > MARKETS_SECONDS or not self._shops:
            markets = await self.services.pricing.markets()
            self._shops = storefronts(
                [(m.code, m.name, m.currency, m.locale, m.tax_inclusive) for m in markets],
                self.services.home_currency,
            )
            self._shops_at = time.monotonic()
        return self._shops

    async def shop(self, prefix: str) -> Storefront:
        for shop in await self.shops():
            if shop.prefix == prefix:
                return shop
        raise HTTPException(404)

    async def categories(self) -> list[Category]:
        if time.monotonic() - self._categories_at > MARKETS_SECONDS:
            self._categories = await self.services.catalog.categories()
            self._categories_at = time.monotonic()
        return self._categories

    def session(self, request: Request) -> tuple[Session, bool]:
        """The shopper's session, and whether it is new (its cookie must be set)."""
        found = self.seal.open(request.cookies.get(SESSION))
        return (found, False) if found is not None else (fresh(), True)

    def _secure(self, request: Request) -> bool:
        return self.behind_https or request.url.scheme == "https"

    def keep(self, request: Request, response: Response, session: Session) -> Response:
        response.set_cookie(
            SESSION,
            self.seal.seal(session),
            max_age=SESSION_SECONDS,
            path="/",
            secure=self._secure(request),
            httponly=True,
            samesite="lax",
        )
        return response

    async def customer(self, request: Request) -> tuple[Principal | None, bool]:
        """The signed-in customer, and whether a sign-in was there but has expired."""
        token = request.cookies.get(CUSTOMER)
        if not token:
            return None, False
        try:
            principal = await self.services.identity.authenticate(token)
        except ColonnadeError:
            return None, True
        if principal.kind != "customer":
            return None, True
        # The audit trail names the customer behind a personal-data request.
        request.state.principal = principal
        return principal, False

    async def page(
        self,
        request: Request,
        shop: Storefront,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        session: Session | None = None,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        held, new = (session, True) if session is not None else self.session(request)
        shops = await self.shops()
        path = request.url.path
        rest = path[len(shop.prefix) + 1 :] if path.startswith(f"/{shop.prefix}") else "/"
        html = self.renderer.render(
            shop,
            template,
            {
                "shops": shops,
                "here": rest or "/",
                "csrf": held.csrf,
                "signed_in": CUSTOMER in request.cookies,
                "categories": await self.categories(),
                "origin": f"{request.url.scheme}://{request.url.netloc}",
                "message": refusal_message,
                **context,
            },
        )
        response = HTMLResponse(
            html,
            status_code=status,
            headers={"Cache-Control": PRIVATE_CACHE_CONTROL, **(headers or {})},
        )
        if new:
            self.keep(request, response, held)
        return response

    async def failure(self, request: Request) -> Response:
        """The shop's 500 page, in the language of the storefront asked for if there is one."""
        shop = await self.shop_of_path(request)
        return await self.page(request, shop, "error.html", {"status": 500}, status=500)

    async def not_found(self, request: Request) -> Response:
        shop = await self.shop_of_path(request)
        return await self.page(request, shop, "error.html", {"status": 404}, status=404)

    async def shop_of_path(self, request: Request) -> Storefront:
        """The storefront a path is under; the first when it is under none."""
        shops = await self.shops()
        first = request.url.path.strip("/").split("/", 1)[0]
        return next((s for s in shops if s.prefix == first), shops[0] if shops else _NO_SHOP)

    def refused_form(self, request: Request, session: Session, form: dict[str, str]) -> bool:
        """Whether a form post is not the shopper's own: another site's, or without the
        session's secret."""
        return not (_same_origin(request) and session.form_matches(form.get("csrf")))


_NO_SHOP = Storefront(
    prefix="en-us",
    market="US",
    locale="en-US",
    currency="USD",
    market_name="",
    tax_inclusive=False,
)


def _same_origin(request: Request) -> bool:
    """Browsers say where a post comes from in Sec-Fetch-Site; older ones in Origin only.
    Clients that are not browsers send neither and cannot be made to post by another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host")


async def _form(request: Request) -> dict[str, str]:
    parsed = await request.form()
    return {k: v for k, v in parsed.items() if isinstance(v, str)}


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


def pages_router(pages: Pages) -> APIRouter:
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
        shop = shops[0] if shops else _NO_SHOP
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

    # --- the cart -------------------------------------------------------------------------

    async def current_cart(shop: Storefront, session: Session) -> CartView | None:
        cart_id = session.carts.get(shop.market)
        if cart_id is None:
            return None
        try:
            cart = await services.carts.cart(cart_id)
        except ColonnadeError:
            return None
        return cart if cart.status.value == "open" else None

    async def cart_page(
        request: Request,
        shop: Storefront,
        session: Session,
        *,
        refusal: str | None = None,
        status: int = 200,
    ) -> Response:
        cart = await current_cart(shop, session)
        titles = (
            await services.catalog.titles_for([line.sku for line in cart.lines], shop.locale)
            if cart is not None and cart.lines
            else {}
        )
        kept = session if cart is not None else session.with_cart(shop.market, None)
        return await pages.page(
            request,
            shop,
            "cart.html",
            {"cart": cart, "titles": titles, "refusal": refusal},
            status=status,
            session=kept,
        )

    @routes.get("/{prefix:shop}/cart")
    async def show_cart(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        session, _ = pages.session(request)
        return await cart_page(request, shop, session)

    async def changing_cart(
        request: Request,
        prefix: str,
        change: Callable[[Storefront, Session, dict[str, str]], Awaitable[Session]],
    ) -> Response:
        shop = await pages.shop(prefix)
        session, _ = pages.session(request)
        form = await _form(request)
        if pages.refused_form(request, session, form):
            return await cart_page(request, shop, session, refusal="form_expired", status=403)
        try:
            session = await change(shop, session, form)
        except ColonnadeError as refused:
            return await cart_page(
                request, shop, session, refusal=refused.code, status=refused.status
            )
        return pages.keep(
            request, RedirectResponse(f"/{shop.prefix}/cart", status_code=303), session
        )

    async def open_cart(shop: Storefront, session: Session) -> tuple[str, Session]:
        found = await current_cart(shop, session)
        if found is not None:
            return found.id, session
        opened = await services.carts.create(shop.market)
        return opened.id, session.with_cart(shop.market, opened.id)

    @routes.post("/{prefix:shop}/cart/lines")
    async def add_to_cart(request: Request, prefix: str) -> Response:
        async def add(shop: Storefront, session: Session, form: dict[str, str]) -> Session:
            units = forms.quantity(form.get("quantity", "1"))
            if units is None or units == 0:
                raise QuantityRefused()
            cart_id, session = await open_cart(shop, session)
            await services.carts.add_line(cart_id, form.get("sku", ""), units)
            return session

        return await changing_cart(request, prefix, add)

    @routes.post("/{prefix:shop}/cart/lines/{sku}")
    async def change_line(request: Request, prefix: str, sku: str) -> Response:
        async def change(shop: Storefront, session: Session, form: dict[str, str]) -> Session:
            units = forms.quantity(form.get("quantity"))
            if units is None:
                raise QuantityRefused()
            cart_id = session.carts.get(shop.market)
            if cart_id is None:
                raise NoCart()
            await services.carts.set_quantity(cart_id, sku, units)
            return session

        return await changing_cart(request, prefix, change)

    @routes.post("/{prefix:shop}/cart/lines/{sku}/remove")
    async def remove_line(request: Request, prefix: str, sku: str) -> Response:
        async def remove(shop: Storefront, session: Session, _: dict[str, str]) -> Session:
            cart_id = session.carts.get(shop.market)
            if cart_id is None:
                raise NoCart()
            await services.carts.remove_line(cart_id, sku)
            return session

        return await changing_cart(request, prefix, remove)

    @routes.post("/{prefix:shop}/cart/promotion")
    async def apply_code(request: Request, prefix: str) -> Response:
        async def apply(shop: Storefront, session: Session, form: dict[str, str]) -> Session:
            code = form.get("code", "").strip()
            if not code or len(code) > 64:
                raise NoCode()
            cart_id, session = await open_cart(shop, session)
            await services.carts.apply_promotion(cart_id, code)
            return session

        return await changing_cart(request, prefix, apply)

    # --- checkout -------------------------------------------------------------------------

    async def checkout_page(
        request: Request,
        shop: Storefront,
        session: Session,
        cart: CartView,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        refusal: str | None = None,
        status: int = 200,
    ) -> Response:
        titles = await services.catalog.titles_for([line.sku for line in cart.lines], shop.locale)
        return await pages.page(
            request,
            shop,
            "checkout.html",
            {
                "cart": cart,
                "titles": titles,
                "values": {"country": shop.market, "method": "card", **(values or {})},
                "errors": errors or {},
                "refusal": refusal,
                # A new key per form shown: sending this form twice buys once, and a form
                # shown again after a refusal is a new attempt.
                "idempotency_key": str(uuid.uuid4()),
                "cards": TEST_CARDS if services.test_cards else (),
                "address_fields": forms.ADDRESS_FIELDS,
            },
            status=status,
            session=session,
        )

    @routes.get("/{prefix:shop}/checkout")
    async def show_checkout(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        session, _ = pages.session(request)
        cart = await current_cart(shop, session)
        if cart is None or not cart.lines:
            return RedirectResponse(f"/{shop.prefix}/cart", status_code=303)
        customer, _ = await pages.customer(request)
        values = {}
        if customer is not None:
            found = await services.identity.customer(customer.subject)
            values = {"email": found.email, "name": found.name}
        return await checkout_page(request, shop, session, cart, values=values)

    @routes.post("/{prefix:shop}/checkout")
    async def buy(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        session, _ = pages.session(request)
        form = await _form(request)
        cart = await current_cart(shop, session)
        if cart is None or not cart.lines:
            return await cart_page(request, shop, session, refusal="cart_empty", status=409)
        checked = forms.checkout_form(form)
        if pages.refused_form(request, session, form):
            return await checkout_page(
                request,
                shop,
                session,
                cart,
                values=checked.values,
                refusal="form_expired",
                status=403,
            )
        if not checked.ok:
            return await checkout_page(
                request,
                shop,
                session,
                cart,
                values=checked.values,
                errors=checked.errors,
                status=422,
            )
        customer, expired = await pages.customer(request)
        if expired:
            return await checkout_page(
                request,
                shop,
                session,
                cart,
                values=checked.values,
                refusal="session_expired",
                status=401,
            )
        key = form.get("idempotency_key", "")
        if not IDEMPOTENCY_KEY.match(key):
            key = str(uuid.uuid4())
        admitted: Admitted | None = None
        if services.room is not None:
            try:
                admitted = await _admission(services.room, cart.id, form.get("queue_ticket"))
            except ColonnadeError as queued:
                problem = queued.problem()
                if problem["code"] != "checkout_queued":
                    raise
                return await pages.page(
                    request,
                    shop,
                    "waiting.html",
                    {
                        "form": {**form, "idempotency_key": key},
                        "ticket": problem["ticket"],
                        "position": problem["position"],
                        "retry_after": problem["retry_after"],
                    },
                    status=503,
                    session=session,
                    headers={"Retry-After": str(problem["retry_after"])},
                )
        values = checked.values
        expected = form.get("expected_total", "")
        try:
            if admitted is not None:
                admitted.begin()
            outcome = await services.checkout.check_out(
                cart.id,
                key,
                CheckoutRequest(
                    email=values["email"],
                    shipping_address=forms.address_of(checked),
                    payment_method=values["method"],
                    payment_token=None
                    if values["method"] == "bank_transfer" or not values["token"]
                    else values["token"],
                    gift_card_code=values["gift_card_code"]
                    if values["method"] == "gift_card"
                    else None,
                    customer_id=None if customer is None else customer.subject,
                    expected_total=Money(int(expected), cart.currency)
                    if expected.isdigit() and len(expected) < 16
                    else None,
                ),
            )
            status, body = outcome.status, outcome.body
        except ColonnadeError as refused:
            status, body = refused.status, refused.problem()
        finally:
            if admitted is not None:
                await admitted.leave()
        if status >= 400:
            log.info("storefront.checkout_refused", code=body.get("code"), status=status)
            # The cart as it is now (a sale may have changed its total).
            now = await current_cart(shop, session) or cart
            return await checkout_page(
                request,
                shop,
                session,
                now,
                values=values,
                refusal=body.get("code"),
                status=status,
            )
        session = session.with_cart(shop.market, None)
        if customer is not None:
            target = f"/{shop.prefix}/account/orders/{quote(body['id'])}?placed=1"
        else:
            target = f"/{shop.prefix}/orders/{quote(body['id'])}?" + urlencode(
                {"token": body["access_token"], "placed": 1}
            )
        return pages.keep(request, RedirectResponse(target, status_code=303), session)

    @routes.get("/{prefix:shop}/orders/{order_id}")
    async def guest_order(
        request: Request, prefix: str, order_id: str, token: str = "", placed: str = ""
    ) -> Response:
        shop = await pages.shop(prefix)
        if not token or len(token) > 200:
            raise HTTPException(404)
        try:
            order = await services.orders.order_for_guest(order_id, token)
        except ColonnadeError as missing:
            raise HTTPException(404) from missing
        link = f"{request.url.scheme}://{request.url.netloc}{request.url.path}?" + urlencode(
            {"token": token}
        )
        return await pages.page(
            request,
            shop,
            "order.html",
            {"order": order, "guest_link": link, "placed": placed == "1"},
        )

    # --- the customer's account -----------------------------------------------------------

    def to_login(shop: Storefront, *, expired: bool) -> Response:
        response = RedirectResponse(
            f"/{shop.prefix}/account/login" + ("?expired=1" if expired else ""), status_code=303
        )
        if expired:
            response.delete_cookie(CUSTOMER, path="/")
        return response

    @routes.get("/{prefix:shop}/account")
    async def account(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        customer, expired = await pages.customer(request)
        if customer is None:
            return to_login(shop, expired=expired)
        found = await services.identity.customer(customer.subject)
        placed = await services.orders.orders_of_customer(customer.subject, 20, 0)
        return await pages.page(
            request, shop, "account.html", {"customer": found, "orders": placed.items}
        )

    @routes.get("/{prefix:shop}/account/orders/{order_id}")
    async def my_order(request: Request, prefix: str, order_id: str, placed: str = "") -> Response:
        shop = await pages.shop(prefix)
        customer, expired = await pages.customer(request)
        if customer is None:
            return to_login(shop, expired=expired)
        try:
            order = await services.orders.order_of_customer(order_id, customer.subject)
        except ColonnadeError as missing:
            raise HTTPException(404) from missing
        return await pages.page(
            request, shop, "order.html", {"order": order, "placed": placed == "1"}
        )

    @routes.get("/{prefix:shop}/account/login")
    async def login_form(request: Request, prefix: str, expired: str = "") -> Response:
        shop = await pages.shop(prefix)
        return await pages.page(
            request,
            shop,
            "login.html",
            {"values": {}, "refusal": "session_expired" if expired == "1" else None},
        )

    def signed_in(request: Request, shop: Storefront, token: str, seconds: int) -> Response:
        response = RedirectResponse(f"/{shop.prefix}/account", status_code=303)
        response.set_cookie(
            CUSTOMER,
            token,
            max_age=seconds,
            path="/",
            secure=pages._secure(request),
            httponly=True,
            samesite="lax",
        )
        return response

    @routes.post("/{prefix:shop}/account/login")
    async def log_in(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        session, _ = pages.session(request)
        form = await _form(request)
        email = form.get("email", "").strip()
        values = {"email": email}
        if pages.refused_form(request, session, form):
            return await pages.page(
                request,
                shop,
                "login.html",
                {"values": values, "refusal": "form_expired"},
                status=403,
                session=session,
            )
        try:
            token = await services.identity.issue_token(email, form.get("password", ""))
        except ColonnadeError as refused:
            return await pages.page(
                request,
                shop,
                "login.html",
                {"values": values, "refusal": refused.code},
                status=refused.status,
                session=session,
            )
        # The page's sign-in lives as long as its access token; no refresh token is kept.
        await services.identity.logout(token.refresh_token)
        principal = await services.identity.authenticate(token.access_token)
        if principal.kind != "customer":
            # Staff sign in at /ops; the shop's pages are for customers.
            return await pages.page(
                request,
                shop,
                "login.html",
                {"values": values, "refusal": "invalid_credentials"},
                status=401,
                session=session,
            )
        return signed_in(request, shop, token.access_token, token.expires_in)

    @routes.post("/{prefix:shop}/account/logout")
    async def log_out(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        session, _ = pages.session(request)
        form = await _form(request)
        if pages.refused_form(request, session, form):
            raise HTTPException(403)
        response = RedirectResponse(f"/{shop.prefix}/", status_code=303)
        response.delete_cookie(CUSTOMER, path="/")
        return response

    @routes.get("/{prefix:shop}/account/register")
    async def registration_form(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        return await pages.page(request, shop, "register.html", {"values": {}, "errors": {}})

    @routes.post("/{prefix:shop}/account/register")
    async def register(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        session, _ = pages.session(request)
        form = await _form(request)
        checked = forms.registration_form(form)
        context: dict[str, Any] = {"values": checked.values, "errors": checked.errors}
        if pages.refused_form(request, session, form):
            return await pages.page(
                request,
                shop,
                "register.html",
                {**context, "refusal": "form_expired"},
                status=403,
                session=session,
            )
        if not checked.ok:
            return await pages.page(
                request, shop, "register.html", context, status=422, session=session
            )
        password = form.get("password", "")
        try:
            await services.identity.register_customer(
                checked.values["email"], password, checked.values["name"]
            )
            token = await services.identity.issue_token(checked.values["email"], password)
        except ColonnadeError as refused:
            return await pages.page(
                request,
                shop,
                "register.html",
                {**context, "refusal": refused.code},
                status=refused.status,
                session=session,
            )
        await services.identity.logout(token.refresh_token)
        return signed_in(request, shop, token.access_token, token.expires_in)

    @routes.get("/{prefix:shop}/account/export")
    async def export(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        customer, expired = await pages.customer(request)
        if customer is None:
            return to_login(shop, expired=expired)
        document = await services.compliance.export(customer.subject)
        return Response(
            orjson.dumps(document, option=orjson.OPT_INDENT_2),
            media_type="application/json",
            headers={
                "Content-Disposition": 'attachment; filename="my-data.json"',
                "Cache-Control": PRIVATE_CACHE_CONTROL,
            },
        )

    @routes.get("/{prefix:shop}/account/erase")
    async def erase_form(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        customer, expired = await pages.customer(request)
        if customer is None:
            return to_login(shop, expired=expired)
        return await pages.page(request, shop, "erase.html", {"refusal": None})

    @routes.post("/{prefix:shop}/account/erase")
    async def erase(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        session, _ = pages.session(request)
        form = await _form(request)
        customer, expired = await pages.customer(request)
        if customer is None:
            return to_login(shop, expired=expired)
        if pages.refused_form(request, session, form):
            return await pages.page(
                request,
                shop,
                "erase.html",
                {"refusal": "form_expired"},
                status=403,
                session=session,
            )
        if form.get("confirm") != "yes":
            return await pages.page(
                request,
                shop,
                "erase.html",
                {"refusal": None, "unconfirmed": True},
                status=422,
                session=session,
            )
        await services.compliance.erase(customer.subject, customer)
        request.state.audit_erased = True
        response = await pages.page(request, shop, "erased.html", {}, session=session)
        response.delete_cookie(CUSTOMER, path="/")
        return response

    @routes.api_route("/{prefix:shop}/{rest:path}", methods=["GET", "POST"])
    async def nowhere(request: Request, prefix: str, rest: str) -> Response:
        return await pages.not_found(request)

    return routes


class QuantityRefused(InvalidInput):
    code = "invalid_quantity"

    def __init__(self) -> None:
        super().__init__("a cart line holds 1 to 99 units (0 removes it)")


class NoCart(NotFound):
    code = "cart_not_found"

    def __init__(self) -> None:
        super().__init__("this browser has no cart in this market")


class NoCode(NotFound):
    code = "promotion_not_found"

    def __init__(self) -> None:
        super().__init__("no discount code was entered")


async def _admission(room: Room, cart_id: str, ticket: str | None) -> Admitted:
    """Let a checkout in, or raise the room's checkout_queued; a ticket the room no longer
    takes (expired, used, not this cart's) joins the queue again without it."""
    try:
        return await room.enter(cart_id, ticket or None)
    except ColonnadeError as refused:
        if ticket and refused.code != "checkout_queued":
            return await room.enter(cart_id, None)
        raise
