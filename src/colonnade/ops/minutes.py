"""The system's side of the warehouse: every minute, what this process answered per route
(requests, server errors, latency per bucket) and what it read of the shop's machinery
(checkouts finished per outcome, the outbox's lag and the database connections in use at
their highest, looked at every few seconds, and the pool's size), from its own metrics, kept
in the analytics warehouse beside the business facts, so "checkout p99 rose while DE orders
doubled" is one question over one store.

Each process reads its own registry (not the whole shop's) and names itself on its rows, so
a shop of several processes adds up their shares. A process's minutes count in its own
answers at once and reach the files every few minutes (and when it stops): other processes
see them then, and a process killed meanwhile loses those minutes of telemetry, never a
business fact.
"""

from __future__ import annotations

import os
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry

from colonnade.kernel.periodic import Every
from colonnade.modules.analytics.service import (
    CHECKOUTS,
    OUTBOX_LAG,
    POOL_IN_USE,
    POOL_SIZE,
    RouteMinute,
    SystemMinute,
)
from colonnade.ops.sampler import Reading

MINUTE = 60.0
# How often the gauges are looked at between minutes: a peak shorter than this may be missed.
LOOK_SECONDS = 5.0

_BUCKETS = "colonnade_http_request_duration_seconds_bucket"
_REQUESTS = "colonnade_http_requests_total"
_CHECKOUTS = "colonnade_checkouts_total"
_OUTBOX_LAG = "colonnade_outbox_lag_seconds"
_POOL = "colonnade_db_pool_connections"
_POOL_SIZE = "colonnade_db_pool_size"

# Per route: requests, server errors, and cumulative answers per bucket bound.
Totals = Mapping[str, tuple[float, float, Mapping[float, float]]]


class Keep(Protocol):
    """Takes a process's minutes: counted at once, written to the files now and then, or at
    once with `write` (the process stops); how many minutes it wrote."""

    def __call__(
        self,
        process: str,
        minutes: Sequence[RouteMinute],
        readings: Sequence[SystemMinute] = (),
        *,
        write: bool = False,
    ) -> Awaitable[int]: ...


def totals(reading: Reading) -> Totals:
    """Every route's counters as they stand (cumulative since the process started)."""
    requests: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for name, labels, value in reading.samples:
        if name not in (_REQUESTS, _BUCKETS):
            continue
        route = f"{labels.get('method', '')} {labels.get('route', '')}"
        if name == _REQUESTS:
            requests[route] += value
            if labels.get("status", "").startswith("5"):
                errors[route] += value
        else:
            buckets[route][float(labels["le"])] += value
    return {route: (requests[route], errors[route], dict(buckets[route])) for route in requests}


def minute_of(previous: Totals, now: Totals, minute: datetime, process: str) -> list[RouteMinute]:
    """What each route answered between two readings: only routes that answered any; per
    latency bucket the answers in it (not cumulative), only buckets that hold any."""
    answered = []
    for route, (requests, errors, cumulative) in sorted(now.items()):
        before_requests, before_errors, before_cumulative = previous.get(route, (0.0, 0.0, {}))
        delta = int(requests - before_requests)
        if delta <= 0:
            continue
        buckets, below = [], 0
        for bound in sorted(cumulative):
            upto = int(cumulative[bound] - before_cumulative.get(bound, 0.0))
            if upto > below:
                buckets.append((bound, upto - below))
            below = max(below, upto)
        answered.append(
            RouteMinute(
                minute=minute,
                process=process,
                route=route,
                requests=delta,
                errors=int(errors - before_errors),
                buckets=tuple(buckets),
            )
        )
    return answered


def peaks(reading: Reading) -> dict[str, float]:
    """The gauges whose highest value in a minute is kept, as they stand (those registered)."""
    found = {}
    lag = reading.highest(_OUTBOX_LAG)
    if lag is not None:
        found[OUTBOX_LAG] = lag
    if reading.gauge(_POOL) is not None:
        found[POOL_IN_USE] = reading.total(_POOL, lambda labels: labels.get("state") == "in_use")
    return found


def readings_of(
    before: Reading,
    now: Reading,
    highest: Mapping[str, float],
    minute: datetime,
    process: str,
) -> list[SystemMinute]:
    """What the machinery did between two readings: checkouts finished per outcome (only
    outcomes that happened), the gauges' highest values, and the pool's size."""
    earlier = before.by(_CHECKOUTS, "outcome")
    told = [
        SystemMinute(minute, process, CHECKOUTS, outcome, count - earlier.get(outcome, 0.0))
        for outcome, count in sorted(now.by(_CHECKOUTS, "outcome").items())
        if count > earlier.get(outcome, 0.0)
    ]
    told += [
        SystemMinute(minute, process, measure, "", value)
        for measure, value in sorted(highest.items())
    ]
    size = now.gauge(_POOL_SIZE)
    if size is not None:
        told.append(SystemMinute(minute, process, POOL_SIZE, "", size))
    return told


class MinuteSampler:
    def __init__(
        self,
        keep: Keep,
        *,
        registry: CollectorRegistry = REGISTRY,
        process: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keep = keep
        self._registry = registry
        self.process = process or f"{socket.gethostname()}-{os.getpid()}"
        self._clock = clock
        self._last = Reading.of(registry)
        self._highest = peaks(self._last)
        self._loop = Every("route-minutes", MINUTE, self.sample, "ops.minutes_failed")
        self._looking = Every("minute-peaks", LOOK_SECONDS, self.look, "ops.minutes_failed")

    async def look(self, reading: Reading | None = None) -> None:
        """Keep the gauges' highest values of the minute so far (from `reading`, or a new
        look at the registry)."""
        for measure, value in peaks(reading or Reading.of(self._registry)).items():
            self._highest[measure] = max(value, self._highest.get(measure, value))

    async def sample(self, *, write: bool = False) -> int:
        """What was answered and read since the last sample, as the minute that just ended,
        handed to the warehouse; how many rows it wrote to its files."""
        reading = Reading.of(self._registry)
        await self.look(reading)
        ended = self._clock() // MINUTE * MINUTE - MINUTE
        minute = datetime.fromtimestamp(ended, UTC)
        answered = minute_of(totals(self._last), totals(reading), minute, self.process)
        read = readings_of(self._last, reading, self._highest, minute, self.process)
        self._last, self._highest = reading, peaks(reading)
        return await self._keep(self.process, answered, read, write=write)

    def start(self) -> None:
        self._loop.start()
        self._looking.start()

    async def stop(self) -> None:
        await self._looking.stop()
        await self._loop.stop()
        await self.sample(write=True)
