"""The composition root: chooses adapters from settings and assembles modules into one app.

This is the only place that knows every module; modules meet each other here, through
their public services, and nowhere else.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import structlog
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace.export import SpanExporter
from redis.asyncio import Redis
from sqlalchemy import make_url
from starlette.middleware import Middleware

from colonnade import migrations
from colonnade.kernel import heap, inbox, shared_state, tracing
from colonnade.kernel.bus import EventBus, InProcessBus
from colonnade.kernel.change_fanout import RedisFanout
from colonnade.kernel.changes import Changes
from colonnade.kernel.clock import Clock, SystemClock
from colonnade.kernel.crypto import Keyring, decode_master_key
from colonnade.kernel.db import Database
from colonnade.kernel.dead_letters import DeadLetters
from colonnade.kernel.jetstream import JetStreamBus
from colonnade.kernel.metrics import shop_registry
from colonnade.kernel.outbox import OutboxRelay
from colonnade.kernel.pruning import Pruning
from colonnade.kernel.redaction import configure_logging
from colonnade.kernel.remote import Answering, Calling, ModuleLinks
from colonnade.kernel.settings import Settings
from colonnade.modules import MODULES
from colonnade.modules.analytics import api as analytics_api
from colonnade.modules.analytics.service import EVENT_TYPES as ANALYTICS_EVENTS
from colonnade.modules.analytics.service import AnalyticsService
from colonnade.modules.cart import api as cart_api
from colonnade.modules.cart.service import CartService
from colonnade.modules.catalog import api as catalog_api
from colonnade.modules.catalog import remote as catalog_remote
from colonnade.modules.catalog.pages import StorePages
from colonnade.modules.catalog.remote import RemoteCatalog
from colonnade.modules.catalog.service import CatalogService
from colonnade.modules.catalog.warming import SaleWarming
from colonnade.modules.checkout import api as checkout_api
from colonnade.modules.checkout.admission_limit import FixedLimit, LearnedLimit
from colonnade.modules.checkout.service import CheckoutService
from colonnade.modules.checkout.shared_waiting_room import SharedQueue
from colonnade.modules.checkout.waiting_room import WaitingRoom
from colonnade.modules.compliance import api as compliance_api
from colonnade.modules.compliance.events import CustomerDataErased
from colonnade.modules.compliance.service import AuditLog, ComplianceService
from colonnade.modules.identity import api as identity_api
from colonnade.modules.identity.domain import LockoutPolicy
from colonnade.modules.identity.service import IdentityService
from colonnade.modules.inventory import api as inventory_api
from colonnade.modules.inventory import remote as inventory_remote
from colonnade.modules.inventory.remote import RemoteInventory
from colonnade.modules.inventory.service import InventoryService
from colonnade.modules.notifications.adapters.log_mailer import LogMailer
from colonnade.modules.notifications.service import NotificationsService
from colonnade.modules.orders import api as orders_api
from colonnade.modules.orders.events import OrderCancelled, OrderPaid
from colonnade.modules.orders.service import OrdersService
from colonnade.modules.payments import api as payments_api
from colonnade.modules.payments.adapters.shared_circuit import SharedCircuitBreaker
from colonnade.modules.payments.adapters.stripe_processor import StripeProcessor
from colonnade.modules.payments.adapters.test_gateway import TestGateway
from colonnade.modules.payments.circuit import BreakerPolicy, CircuitBreaker
from colonnade.modules.payments.resilience import Breaker, LocalBreaker, ResilientProvider
from colonnade.modules.payments.service import PaymentProvider, PaymentsService
from colonnade.modules.pricing import api as pricing_api
from colonnade.modules.pricing import remote as pricing_remote
from colonnade.modules.pricing.remote import RemotePricing
from colonnade.modules.pricing.service import PricingService
from colonnade.modules.promotions import api as promotions_api
from colonnade.modules.promotions.service import PromotionsService
from colonnade.ops import dead_letters_api, health, metrics_port
from colonnade.ops import page as ops_page
from colonnade.ops.checks import check_stock_ledger, count_dead_letters
from colonnade.ops.maintenance import Job, Maintenance
from colonnade.ops.minutes import MinuteSampler
from colonnade.ops.sampler import Sampler
from colonnade.ops.slo import CHECKOUT_ROUTE, OBJECTIVES, AnsweredWithin
from colonnade.storefront import pages as storefront_pages
from colonnade.storefront import site as storefront_site
from colonnade.storefront.refusals import RefusalPages
from colonnade.web import hardening, links, problems, text
from colonnade.web.caching import PrivateUnlessPublic
from colonnade.web.limits import Limiter, RateLimiter
from colonnade.web.observability import RequestObservation
from colonnade.web.shared_limits import SharedRateLimiter
from colonnade.web.tracing import RequestTracing

log = structlog.get_logger(__name__)


@dataclass
class Shop:
    """Everything one process runs, assembled once."""

    settings: Settings
    db: Database
    keyring: Keyring
    bus: EventBus
    relay: OutboxRelay
    dead_letters: DeadLetters
    identity: IdentityService
    catalog: CatalogService
    pricing: PricingService
    promotions: PromotionsService
    inventory: InventoryService
    carts: CartService
    payments: PaymentsService
    orders: OrdersService
    checkout: CheckoutService
    compliance: ComplianceService
    notifications: NotificationsService
    analytics: AnalyticsService
    maintenance: Maintenance
    changes: Changes
    pages: StorePages
    # Reads ahead the store pages a scheduled sale changes, before it starts.
    warming: SaleWarming
    limiter: Limiter
    # What processes and replicas share, when COLONNADE_REDIS_URL is set.
    redis: Redis | None
    # Calls between module processes: those this one answers and makes (none embedded).
    links: ModuleLinks
    # Whether the catalog knows a SKU, asked where the catalog is.
    sku_exists: Callable[[str], Awaitable[bool]]
    # A SKU's stock on hand set where inventory is (the demo shop's loading).
    set_on_hand: Callable[[str, int], Awaitable[object]]
    # What signs the shop's tokens and tickets (and, derived from it, storefront sessions).
    secret: str
    # Checkouts beyond COLONNADE_CHECKOUT_CONCURRENCY wait here (None: none wait).
    waiting_room: WaitingRoom | None = None


def assemble(settings: Settings, clock: Clock | None = None) -> Shop:
    clock = clock or SystemClock()
    db = Database(
        database_url(settings),
        pool_size=settings.database_pool_size,
        sqlite_synchronous=settings.sqlite_synchronous,
    )
    if tracing.enabled():
        tracing.trace_statements(db.engine)
    dead_letters = DeadLetters(db, clock=clock)
    bus = _event_bus(settings, dead_letters)
    if settings.secret_key is None:
        # Development only (production refuses to start without one): tokens die with the process.
        log.warning("settings.ephemeral_secret_key")
        secret = secrets.token_urlsafe(48)
    else:
        secret = settings.secret_key.get_secret_value()
    keyring = Keyring(db, _master_key(settings), clock=clock)
    redis = (
        None
        if settings.redis_url is None
        else shared_state.connect(
            settings.redis_url, timeout_seconds=settings.redis_timeout_seconds
        )
    )
    changes = Changes(
        db,
        poll_seconds=settings.changes_poll_seconds,
        fanout=None if redis is None else RedisFanout(redis, prefix=settings.redis_key_prefix),
    )
    catalog = CatalogService(
        db, clock=clock, reference_cache_seconds=settings.reference_cache_seconds, changes=changes
    )
    remote = _remote_ports(settings)
    # Where the catalog places SKUs, asked of it where it is.
    placements = (remote.catalog or catalog).placements
    pricing = PricingService(
        db,
        base_currency=settings.base_currency,
        clock=clock,
        reference_cache_seconds=settings.reference_cache_seconds,
        changes=changes,
        placements=placements,
    )
    inventory = InventoryService(
        db,
        clock=clock,
        default_warehouse=settings.default_warehouse,
        reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
    )
    orders = OrdersService(db, keyring=keyring, clock=clock)
    promotions = PromotionsService(
        db,
        clock=clock,
        reference_cache_seconds=settings.reference_cache_seconds,
        changes=changes,
        placements=placements,
        past_buyers=orders.customers_with_orders,
    )
    links = _module_links(
        settings, db, remote, pricing=pricing, catalog=catalog, inventory=inventory
    )
    carts = CartService(
        db,
        pricing=remote.pricing or pricing,
        catalog=remote.catalog or catalog,
        clock=clock,
        promotions=promotions,
        idle_ttl=timedelta(seconds=settings.cart_idle_seconds),
    )
    pages = StorePages(
        catalog,
        pricing,
        (remote.inventory or inventory).availability,
        size=settings.store_pages,
        stock_seconds=settings.store_stock_seconds,
        clock=clock,
    )
    pages.listen(changes)
    warming = SaleWarming(
        pages,
        catalog,
        pricing,
        lead=timedelta(minutes=settings.sale_warm_minutes),
        clock=clock,
    )
    payments = PaymentsService(
        db, provider=_payment_provider(settings, db, clock, redis), clock=clock
    )
    checkout = CheckoutService(
        db,
        carts=carts,
        catalog=remote.catalog or catalog,
        inventory=inventory,
        pricing=remote.pricing or pricing,
        promotions=promotions,
        payments=payments,
        orders=orders,
        keyring=keyring,
        clock=clock,
        stock=remote.inventory,
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
    notifications = NotificationsService(
        db, keyring=keyring, orders=orders, mailer=LogMailer(), clock=clock
    )
    guest_retention = timedelta(days=settings.guest_data_retention_days)
    bus.subscribe_batch(
        OrderPaid.event_type,
        "notifications.confirm-order",
        inbox.guard_batch(db, "notifications.confirm-order", notifications.confirm_orders),
    )
    bus.subscribe(
        CustomerDataErased.event_type,
        "promotions.forget-customer",
        inbox.guard(
            db,
            "promotions.forget-customer",
            lambda envelope, uow: promotions.forget_customer(envelope.payload["customer_id"], uow),
        ),
    )
    bus.subscribe(
        CustomerDataErased.event_type,
        "notifications.forget-customer",
        inbox.guard(
            db,
            "notifications.forget-customer",
            lambda envelope, uow: notifications.forget_customer(
                envelope.payload["customer_id"], uow
            ),
        ),
    )
    analytics = AnalyticsService(
        db, analytics_directory(settings), placements=placements, clock=clock
    )
    take_facts = inbox.guard_batch(db, "analytics.facts", analytics.record)
    for event_type in ANALYTICS_EVENTS:
        bus.subscribe_batch(event_type, "analytics.facts", take_facts)
    recover_after = timedelta(seconds=settings.checkout_recovery_seconds)
    pruning = Pruning(
        db,
        outbox_retention=timedelta(days=settings.outbox_retention_days),
        inbox_retention=timedelta(days=settings.inbox_retention_days),
        clock=clock,
    )
    maintenance = Maintenance(
        [
            Job("expire-reservations", 5, inventory.expire_due),
            Job("expire-carts", 60, carts.expire_idle),
            Job("recover-checkouts", 10, lambda: checkout.recover(recover_after)),
            Job("reconcile-payments", 30, payments.reconcile),
            Job("erase-guest-data", 3600, compliance.erase_guest_data),
            Job(
                "forget-guest-recipients",
                3600,
                lambda: notifications.forget_guest_recipients(clock.now() - guest_retention),
            ),
            Job("prune-sign-ins", 3600, identity.prune),
            # New values go under the newest key within this long of `colonnade keys rotate`.
            Job("refresh-keys", 30, keyring.refresh),
            # Stuck outbox rows need no job: the relay claims a row again once its lease ends.
            Job("prune-outbox", 3600, pruning.prune_outbox),
            Job("prune-inbox", 3600, pruning.prune_inbox),
            Job("count-running-promotions", 60, promotions.count_running),
            Job("count-dead-letters", 60, lambda: count_dead_letters(dead_letters.waiting)),
            Job("check-stock-ledger", 300, lambda: check_stock_ledger(inventory.check_ledger)),
        ]
        + (
            [Job("seal-analytics", settings.analytics_seal_seconds, analytics.seal)]
            if settings.analytics_seal_seconds
            else []
        )
    )
    return Shop(
        settings=settings,
        db=db,
        keyring=keyring,
        bus=bus,
        relay=OutboxRelay(
            db,
            bus,
            poll_seconds=settings.outbox_poll_seconds,
            max_attempts=settings.outbox_max_attempts,
        ),
        dead_letters=dead_letters,
        identity=identity,
        catalog=catalog,
        pricing=pricing,
        promotions=promotions,
        inventory=inventory,
        carts=carts,
        payments=payments,
        orders=orders,
        checkout=checkout,
        compliance=compliance,
        notifications=notifications,
        analytics=analytics,
        maintenance=maintenance,
        changes=changes,
        pages=pages,
        warming=warming,
        limiter=(
            RateLimiter()
            if redis is None
            else SharedRateLimiter(redis, prefix=settings.redis_key_prefix, fallback=RateLimiter())
        ),
        redis=redis,
        links=links,
        sku_exists=(remote.catalog or catalog).sku_exists,
        set_on_hand=(remote.inventory or inventory).set_on_hand,
        secret=secret,
        waiting_room=waiting_room(settings, secret, redis),
    )


def waiting_room(settings: Settings, secret: str, redis: Redis | None) -> WaitingRoom | None:
    """Checkout's waiting room, when the shop has one; shared through Redis when there is."""
    if settings.checkout_concurrency is None:
        return None
    limit: FixedLimit | LearnedLimit
    if settings.checkout_concurrency == "auto":
        (bound,) = (
            objective.indicator.seconds
            for objective in OBJECTIVES
            if isinstance(objective.indicator, AnsweredWithin)
            and objective.indicator.route == CHECKOUT_ROUTE
        )
        # Aim under the objective's bound, so the tail that the provider owns fits in it.
        limit = LearnedLimit(target_seconds=0.8 * bound)
    else:
        limit = FixedLimit(settings.checkout_concurrency)
    # Longer than the longest Retry-After (30 s): a called holder back when told finds its
    # call standing, rather than its place passed on while it was away.
    call_seconds = 45.0
    return WaitingRoom(
        limit,
        secret,
        ticket_seconds=settings.queue_ticket_seconds,
        call_seconds=call_seconds,
        shared=(
            None
            if redis is None
            else SharedQueue(redis, prefix=settings.redis_key_prefix, call_seconds=call_seconds)
        ),
    )


