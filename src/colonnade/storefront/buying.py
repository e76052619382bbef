"""Buying: the cart, checkout (with the waiting room's page) and a guest's order."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlencode

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from colonnade.kernel.errors import ColonnadeError, InvalidInput, NotFound
from colonnade.kernel.money import Money
from colonnade.modules.cart.service import CartView
from colonnade.modules.checkout.service import CheckoutRequest
from colonnade.storefront import forms
from colonnade.storefront.pages import (
    Admitted,
    PageRoute,
    Pages,
    Room,
    form_of,
)
from colonnade.storefront.session import Session
from colonnade.storefront.shops import Storefront
from colonnade.web.fields import IDEMPOTENCY_KEY_PATTERN

log = structlog.get_logger(__name__)

IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)

# The test gateway's cards a shopper may choose from: never a card number field.
TEST_CARDS = ("tok_visa", "tok_chargeDeclined", "tok_timeout")


def routes(pages: Pages) -> APIRouter:
    services = pages.services
    routes = APIRouter(route_class=PageRoute, include_in_schema=False)

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
        session = pages.session(request)
        return await cart_page(request, shop, session)

    async def changing_cart(
        request: Request,
        prefix: str,
        change: Callable[[Storefront, Session, dict[str, str]], Awaitable[Session]],
    ) -> Response:
        shop = await pages.shop(prefix)
        session = pages.session(request)
        form = await form_of(request)
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
        session = pages.session(request)
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
        session = pages.session(request)
        form = await form_of(request)
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
