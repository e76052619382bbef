"""Settings from COLONNADE_* environment variables. Only the composition root reads them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Signing keys shorter than this can be brute-forced from a single token.
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLONNADE_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./colonnade.db"
    # FULL survives power loss; NORMAL survives a crashed process only, and is faster.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    secret_key: SecretStr | None = None
    # 32 random bytes, URL-safe base64 (`colonnade keys new`); wraps the keys of personal data.
    encryption_key: SecretStr | None = None
    access_token_ttl_seconds: int = Field(default=900, ge=30)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=60)
    # After this many failed logins for one e-mail address close together, each further one
    # locks the address: first for login_lock_seconds, doubling up to login_lock_max_seconds.
    login_lockout_threshold: int = Field(default=5, ge=1)
    login_lockout_window_seconds: int = Field(default=900, ge=1)
    login_lock_seconds: int = Field(default=30, ge=1)
    login_lock_max_seconds: int = Field(default=3600, ge=1)
    base_currency: str = "USD"
    # Markets and product titles are kept this long per process; other processes see a change
    # by staff within this time (the process that made it, at once). 0 turns the keeping off.
    reference_cache_seconds: float = Field(default=5.0, ge=0)
    # The store's catalog pages kept per process, and how often their stock labels are checked.
    store_pages: int = Field(default=5000, ge=0)
    store_stock_seconds: float = Field(default=0.5, gt=0)
    # This long before a scheduled sale starts, each process reads ahead the store pages it
    # changes, priced as from its start. 0: only when staff ask (POST /admin/sales/{id}/warm).
    sale_warm_minutes: float = Field(default=5.0, ge=0)
    # How often a process reads the changes other processes committed (prices, products).
    changes_poll_seconds: float = Field(default=0.25, gt=0)
    # Redis (redis://host:6379/0) for what processes and replicas must agree on: rate limit
    # buckets, the payment circuit breaker, word of committed changes. Unset, each process
    # keeps its own. Keys and channels start with redis_key_prefix, so shops may share one
    # Redis; a call Redis does not answer within redis_timeout_seconds counts as Redis down.
    redis_url: str | None = None
    redis_key_prefix: str = Field(default="colonnade", min_length=1)
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    default_warehouse: str = "main"
    # Where the analytics warehouse keeps its Parquet files; unset: beside the SQLite
    # database file, or ./colonnade-analytics for a server database.
    analytics_dir: str | None = None
    # How often waiting facts are sealed into the warehouse's files. 0: never; they stay in
    # the database, which every replica shares (for replicas without a shared volume).
    analytics_seal_seconds: float = Field(default=60, ge=0)
    # Whether each process keeps what it answered per route and minute in the warehouse's
    # files (only where facts are sealed into files: a sealing of 0 keeps none).
    analytics_route_minutes: bool = True
    reservation_ttl_seconds: int = Field(default=900, ge=10)
    payment_provider: Literal["test_gateway", "stripe"] = "test_gateway"
    stripe_api_key: SecretStr | None = None
    stripe_timeout_seconds: float = Field(default=10, gt=0)
    # Each call to the payment provider gets this long; no answer by then counts as a failure.
    payment_timeout_seconds: float = Field(default=10, gt=0)
    # Calls that did not answer are asked again this many times (all provider calls carry an
    # idempotency key), after a back-off starting here and doubling, with jitter.
    payment_retries: int = Field(default=2, ge=0, le=10)
    payment_retry_backoff_seconds: float = Field(default=0.2, ge=0)
    # The circuit breaker opens after this many failed calls in a row, or when at least
    # payment_breaker_failure_rate of the calls in the window failed (with enough calls to
    # judge); while open, checkouts fail at once, and after the cool-down one trial call goes.
    payment_breaker_failures: int = Field(default=5, ge=1)
    payment_breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    payment_breaker_minimum_calls: int = Field(default=20, ge=1)
    payment_breaker_window_seconds: float = Field(default=60, gt=0)
    # Short: one trial call per cool-down (one for every process, with Redis) costs a provider
    # that is down nothing, and each second longer refuses buyers once it is back (a flash
    # sale a few seconds after the provider recovered sold nothing under 30 s).
    payment_breaker_cooldown_seconds: float = Field(default=5, gt=0)
    # The built-in test gateway: how long each answer takes, and how long tok_timeout keeps
    # the caller waiting before it gives up (above payment_timeout_seconds, the shop's own
    # timeout ends the call first, as with a processor that never answers).
    test_gateway_latency_seconds: float = Field(default=0, ge=0)
    test_gateway_no_answer_seconds: float = Field(default=0, ge=0)
    cart_idle_seconds: int = Field(default=86_400, ge=60)
    # A checkout untouched this long is taken to be orphaned by a dead process and recovered.
    checkout_recovery_seconds: int = Field(default=60, ge=1)
    # The waiting room: at most this many checkouts at once per process ("auto": as many as
    # keep the checkout latency objective, learned from checkout times); the next buyers get
    # numbered queue tickets (503 checkout_queued) and are let in in their order, across
    # processes when Redis is set. Unset, every checkout starts at once.
    checkout_concurrency: Annotated[int, Field(ge=1)] | Literal["auto"] | None = None
    # How long a queue ticket is good for.
    queue_ticket_seconds: int = Field(default=900, ge=60)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # The relay is reported stuck (not ready) when it made no progress this long while events
    # wait; on shutdown it gets outbox_drain_seconds to publish what is committed.
    outbox_stuck_seconds: float = Field(default=60, gt=0)
    outbox_drain_seconds: float = Field(default=10, gt=0)
    # A readiness probe waits this long for the database before calling it failing.
    readiness_timeout_seconds: float = Field(default=1.0, gt=0)
    # On shutdown, requests in flight get this long to finish before they are cut off.
    shutdown_grace_seconds: int = Field(default=30, ge=1)
    # An event whose delivery failed this often is parked as a dead letter, no longer retried.
    # With the relay's back-off (2, 4, 8 s ... up to 10 min) ten attempts span about 17 minutes.
    outbox_max_attempts: int = Field(default=10, ge=1)
    # Published events are kept this long for looking into, then pruned.
    outbox_retention_days: int = Field(default=7, ge=1)
    # nats://host:4222 carries events on NATS JetStream (the distributed shape); unset, they
    # stay in this process.
    bus_url: str | None = Field(default=None, pattern=r"^(nats|tls)://")
    # Names the shop's streams, subjects and consumers, so several shops share one NATS.
    bus_namespace: str = Field(default="colonnade", pattern=r"^[A-Za-z0-9_-]+$")
    # On JetStream a consumer parks an event as a dead letter once this many deliveries of it
    # failed (with back-off: 2, 4, 8 ... s between them).
    bus_max_deliver: int = Field(default=5, ge=1)
    # Whether a `colonnade serve` process also runs an outbox relay and the bus consumers.
    # On a broker they can run apart (`colonnade relay`, `colonnade worker`), so the HTTP
    # processes serve requests only; on the in-process bus both must run where the HTTP does.
    serve_relay: bool = True
    serve_consumers: bool = True
    # Comma-separated modules whose routes and consumers a `colonnade serve` process serves
    # (a module group, behind an edge that routes to it); empty, every module's.
    serve_modules: str = ""
    # Comma-separated modules this process calls in other processes, over the bus's NATS
    # (request-reply; kernel/remote.py), rather than through their services here. A process
    # serving a module answers such calls for it whenever the bus is NATS.
    remote_modules: str = ""
    # Inventory's own database (its primary carries a flash sale's hottest rows), when not
    # COLONNADE_DATABASE_URL. Only a process serving inventory alone keeps its tables there;
    # every other process calls inventory where it is served, as if it were in
    # COLONNADE_REMOTE_MODULES.
    inventory_database_url: str | None = None
    # How long a call to a module in another process waits for its answer.
    remote_call_seconds: float = Field(default=5.0, gt=0)
    # The inbox is what stops a redelivered event being taken twice, so a mark must outlive any
    # redelivery: the relay's retries end within the hour, but a bus may replay its stream
    # (JetStream keeps messages for days) and a restored backup may offer events again. A month
    # covers those with room; events parked as dead letters keep their marks until delivered.
    inbox_retention_days: int = Field(default=30, ge=7)
    # Guest orders older than this lose their personal data (e-mail, address); amounts stay.
    guest_data_retention_days: int = Field(default=365, ge=1)
    # An OTLP/HTTP collector's base URL (e.g. http://collector:4318) turns tracing on; the
    # standard OTEL_EXPORTER_OTLP_ENDPOINT is read too. Unset, tracing is off and costs nothing.
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "COLONNADE_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "otlp_endpoint"
        ),
    )
    # The share of new traces kept; a request that arrives inside a caller's trace follows it.
    trace_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    # The shop samples its own metrics this often for the operations page and its SLO alerts,
    # and keeps this many samples for the page's charts (360 x 5 s: the last half hour).
    ops_sample_seconds: float = Field(default=5.0, gt=0, le=60)
    ops_history_points: int = Field(default=360, ge=10, le=100_000)
    # Shortens every SLO alert window by this factor (1/720 turns an hour into 5 s): for
    # drills and tests of the alerts, never for a real shop.
    slo_window_scale: float = Field(default=1.0, gt=0, le=1)
    # Metrics and the health details are served on a port of their own, away from the shop's
    # visitors: loopback only by default (a cluster sets 0.0.0.0 to be scraped over the pod
    # network). Port 0 turns that listener off.
    metrics_port: int = Field(default=9100, ge=0, le=65_535)
    metrics_host: str = "127.0.0.1"
    # When one port is all there is: the public /metrics and /health/details answer whoever
    # presents this as a bearer token, and nobody else. Unset, the public port has neither.
    metrics_token: SecretStr | None = None
    log_level: str = "INFO"
    # A server process freezes what it built while starting and collects garbage less often
    # (kernel/heap.py); `colonnade serve` turns it on. Off for apps made in tests, which build
    # and drop many shops in one process.
    settle_heap: bool = False
    # Request bodies larger than this are refused (413) before anything reads them whole.
    max_body_bytes: int = Field(default=65_536, ge=1_024)
    # Browser origins allowed to call the API; empty means no cross-origin access at all.
    cors_origins: list[str] = Field(default_factory=list)
    # Set when clients reach the shop only over HTTPS: browsers are then told never to use HTTP.
    behind_https: bool = False
    # Addresses of the proxies in front of `colonnade serve` (comma-separated, e.g. 127.0.0.1),
    # whose X-Forwarded-For and X-Forwarded-Proto name the client. Unset, nobody is believed:
    # any client could otherwise claim another address and escape its rate limits.
    forwarded_allow_ips: str | None = None
    # Requests per minute. Login per account stays above identity's lockout threshold, so a
    # locked account is told so (login_locked) rather than merely rate limited.
    rate_limit_login_per_address: int = Field(default=20, ge=1)
    rate_limit_login_per_account: int = Field(default=10, ge=1)
    rate_limit_registration_per_address: int = Field(default=10, ge=1)
    rate_limit_registration_per_email: int = Field(default=3, ge=1)
    # Generous per address: in a flash sale many real buyers share one address (mobile carrier
    # NAT, an office); the per-cart limit is what stops one client hammering a checkout. It
    # counts a client's retries under the same Idempotency-Key too, hence room for a burst.
    rate_limit_checkout_per_address: int = Field(default=600, ge=1)
    rate_limit_checkout_per_cart: int = Field(default=20, ge=1)

    @property
    def inventory_elsewhere(self) -> bool:
        """Whether inventory's tables are in a database of their own."""
        return self.inventory_database_url not in (None, self.database_url)

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.environment == "production" and self.secret_key is None:
            raise ValueError(
                "COLONNADE_SECRET_KEY must be set when COLONNADE_ENVIRONMENT=production"
            )
        if (
            self.environment == "production"
            and self.secret_key is not None
            and len(self.secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH
        ):
            raise ValueError(
                f"COLONNADE_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters "
                "when COLONNADE_ENVIRONMENT=production"
            )
        if self.environment == "production" and self.encryption_key is None:
            raise ValueError(
                "COLONNADE_ENCRYPTION_KEY must be set when COLONNADE_ENVIRONMENT=production"
            )
        if self.bus_url is None and not (self.serve_relay and self.serve_consumers):
            raise ValueError(
                "COLONNADE_SERVE_RELAY and COLONNADE_SERVE_CONSUMERS can be false only with"
                " COLONNADE_BUS_URL: on the in-process bus the relay hands events to this"
                " process's consumers"
            )
        if self.remote_modules.strip() and self.bus_url is None:
            raise ValueError(
                "COLONNADE_REMOTE_MODULES needs COLONNADE_BUS_URL: modules in other processes"
                " are called over its NATS"
            )
        if self.inventory_elsewhere and self.bus_url is None:
            raise ValueError(
                "COLONNADE_INVENTORY_DATABASE_URL needs COLONNADE_BUS_URL: inventory on a"
                " database of its own is called in the process that serves it, over its NATS"
            )
        if (
            "inventory" in self.remote_modules
            and self.database_url.startswith("sqlite")
            and not self.inventory_elsewhere
        ):
            # Checkout sells the stock over there while its own transaction holds the file's
            # one writer lock, for which inventory's transaction would then wait.
            raise ValueError(
                "COLONNADE_REMOTE_MODULES: inventory in another process needs PostgreSQL"
                " or a database of its own (COLONNADE_DATABASE_URL is a SQLite file, which"
                " has one writer at a time)"
            )
        if self.payment_provider == "stripe" and self.stripe_api_key is None:
            raise ValueError("COLONNADE_STRIPE_API_KEY must be set for the stripe payment provider")
        return self
