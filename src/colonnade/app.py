"""The composition root: chooses adapters from settings and assembles modules into one app.

This is the only place that knows every module; modules meet each other here, through
their public services, and nowhere else.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import structlog
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from colonnade import migrations
from colonnade.kernel import inbox
from colonnade.kernel.bus import InProcessBus
from colonnade.kernel.clock import Clock, SystemClock
from colonnade.kernel.crypto import Keyring, decode_master_key
from colonnade.kernel.db import Database
from colonnade.kernel.outbox import OutboxRelay
from colonnade.kernel.redaction import configure_logging
from colonnade.kernel.settings import Settings
from colonnade.modules import MODULES
from colonnade.modules.cart import api as cart_api
from colonnade.modules.cart.service import CartService
from colonnade.modules.catalog import api as catalog_api
from colonnade.modules.catalog.service import CatalogService
from colonnade.modules.checkout import api as checkout_api
from colonnade.modules.checkout.service import CheckoutService
from colonnade.modules.compliance import api as compliance_api
from colonnade.modules.compliance.service import AuditLog, ComplianceService
from colonnade.modules.identity import api as identity_api
from colonnade.modules.identity.domain import LockoutPolicy
from colonnade.modules.identity.service import IdentityService
from colonnade.modules.inventory import api as inventory_api
from colonnade.modules.inventory.service import InventoryService
from colonnade.modules.orders import api as orders_api
from colonnade.modules.orders.events import OrderCancelled
from colonnade.modules.orders.service import OrdersService
from colonnade.modules.payments import api as payments_api
from colonnade.modules.payments.adapters.stripe_processor import StripeProcessor
from colonnade.modules.payments.adapters.test_gateway import TestGateway
from colonnade.modules.payments.service import PaymentProvider, PaymentsService
from colonnade.modules.pricing import api as pricing_api
from colonnade.modules.pricing.service import PricingService
from colonnade.ops.maintenance import Job, Maintenance
from colonnade.web import hardening, problems
from colonnade.web.problems import problem_response

log = structlog.get_logger(__name__)


@dataclass
class Shop:
    """Everything one process runs, assembled once."""

    settings: Settings
    db: Database
    keyring: Keyring
    bus: InProcessBus
    relay: OutboxRelay
    identity: IdentityService
    catalog: CatalogService
    pricing: PricingService
    inventory: InventoryService
    carts: CartService
    payments: PaymentsService
    orders: OrdersService
    checkout: CheckoutService
    compliance: ComplianceService
    maintenance: Maintenance


def assemble(settings: Settings, clock: Clock | None = None) -> Shop:
    clock = clock or SystemClock()
    db = Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        sqlite_synchronous=settings.sqlite_synchronous,
    )
    bus = InProcessBus()
    if settings.secret_key is None:
        # Development only (production refuses to start without one): tokens die with the process.
        log.warning("settings.ephemeral_secret_key")
        secret = secrets.token_urlsafe(48)
    else:
        secret = settings.secret_key.get_secret_value()
    keyring = Keyring(db, _master_key(settings), clock=clock)
    catalog = CatalogService(
        db, clock=clock, reference_cache_seconds=settings.reference_cache_seconds
    )
    pricing = PricingService(
        db,
        base_currency=settings.base_currency,
        reference_cache_seconds=settings.reference_cache_seconds,
    )
    inventory = InventoryService(
        db,
        clock=clock,
        default_warehouse=settings.default_warehouse,
        reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
    )
    carts = CartService(
        db,
        pricing=pricing,
        catalog=catalog,
        clock=clock,
        idle_ttl=timedelta(seconds=settings.cart_idle_seconds),
    )
    payments = PaymentsService(db, provider=_payment_provider(settings, db, clock), clock=clock)
    orders = OrdersService(db, keyring=keyring, clock=clock)
    checkout = CheckoutService(
        db,
        carts=carts,
        catalog=catalog,
        inventory=inventory,
        pricing=pricing,
        payments=payments,
        orders=orders,
        keyring=keyring,
        clock=clock,
    )
    bus.subscribe(
        OrderCancelled.event_type,
        "checkout.settle-cancellation",
        inbox.once(
            db,
            "checkout.settle-cancellation",
            lambda envelope: checkout.settle_cancellation(envelope.payload["order_id"]),
        ),
    )
    identity = IdentityService(
        db,
        keyring=keyring,
        secret_key=secret,
        access_token_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_token_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        lockout=LockoutPolicy(
            threshold=settings.login_lockout_threshold,
            window=timedelta(seconds=settings.login_lockout_window_seconds),
            first_lock=timedelta(seconds=settings.login_lock_seconds),
            longest_lock=timedelta(seconds=settings.login_lock_max_seconds),
        ),
        clock=clock,
    )
    compliance = ComplianceService(
        db,
        audit=AuditLog(db, keyring=keyring, clock=clock),
        accounts=identity,
        orders=orders,
        carts=carts,
        clock=clock,
        guest_data_retention=timedelta(days=settings.guest_data_retention_days),
    )
    recover_after = timedelta(seconds=settings.checkout_recovery_seconds)
    maintenance = Maintenance(
        [
            Job("expire-reservations", 5, inventory.expire_due),
            Job("expire-carts", 60, carts.expire_idle),
            Job("recover-checkouts", 10, lambda: checkout.recover(recover_after)),
            Job("reconcile-payments", 30, payments.reconcile),
            Job("erase-guest-data", 3600, compliance.erase_guest_data),
            Job("prune-sign-ins", 3600, identity.prune),
            # New values go under the newest key within this long of `colonnade keys rotate`.
            Job("refresh-keys", 30, keyring.refresh),
        ]
    )
    return Shop(
        settings=settings,
        db=db,
        keyring=keyring,
        bus=bus,
        relay=OutboxRelay(db, bus, poll_seconds=settings.outbox_poll_seconds),
        identity=identity,
        catalog=catalog,
        pricing=pricing,
        inventory=inventory,
        carts=carts,
        payments=payments,
        orders=orders,
        checkout=checkout,
        compliance=compliance,
        maintenance=maintenance,
    )


# Development only: production refuses to start without COLONNADE_ENCRYPTION_KEY. A fixed key
# (not a random one) so a development database stays readable across restarts.
_DEVELOPMENT_MASTER_KEY = "Y29sb25uYWRlLWRldmVsb3BtZW50LW9ubHkta2V5ISE"


def _master_key(settings: Settings) -> bytes:
    if settings.encryption_key is None:
        log.warning("settings.development_encryption_key")
        return decode_master_key(_DEVELOPMENT_MASTER_KEY)
    return decode_master_key(settings.encryption_key.get_secret_value())


def _payment_provider(settings: Settings, db: Database, clock: Clock) -> PaymentProvider:
    if settings.payment_provider == "stripe" and settings.stripe_api_key is not None:
        return StripeProcessor(
            settings.stripe_api_key.get_secret_value(),
            timeout_seconds=settings.stripe_timeout_seconds,
        )
    return TestGateway(db, clock=clock)


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    shop = assemble(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await migrations.upgrade(shop.db, MODULES)
        await shop.keyring.load()
        # One process owns this database in the embedded shape: whatever checkout was midway
        # when it last stopped is finished or undone before new ones start.
        orphaned_after = timedelta(seconds=shop.settings.checkout_recovery_seconds)
        await shop.checkout.recover(timedelta(0) if shop.db.is_sqlite else orphaned_after)
        shop.relay.start()
        shop.maintenance.start()
        try:
            yield
        finally:
            await shop.maintenance.stop()
            await shop.relay.stop()
            await shop.db.dispose()

    app = FastAPI(
        title="Colonnade",
        version="0.1.0",
        description="Storefront and admin API of a Colonnade shop.",
        lifespan=lifespan,
    )
    app.state.shop = shop
    app.state.authenticate = shop.identity.authenticate
    problems.install(app)
    _health_and_metrics(app, shop)
    app.include_router(identity_api.router(shop.identity))
    app.include_router(catalog_api.router(shop.catalog, shop.pricing))
    app.include_router(pricing_api.router(shop.pricing))
    app.include_router(inventory_api.router(shop.inventory, shop.catalog.sku_exists))
    app.include_router(cart_api.router(shop.carts))
    app.include_router(checkout_api.router(shop.checkout))
    app.include_router(orders_api.router(shop.orders, shop.checkout.settle_cancellation))
    app.include_router(payments_api.router(shop.payments))
    app.include_router(compliance_api.router(shop.compliance))
    # Innermost of the middlewares: it sees the principal the route authenticated.
    app.add_middleware(compliance_api.AuditTrail, audit=shop.compliance.audit)
    hardening.install(app, shop.settings)
    return app


def _health_and_metrics(app: FastAPI, shop: Shop) -> None:
    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """The process answers."""
        return {"status": "live"}

    @app.get("/health/ready", tags=["health"], responses={503: {"description": "not ready"}})
    async def ready() -> Response:
        """The process can serve: its database answers and its outbox relay runs."""
        checks = {"database": "ok", "outbox_relay": "ok" if shop.relay.running else "stopped"}
        try:
            async with asyncio.timeout(2), shop.db.reading() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - whatever fails, the answer is "not ready"
            checks["database"] = f"failing: {type(error).__name__}"
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        failing = ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok")
        return problem_response(
            {
                "type": "https://colonnade.dev/problems/not-ready",
                "title": "Not ready",
                "status": 503,
                "detail": f"not ready: {failing}",
                "code": "not_ready",
                "checks": checks,
            }
        )

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics in the text exposition format."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