def analytics_directory(settings: Settings) -> Path:
    """Where the analytics warehouse's files go: COLONNADE_ANALYTICS_DIR, else beside the
    SQLite database file, else colonnade-analytics/<database name> for a server database."""
    if settings.analytics_dir is not None:
        return Path(settings.analytics_dir)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(url.database).expanduser()
        return database.with_name(database.name + ".analytics")
    return Path("colonnade-analytics") / (url.database or "default")


def remote_modules(settings: Settings) -> frozenset[str]:
    """The modules this process calls in other processes: those COLONNADE_REMOTE_MODULES
    names (of pricing, catalog and inventory, whose ports have a remote adapter), and, when
    inventory has a database of its own, inventory (or, in inventory's own process, the
    catalog)."""
    named = frozenset(m.strip() for m in settings.remote_modules.split(",") if m.strip())
    unknown = sorted(named - set(REMOTE_PORTS))
    if unknown:
        raise ValueError(
            f"COLONNADE_REMOTE_MODULES: no remote adapter for {', '.join(unknown)}"
            f" (there are for {', '.join(sorted(REMOTE_PORTS))})"
        )
    if not settings.inventory_elsewhere:
        return named
    if "inventory" in modules_served(settings):
        # Inventory's own process: the catalog, which knows the SKUs it stocks, is where the
        # shop's database is.
        return named | {"catalog"}
    return named | {"inventory"}


