"""The storefront's routes: browsing, the cart, checkout, orders and the customer's account,
each page rendered on the server in its market's language.

Every form post carries the session's secret (and must come from the shop's own pages, as
Sec-Fetch-Site or Origin say) and is answered with a redirect (303) when it did what it
asked, or with its page again, the fields' errors and the refusal's message on it, when it
did not: nothing is changed by a refused form, and a cart is kept whatever its checkout met.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException

from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.principal import Principal
from colonnade.modules.cart.service import CartService
from colonnade.modules.catalog.service import CatalogService, Category
from colonnade.modules.checkout.service import CheckoutService
from colonnade.modules.compliance.service import ComplianceService
from colonnade.modules.identity.service import IdentityService
from colonnade.modules.orders.service import OrdersService
from colonnade.modules.pricing.service import PricingService
from colonnade.storefront.render import Renderer
from colonnade.storefront.session import (
    CUSTOMER,
    SESSION,
    SESSION_SECONDS,
    Session,
    SessionSeal,
    fresh,
)
from colonnade.storefront.shops import PREFIX, Storefront, storefronts
from colonnade.storefront.texts import N_
from colonnade.web.caching import PRIVATE_CACHE_CONTROL
from colonnade.web.origin import same_origin

log = structlog.get_logger(__name__)


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


class SignInNeeded(Exception):
    """A customer's page asked for without a customer signed in (or with a sign-in that
    has expired): the answer is the way to the sign-in page."""

    def __init__(self, shop: Storefront, *, expired: bool) -> None:
        super().__init__(shop.prefix)
        self.shop = shop
        self.expired = expired


class PageRoute(APIRoute):
    """A storefront route: what its handler did not expect is the shop's 500 page, not a
    problem document, and is logged; a customer's page without a customer leads to the
    sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded as needed:
                return to_sign_in(needed.shop, expired=needed.expired)
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

    def _sent(self, request: Request) -> Session | None:
        """The session the browser's cookie holds, opened once per request."""
        if not hasattr(request.state, "store_session_sent"):
            request.state.store_session_sent = self.seal.open(request.cookies.get(SESSION))
        sent: Session | None = request.state.store_session_sent
        return sent

    def session(self, request: Request) -> Session:
        """The shopper's session: the cookie's, or a new one (the same for the whole request)
        when the browser has none."""
        sent = self._sent(request)
        if sent is not None:
            return sent
        if not hasattr(request.state, "store_session_new"):
            request.state.store_session_new = fresh()
        new: Session = request.state.store_session_new
        return new

    def _secure(self, request: Request) -> bool:
        return self.behind_https or request.url.scheme == "https"

    def keep(self, request: Request, response: Response, session: Session) -> Response:
        """The response, setting the session's cookie when it is not what the browser sent."""
        if session == self._sent(request):
            return response
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

    async def signed_in_customer(self, request: Request, shop: Storefront) -> Principal:
        """The signed-in customer; SignInNeeded when there is none."""
        customer, expired = await self.customer(request)
        if customer is None:
            raise SignInNeeded(shop, expired=expired)
        return customer

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
        held = session if session is not None else self.session(request)
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
        return next((s for s in shops if s.prefix == first), shops[0] if shops else NO_SHOP)

    def refused_form(self, request: Request, session: Session, form: dict[str, str]) -> bool:
        """Whether a form post is not the shopper's own: another site's, or without the
        session's secret."""
        return not (same_origin(request) and session.form_matches(form.get("csrf")))


def to_sign_in(shop: Storefront, *, expired: bool) -> Response:
    response = RedirectResponse(
        f"/{shop.prefix}/account/login" + ("?expired=1" if expired else ""), status_code=303
    )
    if expired:
        response.delete_cookie(CUSTOMER, path="/")
    return response


NO_SHOP = Storefront(
    prefix="en-us",
    market="US",
    locale="en-US",
    currency="USD",
    market_name="",
    tax_inclusive=False,
)


async def form_of(request: Request) -> dict[str, str]:
    parsed = await request.form()
    return {k: v for k, v in parsed.items() if isinstance(v, str)}
