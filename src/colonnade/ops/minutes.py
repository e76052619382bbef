"""The system's side of the warehouse: every minute, what this process answered per route
(requests, server errors, latency per bucket), from its own metrics, kept in the analytics
warehouse beside the business facts, so "checkout p99 rose while DE orders doubled" is one
question over one store.

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
from colonnade.modules.analytics.service import RouteMinute
from colonnade.ops.sampler import Reading

MINUTE = 60.0

_BUCKETS = "colonnade_http_request_duration_seconds_bucket"
_REQUESTS = "colonnade_http_requests_total"

# Per route: requests, server errors, and cumulative answers per bucket bound.
Totals = Mapping[str, tuple[float, float, Mapping[float, float]]]


class Keep(Protocol):
    """Takes a process's minutes: counted at once, written to the files now and then, or at
    once with `write` (the process stops); how many minutes it wrote."""

    def __call__(
        self, process: str, minutes: Sequence[RouteMinute], *, write: bool = False
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
        self._last: Totals = totals(Reading.of(registry))
        self._loop = Every("route-minutes", MINUTE, self.sample, "ops.minutes_failed")

    async def sample(self, *, write: bool = False) -> int:
        """What was answered since the last sample, as the minute that just ended, handed
        to the warehouse; how many minutes it wrote to its files."""
        now = totals(Reading.of(self._registry))
        ended = self._clock() // MINUTE * MINUTE - MINUTE
        minute = datetime.fromtimestamp(ended, UTC)
        answered = minute_of(self._last, now, minute, self.process)
        self._last = now
        return await self._keep(self.process, answered, write=write)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self.sample(write=True)