def database_url(settings: Settings) -> str:
    """The database this process keeps its modules' rows in: inventory's own for the process
    that serves inventory when it has one (COLONNADE_INVENTORY_DATABASE_URL), which then serves
    nothing else; the shop's for every other."""
    served = modules_served(settings)
    if not settings.inventory_elsewhere or "inventory" not in served:
        return settings.database_url
    others = sorted(served - {"inventory"})
    if others:
        raise ValueError(
            "COLONNADE_INVENTORY_DATABASE_URL: inventory on a database of its own is served by a"
            f" process of its own (--modules inventory), not with {', '.join(others)}"
        )
    assert settings.inventory_database_url is not None
    return settings.inventory_database_url


_REMOTES = (pricing_remote, catalog_remote, inventory_remote)
# The modules whose ports other processes may call, with the methods they answer, and the
# module that calls each.
REMOTE_PORTS = {remote_module.MODULE: remote_module.ANSWERED for remote_module in _REMOTES}
REMOTE_CALLERS = {remote_module.MODULE: remote_module.CALLED_BY for remote_module in _REMOTES}


@dataclass(frozen=True)
class _Remote:
    """The ports this process calls in other processes (None: called here)."""

    calls: list[Calling]
    pricing: RemotePricing | None
    catalog: RemoteCatalog | None
    inventory: RemoteInventory | None


