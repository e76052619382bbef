"""A customer's account: sign in and out, register, orders, their data and its erasure."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from colonnade.kernel.errors import ColonnadeError
from colonnade.storefront import forms
from colonnade.storefront.pages import (
    PageRoute,
    Pages,
    form_of,
)
from colonnade.storefront.session import CUSTOMER
from colonnade.storefront.shops import Storefront
from colonnade.web.caching import PRIVATE_CACHE_CONTROL


def routes(pages: Pages) -> APIRouter:
    services = pages.services
    routes = APIRouter(route_class=PageRoute, include_in_schema=False)

    # --- the customer's account -----------------------------------------------------------

    @routes.get("/{prefix:shop}/account")
    async def account(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        customer = await pages.signed_in_customer(request, shop)
        found = await services.identity.customer(customer.subject)
        placed = await services.orders.orders_of_customer(customer.subject, 20, 0)
        return await pages.page(
            request, shop, "account.html", {"customer": found, "orders": placed.items}
        )

    @routes.get("/{prefix:shop}/account/orders/{order_id}")
    async def my_order(request: Request, prefix: str, order_id: str, placed: str = "") -> Response:
        shop = await pages.shop(prefix)
        customer = await pages.signed_in_customer(request, shop)
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
        session = pages.session(request)
        form = await form_of(request)
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
        session = pages.session(request)
        form = await form_of(request)
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
        session = pages.session(request)
        form = await form_of(request)
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
        customer = await pages.signed_in_customer(request, shop)
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
        await pages.signed_in_customer(request, shop)
        return await pages.page(request, shop, "erase.html", {"refusal": None})

    @routes.post("/{prefix:shop}/account/erase")
    async def erase(request: Request, prefix: str) -> Response:
        shop = await pages.shop(prefix)
        session = pages.session(request)
        form = await form_of(request)
        customer = await pages.signed_in_customer(request, shop)
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

    return routes
