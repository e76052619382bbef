"""The shop watching itself: every few seconds a snapshot of the metrics the operations page
and the SLOs need, kept in bounded rings, from which rates, latency percentiles and the
burn-rate alerts are computed.

It reads the process's own prometheus_client registry, so in the embedded shape it sees the
whole shop; with several processes each judges its own traffic, and Prometheus (with the
rules file written from the same SLO definitions) judges them together. A metric that is not
registered reads as zero.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from colonnade.kernel.histograms import quantile
from colonnade.kernel.metrics import ALERTS_FIRING
from colonnade.kernel.periodic import Every
from colonnade.ops.slo import (
    BURN_RULES,
    CONDITIONS,
    OBJECTIVES,
    QUEUED_OUTCOMES,
    AlertState,
    AnsweredWithin,
    AnsweredWithoutServerError,
    ConditionState,
    Events,
    Objective,
    evaluate,
)

# Latency percentiles on the page are over this much recent traffic: one interval alone holds
# too few requests in a quiet shop to say anything.
LATENCY_WINDOW_SECONDS = 30.0
# The quantiles the page charts, by the names it shows them under.
P50, P95, P99 = ("p50", 0.5), ("p95", 0.95), ("p99", 0.99)
# The long SLO windows (days) are kept at this many points at most.
_COARSE_POINTS = 4_320

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Reading:
    """One pass over the registry: every sample as (name, labels, value)."""

    samples: list[tuple[str, Labels, float]]

    @classmethod
    def of(cls, registry: CollectorRegistry) -> Reading:
        return cls(
            [(s.name, s.labels, s.value) for family in registry.collect() for s in family.samples]
        )

    def total(self, name: str, where: Callable[[Labels], bool] = lambda _: True) -> float:
        return sum(value for n, labels, value in self.samples if n == name and where(labels))

    def by(self, name: str, label: str) -> dict[str, float]:
        found: dict[str, float] = {}
        for n, labels, value in self.samples:
            if n == name and label in labels:
                found[labels[label]] = found.get(labels[label], 0.0) + value
        return found

    def gauge(self, name: str) -> float | None:
        values = [value for n, _, value in self.samples if n == name]
        return sum(values) if values else None

    def highest(self, name: str) -> float | None:
        """The largest value of a gauge over its label sets (one per worker, say)."""
        values = [value for n, _, value in self.samples if n == name]
        return max(values) if values else None


@dataclass(frozen=True)
class Snapshot:
    at: float
    requests: float
    server_errors: float
    # Cumulative counts per bucket bound, over every route.
    latency_buckets: tuple[tuple[float, float], ...]
    checkouts: Mapping[str, float]
    stockouts: float
    outbox_backlog: float | None
    outbox_lag_seconds: float | None
    # Per objective: cumulative (good, total) events.
    indicators: Mapping[str, tuple[float, float]]
    # Alerts others raise through the same gauge (maintenance jobs, for one).
    reported_alerts: Mapping[str, float] = field(default_factory=dict)
    # The gauges the condition alerts watch, at their highest.
    conditions: Mapping[str, float | None] = field(default_factory=dict)
    # Uses of promotions' codes, by code; and how many promotions run.
    promotion_uses: Mapping[str, float] = field(default_factory=dict)
    promotions_running: float | None = None
    # The checkout waiting room: its limit (None or 0 while there is no room), checkouts in
    # flight, buyers waiting, its answers by outcome, and its waits' cumulative buckets.
    queue_limit: float | None = None
    queue_in_flight: float | None = None
    queue_waiting: float | None = None
    queue_answers: Mapping[str, float] = field(default_factory=dict)
    queue_wait_buckets: tuple[tuple[float, float], ...] = ()

    @property
    def waiting_room(self) -> bool:
        """Whether a waiting room lets checkouts in: one always has a limit of at least 1."""
        return bool(self.queue_limit)


def _server_error(labels: Labels) -> bool:
    return labels.get("status", "").startswith("5")


def _queued(labels: Labels) -> bool:
    """The waiting room's 503 answers: the shop keeping its promise under a crowd, not a
    server error."""
    return labels.get("outcome") in QUEUED_OUTCOMES


def _is_checkout(indicator: AnsweredWithin) -> Callable[[Labels], bool]:
    return lambda labels: (
        labels.get("method") == indicator.method and labels.get("route") == indicator.route
    )


def _within(indicator: AnsweredWithin) -> Callable[[Labels], bool]:
    """The bucket whose bound is the threshold (the objective picks one of the bounds)."""
    matches = _is_checkout(indicator)

    def check(labels: Labels) -> bool:
        bound = float(labels.get("le", "nan"))
        return matches(labels) and math.isclose(bound, indicator.seconds)

    return check


def indicator_events(objective: Objective, reading: Reading) -> tuple[float, float]:
    indicator = objective.indicator
    if isinstance(indicator, AnsweredWithoutServerError):
        total = reading.total("colonnade_http_requests_total")
        errors = reading.total("colonnade_http_requests_total", _server_error) - reading.total(
            "colonnade_checkout_queue_total", _queued
        )
        return total - max(errors, 0.0), total
    total = reading.total("colonnade_http_request_duration_seconds_count", _is_checkout(indicator))
    good = reading.total("colonnade_http_request_duration_seconds_bucket", _within(indicator))
    return good, total


def _cumulative(reading: Reading, name: str) -> tuple[tuple[float, float], ...]:
    """A histogram's cumulative count per bucket bound, over all its label sets."""
    return tuple(sorted((float(le), count) for le, count in reading.by(name, "le").items()))