def _remote_ports(settings: Settings) -> _Remote:
    """The ports COLONNADE_REMOTE_MODULES names, in other processes."""
    remote = remote_modules(settings)
    namespace, seconds = settings.bus_namespace, settings.remote_call_seconds
    calls = {
        module.MODULE: module.calling(namespace, seconds)
        for module in _REMOTES
        if module.MODULE in remote
    }
    return _Remote(
        calls=list(calls.values()),
        pricing=RemotePricing(calls["pricing"]) if "pricing" in calls else None,
        catalog=RemoteCatalog(calls["catalog"]) if "catalog" in calls else None,
        inventory=RemoteInventory(calls["inventory"]) if "inventory" in calls else None,
    )


def _module_links(
    settings: Settings,
    db: Database,
    remote: _Remote,
    *,
    pricing: PricingService,
    catalog: CatalogService,
    inventory: InventoryService,
) -> ModuleLinks:
    """This process's end of the calls: the ports it calls elsewhere and, on a NATS bus,
    the modules it serves that others may call, answering."""
    called = {calls.module for calls in remote.calls}
    here: dict[str, object] = {"pricing": pricing, "catalog": catalog, "inventory": inventory}
    answering = (
        [
            Answering(module, here[module], methods, db, namespace=settings.bus_namespace)
            for module, methods in sorted(REMOTE_PORTS.items())
            if module in modules_served(settings) and module not in called
        ]
        if settings.bus_url is not None
        else []
    )
    return ModuleLinks(settings.bus_url, answering, remote.calls)


