"""The sampler turns registry snapshots into the page's rates and percentiles and into the
SLO alerts, on a registry of its own here and a clock the test moves."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from colonnade.kernel.histograms import quantile
from colonnade.ops.sampler import Sampler
from colonnade.ops.slo import CHECKOUT_ROUTE


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Shop:
    """The few catalog metrics the sampler reads, in a registry of the test's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "colonnade_http_requests_total",
            "",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "colonnade_http_request_duration_seconds",
            "",
            ["method", "route", "status"],
            buckets=(0.1, 0.5, 1.0, 5.0),
            registry=self.registry,
        )
        self.checkouts = Counter(
            "colonnade_checkouts_total", "", ["outcome"], registry=self.registry
        )
        self.firing = Gauge("colonnade_alerts_firing", "", ["alert"], registry=self.registry)

    def answer(self, status: int, seconds: float = 0.05, times: int = 1) -> None:
        for _ in range(times):
            labels = ("POST", CHECKOUT_ROUTE, str(status))
            self.requests.labels(*labels).inc()
            self.duration.labels(*labels).observe(seconds)

    def firing_value(self, alert: str) -> float | None:
        return self.registry.get_sample_value("colonnade_alerts_firing", {"alert": alert})


@pytest.fixture
def shop() -> Shop:
    return Shop()


def sampler_of(shop: Shop, clock: Clock, *, scale: float = 1.0) -> Sampler:
    return Sampler(
        every_seconds=1,
        history_points=100,
        window_scale=scale,
        registry=shop.registry,
        firing=shop.firing,
        clock=clock,
    )


def test_an_empty_registry_reads_as_a_quiet_shop() -> None:
    clock = Clock()
    registry = CollectorRegistry()
    firing = Gauge("colonnade_alerts_firing", "", ["alert"], registry=registry)
    sampler = Sampler(
        every_seconds=1, history_points=10, registry=registry, firing=firing, clock=clock
    )
    for _ in range(3):
        sampler.sample()
        clock.now += 1

    series = sampler.series()
    assert series.requests_per_second == [0.0, 0.0]
    assert series.latency_seconds["p99"] == [None, None]
    assert series.outbox_backlog == [None, None]
    assert not any(sampler.firing_alerts().values())


def test_rates_are_per_second_and_checkouts_per_minute(shop: Shop) -> None:
    clock = Clock()
    sampler = sampler_of(shop, clock)
    sampler.sample()
    clock.now += 2
    shop.answer(201, times=10)
    shop.checkouts.labels("paid").inc(4)
    sampler.sample()

    series = sampler.series()
    assert series.requests_per_second == [pytest.approx(5.0)]
    assert series.checkouts_per_minute == {"paid": [pytest.approx(120.0)]}


def test_latency_percentiles_come_from_the_histogram_buckets(shop: Shop) -> None:
    clock = Clock()
    sampler = sampler_of(shop, clock)
    sampler.sample()
    clock.now += 1
    shop.answer(201, seconds=0.05, times=90)
    shop.answer(201, seconds=3.0, times=10)
    sampler.sample()

    latency = sampler.series().latency_seconds
    assert latency["p50"][-1] == pytest.approx(0.1 * 50 / 90)
    assert 1.0 < (latency["p99"][-1] or 0) <= 5.0


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 0.0), (0.5, 100.0), (float("inf"), 100.0)]

    assert quantile(0.5, buckets) == pytest.approx(0.3)
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 10.0)]) == pytest.approx(0.1)
    assert quantile(0.5, [(0.1, 0.0), (float("inf"), 0.0)]) is None


def test_server_errors_fire_the_availability_alerts_and_they_recover(shop: Shop) -> None:
    clock = Clock()
    # One hour becomes 10 s, five minutes 0.83 s: the test walks through them in seconds.
    sampler = sampler_of(shop, clock, scale=1 / 360)
    fast = "ColonnadeAvailabilityFastBurn"
    sampler.sample()
    assert shop.firing_value(fast) == 0

    for _ in range(5):
        clock.now += 1
        shop.answer(201, times=80)
        shop.answer(503, times=20)
        sampler.sample()
    assert sampler.firing_alerts()[fast]
    assert shop.firing_value(fast) == 1

    clock.now += 1
    shop.answer(201, times=100)
    sampler.sample()
    assert not sampler.firing_alerts()[fast], "a clean short window ends the page"
    assert shop.firing_value(fast) == 0


def test_the_waiting_rooms_503s_spend_no_availability_budget(shop: Shop) -> None:
    clock = Clock()
    sampler = sampler_of(shop, clock, scale=1 / 360)
    queue = Counter("colonnade_checkout_queue_total", "", ["outcome"], registry=shop.registry)
    fast = "ColonnadeAvailabilityFastBurn"
    sampler.sample()

    for _ in range(5):
        clock.now += 1
        shop.answer(201, times=50)
        # Half the answers queue buyers: new tickets and holders told to wait again.
        shop.answer(503, times=50)
        queue.labels("ticketed").inc(20)
        queue.labels("held").inc(30)
        queue.labels("admitted").inc(20)
        sampler.sample()
    assert not sampler.firing_alerts()[fast]

    clock.now += 1
    shop.answer(201, times=80)
    shop.answer(503, times=20)  # of which only 5 are the queue's
    queue.labels("held").inc(5)
    sampler.sample()
    assert sampler.firing_alerts()[fast], "a server error beside the queue's 503s still counts"