def take_snapshot(reading: Reading, at: float) -> Snapshot:
    return Snapshot(
        at=at,
        requests=reading.total("colonnade_http_requests_total"),
        server_errors=reading.total("colonnade_http_requests_total", _server_error),
        latency_buckets=_cumulative(reading, "colonnade_http_request_duration_seconds_bucket"),
        checkouts=reading.by("colonnade_checkouts_total", "outcome"),
        stockouts=reading.total("colonnade_stockouts_total"),
        outbox_backlog=reading.gauge("colonnade_outbox_backlog"),
        outbox_lag_seconds=reading.gauge("colonnade_outbox_lag_seconds"),
        indicators={o.name: indicator_events(o, reading) for o in OBJECTIVES},
        reported_alerts=reading.by("colonnade_alerts_firing", "alert"),
        conditions={c.metric: reading.highest(c.metric) for c in CONDITIONS},
        promotion_uses=reading.by("colonnade_promotion_uses_total", "code"),
        promotions_running=reading.gauge("colonnade_promotions_running"),
        queue_limit=reading.gauge("colonnade_checkout_queue_limit"),
        queue_in_flight=reading.gauge("colonnade_checkout_queue_in_flight"),
        queue_waiting=reading.gauge("colonnade_checkout_queue_waiting"),
        queue_answers=reading.by("colonnade_checkout_queue_total", "outcome"),
        queue_wait_buckets=_cumulative(reading, "colonnade_checkout_queue_wait_seconds_bucket"),
    )


def _bucket_delta(
    newer: tuple[tuple[float, float], ...], older: tuple[tuple[float, float], ...]
) -> list[tuple[float, float]]:
    before = dict(older)
    return [(bound, max(0.0, count - before.get(bound, 0.0))) for bound, count in newer]


def _checkouts_of(outcome: str) -> Callable[[Snapshot], float]:
    return lambda snapshot: snapshot.checkouts.get(outcome, 0.0)


def _uses_of(code: str) -> Callable[[Snapshot], float]:
    return lambda snapshot: snapshot.promotion_uses.get(code, 0.0)


@dataclass(frozen=True)
class Series:
    """What the page charts: one value per snapshot interval (None where it says nothing)."""

    at: list[float]
    requests_per_second: list[float | None]
    server_errors_per_second: list[float | None]
    latency_seconds: dict[str, list[float | None]]
    checkouts_per_minute: dict[str, list[float | None]]
    stockouts_per_minute: list[float | None]
    outbox_backlog: list[float | None]
    outbox_lag_seconds: list[float | None]
    promotion_uses_per_minute: dict[str, list[float | None]]
    # The checkout waiting room (None where it was off).
    queue_waiting: list[float | None]
    queue_in_flight: list[float | None]
    queue_limit: list[float | None]
    queue_admitted_per_second: list[float | None]
    queue_wait_seconds: dict[str, list[float | None]]