def _event_bus(settings: Settings, dead_letters: DeadLetters) -> EventBus:
    if settings.bus_url is None:
        return InProcessBus()
    return JetStreamBus(
        settings.bus_url,
        dead_letters=dead_letters,
        namespace=settings.bus_namespace,
        max_deliver=settings.bus_max_deliver,
        retention=timedelta(days=settings.outbox_retention_days),
    )


# Development only: production refuses to start without COLONNADE_ENCRYPTION_KEY. A fixed key
# (not a random one) so a development database stays readable across restarts.
_DEVELOPMENT_MASTER_KEY = "Y29sb25uYWRlLWRldmVsb3BtZW50LW9ubHkta2V5ISE"


def _master_key(settings: Settings) -> bytes:
    if settings.encryption_key is None:
        log.warning("settings.development_encryption_key")
        return decode_master_key(_DEVELOPMENT_MASTER_KEY)
    return decode_master_key(settings.encryption_key.get_secret_value())


def _stripe(settings: Settings) -> bool:
    """Whether cards are charged at Stripe (else at the test gateway)."""
    return settings.payment_provider == "stripe" and settings.stripe_api_key is not None


def _payment_provider(
    settings: Settings, db: Database, clock: Clock, redis: Redis | None
) -> PaymentProvider:
    provider: PaymentProvider
    if _stripe(settings):
        assert settings.stripe_api_key is not None
        provider = StripeProcessor(
            settings.stripe_api_key.get_secret_value(),
            timeout_seconds=settings.stripe_timeout_seconds,
        )
    else:
        provider = TestGateway(
            db,
            clock=clock,
            latency=settings.test_gateway_latency_seconds,
            timeout_delay=settings.test_gateway_no_answer_seconds,
        )
    policy = BreakerPolicy(
        consecutive_failures=settings.payment_breaker_failures,
        failure_rate=settings.payment_breaker_failure_rate,
        minimum_calls=settings.payment_breaker_minimum_calls,
        window=timedelta(seconds=settings.payment_breaker_window_seconds),
        cooldown=timedelta(seconds=settings.payment_breaker_cooldown_seconds),
    )
    breaker: Breaker
    if redis is None:
        breaker = LocalBreaker(CircuitBreaker(policy, clock))
    else:
        breaker = SharedCircuitBreaker(
            redis,
            policy,
            clock,
            prefix=settings.redis_key_prefix,
            # A trial call ends within the timeout; one whose process died frees the next
            # trial after that, or after another cool-down, as a failed trial would.
            trial_lease=max(policy.cooldown, timedelta(seconds=settings.payment_timeout_seconds)),
        )
    return ResilientProvider(
        provider,
        breaker=breaker,
        timeout_seconds=settings.payment_timeout_seconds,
        retries=settings.payment_retries,
        backoff_seconds=settings.payment_retry_backoff_seconds,
    )


