"""Every metric the shop exports, defined once, in the default prometheus_client registry.

Modules import the metric they move from here, so a name is never declared twice and the
catalog (what `/metrics` may show) is readable in one place. Label values stay few and
known in advance (route templates, outcomes, currencies, job names), never ids.

With several worker processes, prometheus_client's multiprocess mode (the
PROMETHEUS_MULTIPROC_DIR environment variable, set before this module is imported) keeps
each worker's values in files that `shop_registry()` adds up; gauges then say how to combine
them.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from colonnade.kernel.events import Envelope
from colonnade.kernel.money import Money
from colonnade.kernel.processes import running

# Seconds; from a cache hit to a checkout waiting on a slow payment provider.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Database statements are mostly sub-millisecond on a warm connection.
_QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
# From an event's commit to its consumer: milliseconds in process, minutes when a relay lags.
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# --- HTTP --------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "colonnade_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "colonnade_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_REQUESTS_IN_FLIGHT = Gauge(
    "colonnade_http_requests_in_flight",
    "HTTP requests being answered right now.",
    multiprocess_mode="livesum",
)

# --- database ----------------------------------------------------------------------------

DB_POOL_CONNECTIONS = Gauge(
    "colonnade_db_pool_connections",
    "Database connections of the pool, by state (in_use or idle).",
    ["state"],
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "colonnade_db_pool_size",
    "Connections the database pool keeps open (before overflow).",
    multiprocess_mode="livesum",
)
DB_QUERY_DURATION = Histogram(
    "colonnade_db_query_duration_seconds",
    "Time of one database statement, by operation (select, insert, update, delete, other).",
    ["operation"],
    buckets=_QUERY_BUCKETS,
)
_QUERY_TIMERS = {
    verb: DB_QUERY_DURATION.labels(verb.lower())
    for verb in ("SELECT", "INSERT", "UPDATE", "DELETE", "select", "insert", "update", "delete")
}
_OTHER_QUERY = DB_QUERY_DURATION.labels("other")


def query_timer(statement: str) -> Any:
    """The histogram child that times `statement`, by its verb. The verbs are six letters
    each: a slice and a dict lookup are all the hot path can spare (no regex, no parsing)."""
    return _QUERY_TIMERS.get(statement[:6], _OTHER_QUERY)


BATCH_SIZE = Histogram(
    "colonnade_batch_size",
    "Requests that went to the database together in one batch, by step of the purchase.",
    ["step"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
HOLD_RETRIES = Counter(
    "colonnade_checkout_hold_retries_total",
    "Checkout batches whose unlocked stock decision other buyers overtook before it locked the"
    " rows, so the batch was held again, locking first.",
)

CHECKOUT_QUEUE_WAITING = Gauge(
    "colonnade_checkout_queue_waiting",
    "Buyers holding a waiting room's ticket whose number is not called yet: the shop's queue"
    " when it is shared through Redis, else the longest of the processes' own queues.",
    # Each process of a shared queue sees all of it: a sum would count it once per process.
    multiprocess_mode="livemax",
)
CHECKOUT_QUEUE_LIMIT = Gauge(
    "colonnade_checkout_queue_limit",
    "How many checkouts the waiting room lets run at once (set, or learned from latency).",
    multiprocess_mode="livesum",
)
CHECKOUT_QUEUE_IN_FLIGHT = Gauge(
    "colonnade_checkout_queue_in_flight",
    "Checkouts the waiting room has let in that have not ended yet.",
    multiprocess_mode="livesum",
)
CHECKOUT_QUEUE = Counter(
    "colonnade_checkout_queue_total",
    "The waiting room's answers: ticketed (a buyer queued with a new ticket), held (a ticket"
    " holder told to wait again), admitted (a ticket holder let in) and refused (a forged,"
    " expired or used ticket). Ticketed and held are its 503 answers.",
    ["outcome"],
)
CHECKOUT_QUEUE_WAIT = Histogram(
    "colonnade_checkout_queue_wait_seconds",
    "How long a ticket holder waited, from the ticket to being let in.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900),
)

# --- events ------------------------------------------------------------------------------

OUTBOX_BACKLOG = Gauge(
    "colonnade_outbox_backlog",
    "Events committed to the outbox and not yet published.",
    multiprocess_mode="max",
)
OUTBOX_LAG = Gauge(
    "colonnade_outbox_lag_seconds",
    "Age of the oldest event not yet published (0 when none waits).",
    multiprocess_mode="max",
)
OUTBOX_PUBLISHED = Counter(
    "colonnade_outbox_published_total",
    "Events the outbox relay delivered to the bus.",
)
CONSUMER_LAG = Histogram(
    "colonnade_consumer_lag_seconds",
    "Time from an event occurring to a consumer handling it.",
    ["consumer"],
    buckets=_LAG_BUCKETS,
)
EVENTS_CONSUMED = Counter(
    "colonnade_events_consumed_total",
    "Events handed to a consumer, by outcome (ok or failed).",
    ["consumer", "outcome"],
)


def consumed(consumer: str, envelope: Envelope) -> None:
    """A consumer handled `envelope`: count it, and how long after it occurred."""
    EVENTS_CONSUMED.labels(consumer, "ok").inc()
    lag = (datetime.now(UTC) - envelope.occurred_at).total_seconds()
    CONSUMER_LAG.labels(consumer).observe(max(lag, 0.0))


# --- the shop's business -----------------------------------------------------------------

CARTS_CREATED = Counter("colonnade_carts_created_total", "Carts opened.")
CHECKOUTS = Counter(
    "colonnade_checkouts_total",
    "Checkouts finished, by outcome (paid, pending_payment, out_of_stock, payment_declined, "
    "provider_unavailable, error). A retry answered from the first result is not counted.",
    ["outcome"],
)
PROMOTION_USES = Counter(
    "colonnade_promotion_uses_total",
    "Uses of a promotion's code held by checkouts, by code (a use given back by a failed"
    " checkout or a cancelled order is not taken off).",
    ["code"],
)
PROMOTIONS_RUNNING = Gauge(
    "colonnade_promotions_running",
    "Promotions whose window is open now (used up ones included).",
    multiprocess_mode="max",
)
ORDERS_PLACED = Counter("colonnade_orders_placed_total", "Orders placed.")
REVENUE = Counter(
    "colonnade_revenue_total",
    "Money captured for orders, in the currency's major units.",
    ["currency"],
)
STOCKOUTS = Counter(
    "colonnade_stockouts_total",
    "Stock-outs: a SKU reaching 0 available (buyers turned away are checkouts out_of_stock).",
)
PAYMENT_DECLINES = Counter(
    "colonnade_payment_declines_total",
    "Payments the provider declined, by reason.",
    ["reason"],
)
RESERVATIONS_EXPIRED = Counter(
    "colonnade_reservations_expired_total",
    "Stock reservations released because their time ran out.",
)


def count_revenue(amount: Money) -> None:
    """Add `amount` to the revenue of its currency, in major units (cents become dollars)."""
    # A float is fine here: a metric sums for charts, it never holds money owed.
    REVENUE.labels(currency=amount.currency).inc(float(amount.to_decimal()))


# --- the store's pages -------------------------------------------------------------------

SALES_PREWARMED = Counter(
    "colonnade_sale_prewarmed_total",
    "Scheduled sales whose store pages a process read ahead of their start, by trigger"
    " (schedule: within the lead time, or again after a change dropped some; staff: asked).",
    ["trigger"],
)
PAGES_PREWARMED = Counter(
    "colonnade_sale_prewarmed_pages_total",
    "Store pages read ahead of a sale's start, priced as from then (products and listings).",
)

# --- self-maintenance --------------------------------------------------------------------

MAINTENANCE_RUNS = Counter(
    "colonnade_maintenance_runs_total",
    "Runs of a maintenance job, by outcome (ok or failed).",
    ["job", "outcome"],
)
MAINTENANCE_ITEMS = Counter(
    "colonnade_maintenance_items_total",
    "Rows a maintenance job handled (reservations expired, carts closed, ...).",
    ["job"],
)
MAINTENANCE_DURATION = Histogram(
    "colonnade_maintenance_duration_seconds",
    "Time one run of a maintenance job took.",
    ["job"],
    buckets=_LATENCY_BUCKETS,
)
MAINTENANCE_LAST_SUCCESS = Gauge(
    "colonnade_maintenance_last_success_timestamp_seconds",
    "When a maintenance job last finished without failing (Unix time).",
    ["job"],
    multiprocess_mode="max",
)
STOCK_LEDGER_DRIFT = Gauge(
    "colonnade_stock_ledger_drift_skus",
    "SKUs whose stock levels disagree with their stock ledger.",
    multiprocess_mode="max",
)
DEAD_LETTERS = Gauge(
    "colonnade_dead_letters",
    "Poison messages parked in the dead-letter table, waiting for a replay.",
    multiprocess_mode="max",
)

# --- the payment provider ----------------------------------------------------------------

PAYMENT_PROVIDER_CALLS = Counter(
    "colonnade_payment_provider_calls_total",
    "Calls to the payment provider, by operation and outcome.",
    ["operation", "outcome"],
)
PAYMENT_CIRCUIT_STATE = Gauge(
    "colonnade_payment_circuit_state",
    "The payment provider's circuit breaker: 0 closed, 1 half-open, 2 open.",
    multiprocess_mode="max",
)

# --- calls between module processes -------------------------------------------------------

REMOTE_CALLS = Counter(
    "colonnade_remote_calls_total",
    "Calls between module processes, by side (made or answered), module, method and outcome"
    " (ok, refused: a typed refusal; unavailable: no answer in time; late: past its deadline;"
    " failed: an unexpected error, answered as 500).",
    ["side", "module", "method", "outcome"],
)
REMOTE_CALL_DURATION = Histogram(
    "colonnade_remote_call_duration_seconds",
    "Time a call to a module in another process took, from the caller's side: the hop.",
    ["module", "method"],
    buckets=_QUERY_BUCKETS,
)

# --- shared state (Redis) ----------------------------------------------------------------

REDIS_FALLBACKS = Counter(
    "colonnade_redis_fallbacks_total",
    "Uses of shared state (rate_limits, payment_circuit, changes) that fell back to this "
    "process's own state because Redis failed or had just failed.",
    ["use"],
)

# --- alerts ------------------------------------------------------------------------------

ALERTS_FIRING = Gauge(
    "colonnade_alerts_firing",
    "Whether an alert fires now (1) or not (0).",
    ["alert"],
    multiprocess_mode="max",
)

# Where worker processes keep their values when several serve one shop (prometheus_client's
# multiprocess mode); it must be set before any worker imports this module.
MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"


def shop_registry() -> CollectorRegistry:
    """The registry of the whole shop: this process's, or with several workers one that
    reads every worker's metrics files."""
    if MULTIPROCESS_DIRECTORY not in os.environ:
        return REGISTRY
    return workers_registry(os.environ[MULTIPROCESS_DIRECTORY])


def workers_registry(directory: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_LiveWorkers(directory))
    return registry


class _LiveWorkers(Collector):
    """Every worker's metrics files added up, less the live gauges of the workers that died.
    A killed worker leaves its files behind, and prometheus_client forgets its live gauges
    (requests and checkouts in flight, say) only when told: they would count for ever, long
    after the server started another worker in its place."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._files = multiprocess.MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        for path in glob.glob(os.path.join(self._directory, "gauge_live*_*.db")):
            pid = int(path.rsplit("_", 1)[1].removesuffix(".db"))
            if not running(pid):
                multiprocess.mark_process_dead(pid, self._directory)  # type: ignore[no-untyped-call]
        metrics: Iterable[Metric] = self._files.collect()  # type: ignore[no-untyped-call]
        return metrics
