"""What a process answered per route and minute, from its own metrics: deltas between two
readings, per-bucket answers, and the slowest routes with their percentiles and trend."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from colonnade.modules.analytics.domain import RouteLatency, percentile, slowest
from colonnade.ops.minutes import minute_of, totals
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