def create_app(
    settings: Settings | None = None,
    *,
    migrate: bool = True,
    span_exporter: SpanExporter | None = None,
    metrics_listener: bool = False,
    clock: Clock | None = None,
) -> FastAPI:
    """The shop as an ASGI app; `span_exporter` receives its spans instead of an OTLP collector.
    With `metrics_listener` the app, once started, serves its metrics port too (the one process
    of the shop; with several workers their parent serves it). `clock` is the shop's time
    (the system's by default; tests move a settable one)."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    tracing.configure(settings, exporter=span_exporter)
    serving = modules_served(settings)
    shop = assemble(settings, clock)
    sampler = Sampler(
        every_seconds=settings.ops_sample_seconds,
        history_points=settings.ops_history_points,
        window_scale=settings.slo_window_scale,
        # With several workers the page and the alerts judge the whole shop, not one worker.
        registry=shop_registry(),
    )
    # What this process answers, per route and minute, into the warehouse beside the facts.
    minutes = (
        MinuteSampler(shop.analytics.keep_minutes)
        if settings.analytics_route_minutes and settings.analytics_seal_seconds
        else None
    )
    readiness = health.Readiness(
        shop.db,
        shop.bus,
        shop.relay if settings.serve_relay else None,
        timeout_seconds=settings.readiness_timeout_seconds,
        relay_stuck_seconds=settings.outbox_stuck_seconds,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await migrations.upgrade(shop.db, MODULES)
        await shop.keyring.load()
        # One process owns this database in the embedded shape: whatever checkout was midway
        # when it last stopped is finished or undone before new ones start.
        orphaned_after = timedelta(seconds=shop.settings.checkout_recovery_seconds)
        await shop.checkout.recover(timedelta(0) if shop.db.is_sqlite else orphaned_after)
        await shop.bus.open(
            consumes=lambda consumer: settings.serve_consumers and module_of(consumer) in serving
        )
        await shop.links.open()
        if settings.serve_relay:
            shop.relay.start()
        shop.maintenance.start()
        sampler.start()
        if minutes is not None:
            minutes.start()
        shop.changes.start()
        shop.pages.start()
        if "catalog" in serving:
            # Only a process serving the store's pages reads them ahead of a sale.
            shop.warming.start()
        if shop.settings.settle_heap:
            heap.settle_after_start()
        listener = (
            metrics_port.serve_metrics(settings, checks=readiness.checks)
            if metrics_listener
            else None
        )
        try:
            yield
        finally:
            if listener is not None:
                # Off the loop: a details request in flight needs the loop to finish.
                await asyncio.to_thread(listener.stop)
            await shop.warming.stop()
            await shop.pages.stop()
            await shop.changes.stop()
            await sampler.stop()
            if minutes is not None:
                await minutes.stop()
            await shop.maintenance.stop()
            if settings.serve_relay:
                await shop.relay.stop(drain_seconds=shop.settings.outbox_drain_seconds)
            await shop.links.close()
            await shop.bus.close()
            if shop.redis is not None:
                await shop.redis.aclose()
            await shop.db.dispose()
            tracing.shutdown()

    app = FastAPI(
        title="Colonnade",
        version="0.1.0",
        description="Storefront and admin API of a Colonnade shop.",
        lifespan=lifespan,
        # Colonnade traces and measures its requests itself (web/observability.py,
        # web/tracing.py); FastAPI's own instrumentation would look up the global
        # providers on every request to find them unset.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Operation ids are the route functions' names (open_cart, checkout...): what generated
        # clients call their methods, and what OpenAPI links point at.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.shop = shop
    app.state.authenticate = shop.identity.authenticate
    app.state.sampler = sampler
    app.state.minutes = minutes
    problems.install(app)
    # After problems: links are added to the document problems builds.
    links.install(app)
    text.declare(app)
    _health_and_metrics(app, readiness, settings)
    # Routes are matched in order: browsing first (most of the traffic), then buying.
    routers: list[tuple[str, Callable[[], APIRouter]]] = [
        (
            "catalog",
            lambda: catalog_api.router(shop.catalog, shop.pricing, shop.pages, shop.warming),
        ),
        ("cart", lambda: cart_api.router(shop.carts)),
        ("checkout", lambda: checkout_api.router(shop.checkout)),
        ("identity", lambda: identity_api.router(shop.identity)),
        ("pricing", lambda: pricing_api.router(shop.pricing)),
        ("promotions", lambda: promotions_api.router(shop.promotions)),
        ("inventory", lambda: inventory_api.router(shop.inventory, shop.sku_exists)),
        (
            "orders",
            lambda: orders_api.router(shop.orders, shop.checkout.settle_cancellation),
        ),
        ("payments", lambda: payments_api.router(shop.payments)),
        ("compliance", lambda: compliance_api.router(shop.compliance)),
        ("analytics", lambda: analytics_api.router(shop.analytics)),
    ]
    for module, router in routers:
        if module in serving:
            app.include_router(router())
    app.include_router(dead_letters_api.router(shop.dead_letters))
    ops_page.install(
        app,
        sampler=sampler,
        identity=shop.identity,
        analytics=shop.analytics,
        clock=clock or SystemClock(),
        behind_https=settings.behind_https,
    )
    store = storefront_pages.Pages(
        storefront_pages.Services(
            catalog=shop.catalog,
            pricing=shop.pricing,
            shelves=shop.pages,
            carts=shop.carts,
            checkout=shop.checkout,
            identity=shop.identity,
            orders=shop.orders,
            compliance=shop.compliance,
            room=shop.waiting_room,
            test_cards=not _stripe(settings),
            home_currency=settings.base_currency,
        ),
        secret=shop.secret,
        behind_https=settings.behind_https,
    )
    # Last: its last route answers whatever else a storefront's prefix leads to.
    storefront_site.install(app, store)
    # Innermost of the middlewares: it sees the principal the route authenticated.
    app.add_middleware(compliance_api.AuditTrail, audit=shop.compliance.audit)
    if shop.waiting_room is not None and "checkout" in serving:
        app.add_middleware(checkout_api.QueueDoor, room=shop.waiting_room, routes=app.router.routes)
    hardening.install(
        app,
        shop.settings,
        limiter=shop.limiter,
        refusal_pages=Middleware(RefusalPages, pages=store),
    )
    # Around the protective middlewares: what they refuse is private too.
    app.add_middleware(PrivateUnlessPublic)
    # Around the protective middlewares: its clock and counts include them and what they refuse.
    app.add_middleware(RequestObservation, routes=app.router.routes)
    if tracing.enabled():
        # Around everything, so the request's logs and metrics carry its trace.
        app.add_middleware(RequestTracing)
    return app


def modules_served(settings: Settings) -> frozenset[str]:
    """The modules whose routes and consumers this process serves: COLONNADE_SERVE_MODULES,
    or every one (but inventory, when its own database gives it a process of its own).
    Their services all run here regardless, as the in-process adapters of the module ports
    on this process's database."""
    if not settings.serve_modules:
        return frozenset(MODULES) - ({"inventory"} if settings.inventory_elsewhere else set())
    chosen = frozenset(m.strip() for m in settings.serve_modules.split(",") if m.strip())
    unknown = sorted(chosen - set(MODULES))
    if unknown:
        raise ValueError(f"COLONNADE_SERVE_MODULES names no such modules: {', '.join(unknown)}")
    return chosen