def test_a_short_burst_in_a_clean_hour_does_not_page(shop: Shop) -> None:
    clock = Clock()
    sampler = sampler_of(shop, clock, scale=1 / 360)
    sampler.sample()
    for _ in range(10):
        clock.now += 1
        shop.answer(201, times=1000)
        sampler.sample()
    clock.now += 1
    shop.answer(201, times=950)
    shop.answer(503, times=50)  # 5 % now, but under 0.5 % over the (scaled) hour
    sampler.sample()

    state = next(s for s in sampler.alerts if s.alert == "ColonnadeAvailabilityFastBurn")
    assert state.short_burn_rate > state.threshold
    assert state.long_burn_rate < state.threshold
    assert not state.firing


def test_slow_checkouts_fire_the_latency_alert(shop: Shop) -> None:
    clock = Clock()
    sampler = sampler_of(shop, clock, scale=1 / 360)
    sampler.sample()
    for _ in range(3):
        clock.now += 1
        shop.answer(201, seconds=0.2, times=50)
        shop.answer(201, seconds=2.0, times=50)
        sampler.sample()

    firing = sampler.firing_alerts()
    assert firing["ColonnadeCheckoutLatencyFastBurn"]
    assert not firing["ColonnadeAvailabilityFastBurn"]


def test_alerts_others_report_are_listed_too(shop: Shop) -> None:
    clock = Clock()
    sampler = sampler_of(shop, clock)
    shop.firing.labels(alert="StockLedgerDrift").set(1)
    sampler.sample()

    assert sampler.firing_alerts()["StockLedgerDrift"] is True


def test_a_condition_alert_fires_while_its_gauge_is_above_its_bound_in_any_process(
    shop: Shop,
) -> None:
    clock = Clock()
    sampler = sampler_of(shop, clock)
    # One gauge per worker (as in multiprocess mode): the worst of them counts, not the sum.
    circuit = Gauge("colonnade_payment_circuit_state", "", ["pid"], registry=shop.registry)
    drift = Gauge("colonnade_stock_ledger_drift_skus", "", registry=shop.registry)
    circuit.labels("1").set(1)
    circuit.labels("2").set(1)  # both half-open: two trial calls, not an open breaker
    sampler.sample()
    assert not sampler.firing_alerts()["ColonnadePaymentCircuitOpen"]
    assert not sampler.firing_alerts()["ColonnadeStockLedgerDrift"]

    circuit.labels("2").set(2)
    drift.set(3)
    clock.now += 1
    sampler.sample()

    firing = sampler.firing_alerts()
    assert firing["ColonnadePaymentCircuitOpen"]
    assert firing["ColonnadeStockLedgerDrift"]
    assert shop.firing_value("ColonnadeStockLedgerDrift") == 1
    assert not firing["ColonnadeDeadLetters"], "a gauge nobody set is no alarm"

    drift.set(0)
    clock.now += 1
    sampler.sample()
    assert not sampler.firing_alerts()["ColonnadeStockLedgerDrift"]
    assert shop.firing_value("ColonnadeStockLedgerDrift") == 0


class WaitingRoom:
    """The waiting room's metrics, in the shop's registry (what the room moves)."""

    def __init__(self, shop: Shop) -> None:
        self.limit = Gauge("colonnade_checkout_queue_limit", "", registry=shop.registry)
        self.in_flight = Gauge("colonnade_checkout_queue_in_flight", "", registry=shop.registry)
        self.waiting = Gauge("colonnade_checkout_queue_waiting", "", registry=shop.registry)
        self.answers = Counter(
            "colonnade_checkout_queue_total", "", ["outcome"], registry=shop.registry
        )
        self.waits = Histogram(
            "colonnade_checkout_queue_wait_seconds",
            "",
            buckets=(1, 2, 5, 10),
            registry=shop.registry,
        )


def test_a_shop_without_a_waiting_room_charts_no_queue(shop: Shop) -> None:
    room = WaitingRoom(shop)  # registered, as every process has them, but never set
    clock = Clock()
    sampler = sampler_of(shop, clock)
    for _ in range(3):
        room.waiting.set(0)
        sampler.sample()
        clock.now += 1

    series = sampler.series()
    assert series.queue_waiting == [None, None]
    assert series.queue_limit == [None, None]
    assert series.queue_admitted_per_second == [None, None]
    assert series.queue_wait_seconds == {"p50": [None, None], "p99": [None, None]}
    assert sampler.latest is not None
    assert not sampler.latest.waiting_room


def test_the_queue_charts_its_places_admissions_per_second_and_waits(shop: Shop) -> None:
    room = WaitingRoom(shop)
    clock = Clock()
    sampler = sampler_of(shop, clock)
    room.limit.set(2)
    sampler.sample()
    clock.now += 2
    room.in_flight.set(2)
    room.waiting.set(5)
    room.answers.labels("ticketed").inc(9)
    room.answers.labels("admitted").inc(4)
    for seconds in (0.5, 0.5, 1.5, 8.0):
        room.waits.observe(seconds)
    sampler.sample()

    series = sampler.series()
    assert sampler.latest is not None
    assert sampler.latest.waiting_room
    assert series.queue_limit == [2.0]
    assert series.queue_in_flight == [2.0]
    assert series.queue_waiting == [5.0]
    assert series.queue_admitted_per_second == [pytest.approx(2.0)]
    # Two of four waits in the first bucket (under 1 s): the median is its top; the 99th
    # percentile lies in the bucket of the 8 s wait.
    assert series.queue_wait_seconds["p50"] == [pytest.approx(1.0)]
    assert 5.0 < (series.queue_wait_seconds["p99"][0] or 0) <= 10.0

    # Admissions over the next interval only: a quiet queue admits nobody per second.
    clock.now += 1
    sampler.sample()
    assert sampler.series().queue_admitted_per_second == [pytest.approx(2.0), 0.0]
