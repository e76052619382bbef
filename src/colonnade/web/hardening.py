"""Mounts the shop's protective middlewares in the one order that is right.

Outermost first: security headers (on every answer, refusals included), CORS (so a browser
can read a refusal), the body size limit (nothing reads an unbounded body), NUL characters
(PostgreSQL cannot store them), the card number guard (a card number is refused before
anything counts or stores it), rate limits (only requests that could have run use up a
client's allowance), then the routes.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from colonnade.kernel.settings import Settings
from colonnade.web.cards import CardNumberGuard
from colonnade.web.headers import SecurityHeaders
from colonnade.web.limits import (
    AccountOf,
    BodySizeLimit,
    Limiter,
    RateLimit,
    RateLimiter,
    RateLimits,
    form_field,
    json_field,
    path_parameter,
)
from colonnade.web.text import NulCharacterGuard


def rate_limits(settings: Settings) -> list[RateLimit]:
    def login(path: str, account: AccountOf) -> RateLimit:
        return RateLimit(
            "login",
            "POST",
            path,
            per_address=settings.rate_limit_login_per_address,
            per_account=settings.rate_limit_login_per_account,
            account=account,
        )

    def registration(path: str, account: AccountOf) -> RateLimit:
        return RateLimit(
            "registration",
            "POST",
            path,
            per_address=settings.rate_limit_registration_per_address,
            per_account=settings.rate_limit_registration_per_email,
            account=account,
        )

    return [
        # The API's checkout first: the first limit a request matches is its one, and a flash
        # sale's requests are checkouts.
        RateLimit(
            "checkout",
            "POST",
            "/store/carts/{cart_id}/checkout",
            per_address=settings.rate_limit_checkout_per_address,
            per_account=settings.rate_limit_checkout_per_cart,
            account=path_parameter("cart_id"),
            # A queue ticket's holder comes back as often as Retry-After says (up to once a
            # second), and a ticket lets it in once: its returns do not spend the cart's
            # allowance, which is there against many checkouts of one cart. Without a waiting
            # room the header means nothing, and excuses nothing.
            unless_header=None if settings.checkout_concurrency is None else "Queue-Ticket",
        ),
        login("/auth/token", form_field("username")),
        # The operations page's and the storefront's forms: the same allowances as the API's
        # doors they stand beside.
        login("/ops/login", form_field("email")),
        login("/{storefront}/account/login", form_field("email")),
        registration("/store/customers", json_field("email")),
        registration("/{storefront}/account/register", form_field("email")),
        RateLimit(
            "checkout",
            "POST",
            "/{storefront}/checkout",
            per_address=settings.rate_limit_checkout_per_address,
        ),
    ]


def install(
    app: FastAPI,
    settings: Settings,
    *,
    limiter: Limiter | None = None,
    refusal_pages: Middleware | None = None,
) -> None:
    """`limiter` keeps the rate limits' buckets: this process's own unless one is given.
    `refusal_pages`, around the middlewares that refuse, turns their refusals into pages
    where a browser asked for one (the storefront's)."""
    # Starlette runs the middleware added last first, hence the reverse order.
    app.add_middleware(RateLimits, limits=rate_limits(settings), limiter=limiter or RateLimiter())
    app.add_middleware(CardNumberGuard)
    app.add_middleware(NulCharacterGuard)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Queue-Ticket"],
            expose_headers=["Retry-After"],
            # Bearer tokens travel in a header, never in cookies.
            allow_credentials=False,
            max_age=600,
        )
    if refusal_pages is not None:
        app.add_middleware(refusal_pages.cls, *refusal_pages.args, **refusal_pages.kwargs)
    docs = [app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url]
    app.add_middleware(
        SecurityHeaders,
        docs_paths=[path for path in docs if path],
        behind_https=settings.behind_https,
    )