def module_of(consumer: str) -> str:
    """A consumer is named after its module: "notifications.confirm-order"."""
    return consumer.partition(".")[0]


async def run_without_http(
    settings: Settings,
    *,
    relay: bool,
    consumes: Callable[[str], bool],
    stopping: asyncio.Event,
) -> None:
    """A process of the distributed shape that serves no HTTP: the outbox relay, bus
    consumers (those whose names `consumes` accepts), or both, until `stopping` is set. On
    stopping, the relay publishes what is committed and consumers finish the batch in hand
    (an event whose ack was cut off comes again, and its inbox mark skips it)."""
    configure_logging(settings.log_level)
    tracing.configure(settings)
    shop = assemble(settings)
    listener = None
    try:
        await migrations.upgrade(shop.db, MODULES)
        await shop.keyring.load()
        await shop.bus.open(consumes=consumes)
        if relay:
            shop.relay.start()
        # Metrics and liveness; a process without HTTP has no readiness to offer.
        listener = metrics_port.serve_metrics(settings)
        await stopping.wait()
    finally:
        if listener is not None:
            await asyncio.to_thread(listener.stop)
        if relay:
            await shop.relay.stop(drain_seconds=settings.outbox_drain_seconds)
        await shop.bus.close()
        if shop.redis is not None:
            await shop.redis.aclose()
        await shop.db.dispose()
        tracing.shutdown()


def _health_and_metrics(app: FastAPI, readiness: health.Readiness, settings: Settings) -> None:
    """Probes on the public port; metrics and health details there only for the bearer of
    COLONNADE_METRICS_TOKEN (they are served on the metrics port, away from visitors)."""
    app.include_router(health.router(readiness))
    if settings.metrics_token is not None:
        app.include_router(metrics_port.public_router(settings.metrics_token, readiness.checks))