class Sampler:
    def __init__(
        self,
        *,
        every_seconds: float,
        history_points: int,
        window_scale: float = 1.0,
        registry: CollectorRegistry = REGISTRY,
        firing: Gauge = ALERTS_FIRING,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.every_seconds = every_seconds
        self.window_scale = window_scale
        self._registry = registry
        self._firing = firing
        self._clock = clock
        self._recent: deque[Snapshot] = deque(maxlen=history_points)
        longest = max(r.long_window for r in BURN_RULES) * window_scale
        self._coarse_step = max(every_seconds, longest / _COARSE_POINTS)
        self._coarse: deque[Snapshot] = deque(maxlen=_COARSE_POINTS + 2)
        self.alerts: list[AlertState] = []
        self.conditions: list[ConditionState] = []
        self._loop = Every("ops-sampler", every_seconds, self._sample_now, "ops.sampling_failed")
        for state in self._evaluate():
            self._firing.labels(alert=state.alert).set(0)
        for condition in CONDITIONS:
            self._firing.labels(alert=condition.alert).set(0)

    # Taking snapshots

    def sample(self) -> None:
        snapshot = take_snapshot(Reading.of(self._registry), self._clock())
        self._recent.append(snapshot)
        if not self._coarse or snapshot.at - self._coarse[-1].at >= self._coarse_step:
            self._coarse.append(snapshot)
        self.alerts = self._evaluate()
        for state in self.alerts:
            self._firing.labels(alert=state.alert).set(1 if state.firing else 0)
        self.conditions = [ConditionState(c, snapshot.conditions.get(c.metric)) for c in CONDITIONS]
        for condition in self.conditions:
            self._firing.labels(alert=condition.condition.alert).set(1 if condition.firing else 0)

    async def _sample_now(self) -> None:
        self.sample()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    # Judging

    @property
    def latest(self) -> Snapshot | None:
        return self._recent[-1] if self._recent else None

    def _at_or_before(self, moment: float) -> Snapshot | None:
        """The newest snapshot taken no later than `moment`; the oldest held if none is."""
        for ring in (self._recent, self._coarse):
            if ring and ring[0].at <= moment:
                return next(s for s in reversed(ring) if s.at <= moment)
        oldest = [ring[0] for ring in (self._recent, self._coarse) if ring]
        return min(oldest, key=lambda s: s.at) if oldest else None

    def _events(self, objective: Objective, window: float) -> Events:
        latest = self.latest
        start = self._at_or_before(latest.at - window) if latest else None
        if latest is None or start is None or start is latest:
            return Events(0.0, 0.0)
        good_now, total_now = latest.indicators[objective.name]
        good_then, total_then = start.indicators[objective.name]
        return Events(good_now - good_then, total_now - total_then)

    def _evaluate(self) -> list[AlertState]:
        scale = self.window_scale
        return [
            evaluate(
                objective,
                rule,
                long=self._events(objective, rule.long_window * scale),
                short=self._events(objective, rule.short_window * scale),
            )
            for objective in OBJECTIVES
            for rule in BURN_RULES
        ]

    def firing_alerts(self) -> dict[str, bool]:
        """Every alert known to the shop: the SLO ones and those others report."""
        latest = self.latest
        found = {
            name: value >= 1 for name, value in (latest.reported_alerts if latest else {}).items()
        }
        found.update({state.alert: state.firing for state in self.alerts})
        found.update({c.condition.alert: c.firing for c in self.conditions})
        return found

    # Charting

    def series(self) -> Series:
        points = list(self._recent)
        pairs = list(itertools.pairwise(points))
        outcomes = sorted({o for s in points for o in s.checkouts})
        codes = sorted({c for s in points for c in s.promotion_uses})

        def per(seconds: float, value: Callable[[Snapshot], float]) -> list[float | None]:
            return [
                max(0.0, value(new) - value(old)) * seconds / (new.at - old.at)
                if new.at > old.at
                else None
                for old, new in pairs
            ]

        def percentiles(
            buckets: Callable[[Snapshot], tuple[tuple[float, float], ...]],
            *wanted: tuple[str, float],
        ) -> dict[str, list[float | None]]:
            """Each quantile wanted, by name, of what a histogram counted in the window."""
            found: dict[str, list[float | None]] = {name: [] for name, _ in wanted}
            window = max(LATENCY_WINDOW_SECONDS, self.every_seconds)
            for _, new in pairs:
                start = next((s for s in reversed(points) if s.at <= new.at - window), points[0])
                delta = _bucket_delta(buckets(new), buckets(start))
                for name, q in wanted:
                    found[name].append(quantile(q, delta))
            return found

        def while_queueing(values: list[float | None]) -> list[float | None]:
            """Nothing where the waiting room was off, rather than a flat zero."""
            return [
                v if new.waiting_room else None for v, (_, new) in zip(values, pairs, strict=True)
            ]

        return Series(
            at=[new.at for _, new in pairs],
            requests_per_second=per(1, lambda s: s.requests),
            server_errors_per_second=per(1, lambda s: s.server_errors),
            latency_seconds=percentiles(lambda s: s.latency_buckets, P50, P95, P99),
            checkouts_per_minute={o: per(60, _checkouts_of(o)) for o in outcomes},
            stockouts_per_minute=per(60, lambda s: s.stockouts),
            outbox_backlog=[new.outbox_backlog for _, new in pairs],
            outbox_lag_seconds=[new.outbox_lag_seconds for _, new in pairs],
            promotion_uses_per_minute={c: per(60, _uses_of(c)) for c in codes},
            queue_waiting=while_queueing([new.queue_waiting for _, new in pairs]),
            queue_in_flight=while_queueing([new.queue_in_flight for _, new in pairs]),
            queue_limit=while_queueing([new.queue_limit for _, new in pairs]),
            queue_admitted_per_second=while_queueing(
                per(1, lambda s: s.queue_answers.get("admitted", 0.0))
            ),
            queue_wait_seconds={
                name: while_queueing(values)
                for name, values in percentiles(lambda s: s.queue_wait_buckets, P50, P99).items()
            },
        )
