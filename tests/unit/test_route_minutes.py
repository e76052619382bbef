"""What a process answered per route and minute, from its own metrics: deltas between two
readings, per-bucket answers, and the slowest routes with their percentiles and trend; what
it read of the machinery each minute, and the timeline built of both."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from colonnade.modules.analytics.domain import (
    RouteLatency,
    RouteMinute,
    SystemMinute,
    percentile,
    slowest,
    timeline,
)
from colonnade.ops.minutes import MinuteSampler, minute_of, totals
from colonnade.ops.sampler import Reading

MINUTE = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def reading(answers: dict[tuple[str, str, str], list[float]]) -> Reading:
    """The registry's samples for answers per (method, route, status), each a latency."""
    bounds = (0.01, 0.1, 1.0, math.inf)
    samples: list[tuple[str, dict[str, str], float]] = []
    for (method, route, status), latencies in answers.items():
        labels = {"method": method, "route": route, "status": status}
        samples.append(("colonnade_http_requests_total", labels, float(len(latencies))))
        for bound in bounds:
            within = float(sum(1 for latency in latencies if latency <= bound))
            le = "+Inf" if math.isinf(bound) else str(bound)
            samples.append(
                ("colonnade_http_request_duration_seconds_bucket", {**labels, "le": le}, within)
            )
    return Reading(samples)


def test_a_minute_holds_what_was_answered_since_the_last_reading_per_route() -> None:
    before = totals(reading({("GET", "/store/products", "200"): [0.005, 0.05]}))
    now = totals(
        reading(
            {
                ("GET", "/store/products", "200"): [0.005, 0.05, 0.05, 0.5, 3.0],
                ("POST", "/store/carts", "201"): [0.02],
                ("POST", "/store/carts", "503"): [0.2],
            }
        )
    )

    products, carts = minute_of(before, now, MINUTE, "web-1")

    assert (products.route, products.requests, products.errors) == ("GET /store/products", 3, 0)
    # Per bucket, not cumulative: one at most 0.1 s, one at most 1 s, one above.
    assert products.buckets == ((0.1, 1), (1.0, 1), (math.inf, 1))
    assert (carts.route, carts.requests, carts.errors) == ("POST /store/carts", 2, 1)
    assert carts.buckets == ((0.1, 1), (1.0, 1))
    assert {products.process, carts.process} == {"web-1"}
    assert minute_of(now, now, MINUTE, "web-1") == [], "a quiet minute keeps nothing"


def test_percentiles_read_inside_the_bucket_and_stop_at_the_last_finite_bound() -> None:
    assert percentile(0.5, [(0.1, 10)]) == pytest.approx(0.05)
    assert percentile(0.5, [(0.1, 5), (1.0, 5)]) == pytest.approx(0.1)
    assert percentile(0.99, [(1.0, 1), (math.inf, 99)]) == 1.0
    assert percentile(0.5, []) is None


def test_the_slowest_routes_come_first_with_the_p95_of_the_window_before() -> None:
    rows = [
        ("GET /store/products", True, 100, 0, ((0.01, 100),)),
        ("POST /store/carts/{cart_id}/checkout", True, 10, 1, ((1.0, 10),)),
        ("POST /store/carts/{cart_id}/checkout", False, 10, 0, ((0.1, 10),)),
    ]

    checkout, products = slowest(rows, 10)

    assert checkout == RouteLatency(
        "POST /store/carts/{cart_id}/checkout",
        10,
        1,
        pytest.approx(0.5),
        pytest.approx(0.95),
        pytest.approx(0.99),
        pytest.approx(0.095),
    )
    assert checkout.error_percent == 10
    assert products.p95_before is None
    assert slowest(rows, 1) == [checkout]


async def test_a_minute_reads_checkouts_per_outcome_and_the_highest_lag_and_pool_use() -> None:
    registry = CollectorRegistry()
    checkouts = Counter("colonnade_checkouts", "", ["outcome"], registry=registry)
    lag = Gauge("colonnade_outbox_lag_seconds", "", registry=registry)
    pool = Gauge("colonnade_db_pool_connections", "", ["state"], registry=registry)
    size = Gauge("colonnade_db_pool_size", "", registry=registry)
    checkouts.labels("paid").inc(4)
    size.set(10)
    kept: list[tuple[str, list[RouteMinute], list[SystemMinute]]] = []

    async def keep(
        process: str,
        minutes: Sequence[RouteMinute],
        readings: Sequence[SystemMinute] = (),
        *,
        write: bool = False,
    ) -> int:
        kept.append((process, list(minutes), list(readings)))
        return 0

    now = MINUTE.timestamp() + 5
    sampler = MinuteSampler(keep, registry=registry, process="web-1", clock=lambda: now)
    # During the minute: a lag of 3 s and 7 connections in use, gone by its end.
    checkouts.labels("paid").inc(2)
    checkouts.labels("out_of_stock").inc(3)
    lag.set(3.0)
    pool.labels("in_use").set(7)
    await sampler.look()
    lag.set(0.5)
    pool.labels("in_use").set(1)
    now += 60
    await sampler.sample()
    now += 60
    await sampler.sample()

    (_, _, first), (_, _, quiet) = kept
    assert {(r.measure, r.label, r.value) for r in first} == {
        ("checkouts", "out_of_stock", 3.0),
        ("checkouts", "paid", 2.0),
        ("outbox_lag_seconds", "", 3.0),
        ("pool_in_use", "", 7.0),
        ("pool_size", "", 10.0),
    }
    assert {(r.minute, r.process) for r in first} == {(MINUTE, "web-1")}
    # The next minute: no checkout, and the gauges as they stood.
    assert {(r.measure, r.label, r.value) for r in quiet} == {
        ("outbox_lag_seconds", "", 0.5),
        ("pool_in_use", "", 1.0),
        ("pool_size", "", 10.0),
    }


def test_a_timeline_lists_every_step_with_each_sides_figures() -> None:
    second = int(MINUTE.timestamp()) + 60
    moments = timeline(
        MINUTE,
        MINUTE.replace(minute=3),
        "minute",
        orders=[(second, "US", 2), (second, "DE", 4)],
        route=[(second, 6, 1, None, 0), (second, 0, 0, 0.1, 5), (second, 0, 0, 1.0, 1)],
        measures=[
            (second, "checkouts", "paid", 6.0),
            (second, "outbox_lag_seconds", "", 0.25),
            (second, "pool_in_use", "", 3.0),
            (second, "pool_size", "", 20.0),
        ],
    )

    quiet, busy, last = moments
    assert [m.start.minute for m in moments] == [0, 1, 2]
    assert (quiet.orders, quiet.requests, quiet.p99, quiet.checkouts) == ((), 0, None, ())
    assert (quiet.outbox_lag, quiet.pool_in_use, quiet.pool_size) == (None, None, None)
    assert busy.orders == (("DE", 4), ("US", 2))
    assert (busy.requests, busy.errors) == (6, 1)
    assert busy.p99 == pytest.approx(0.1 + 0.9 * (5.94 - 5) / 1)
    assert busy.checkouts == (("paid", 6),)
    assert (busy.outbox_lag, busy.pool_in_use, busy.pool_size) == (0.25, 3, 20)
    assert last == replace(quiet, start=last.start)
