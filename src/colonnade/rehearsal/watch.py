"""Reading the shop's own metrics while it is rehearsed: one scrape of its metrics port
becomes a `ShopReading`, and two of them the shop's side of a timeline point.

The rehearsal judges the shop by the shop's counters, not by what the load generator saw,
so its report can be checked against `/metrics` (and the operations page, which judges the
same SLOs from the same counters).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from colonnade.kernel.histograms import quantile
from colonnade.ops.sampler import Reading, indicator_events
from colonnade.ops.slo import CHECKOUT_ROUTE, OBJECTIVES


@dataclass(frozen=True)
class ShopReading:
    at: float
    checkouts: Mapping[str, float]  # by outcome
    orders_placed: float
    requests: float
    server_errors: float
    slo: Mapping[str, tuple[float, float]]  # per objective: cumulative good and total
    checkout_buckets: tuple[tuple[float, float], ...]  # cumulative, per bucket bound
    events_published: float
    pool_in_use: float | None
    pool_size: float | None
    outbox_lag: float | None
    outbox_backlog: float | None
    queue_waiting: float | None
    # Where the shop exports it (one process; not with several workers).
    process_cpu: float | None

    @property
    def paid(self) -> float:
        return self.checkouts.get("paid", 0.0)

    @classmethod
    def parse(cls, exposition: str, at: float) -> ShopReading:
        reading = Reading(
            [
                (s.name, s.labels, s.value)
                for family in text_string_to_metric_families(exposition)
                for s in family.samples
            ]
        )
        buckets: dict[float, float] = {}
        for name, labels, value in reading.samples:
            if (
                name == "colonnade_http_request_duration_seconds_bucket"
                and labels.get("method") == "POST"
                and labels.get("route") == CHECKOUT_ROUTE
            ):
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
        return cls(
            at=at,
            checkouts=reading.by("colonnade_checkouts_total", "outcome"),
            orders_placed=reading.total("colonnade_orders_placed_total"),
            requests=reading.total("colonnade_http_requests_total"),
            server_errors=reading.total(
                "colonnade_http_requests_total", lambda labels: labels["status"].startswith("5")
            ),
            slo={o.name: indicator_events(o, reading) for o in OBJECTIVES},
            checkout_buckets=tuple(sorted(buckets.items())),
            events_published=reading.total("colonnade_outbox_published_total"),
            pool_in_use=reading.by("colonnade_db_pool_connections", "state").get("in_use"),
            pool_size=reading.gauge("colonnade_db_pool_size"),
            outbox_lag=reading.gauge("colonnade_outbox_lag_seconds"),
            outbox_backlog=reading.gauge("colonnade_outbox_backlog"),
            queue_waiting=reading.gauge("colonnade_checkout_queue_waiting"),
            process_cpu=reading.gauge("process_cpu_seconds_total"),
        )


def checkout_p99(newer: ShopReading, older: ShopReading) -> float | None:
    """The 99th percentile of the checkouts answered between two readings, in seconds."""
    before = dict(older.checkout_buckets)
    delta = [(bound, max(0.0, n - before.get(bound, 0.0))) for bound, n in newer.checkout_buckets]
    found = quantile(0.99, delta)
    return None if found is None or math.isnan(found) else found


class MetricsPort:
    """The shop's metrics, scraped over HTTP (with the bearer token when the public port
    serves them)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str | None) -> None:
        self._session = session
        self._url = url.rstrip("/") + "/metrics"
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def read(self, at: float) -> ShopReading:
        async with self._session.get(
            self._url, headers=self._headers, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            response.raise_for_status()
            return ShopReading.parse(await response.text(), at)
