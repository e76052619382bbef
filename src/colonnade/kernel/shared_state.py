"""Redis: where the processes and replicas of one shop keep what they must agree on.

With COLONNADE_REDIS_URL set, rate limit buckets, the payment circuit breaker and word of
committed changes go through Redis. Each use falls back to this process's own state while
Redis is down, so an outage of Redis costs the sharing, never a request. `Outage` tells of it
once (a warning, and the colonnade_redis_fallbacks_total metric throughout) and asks Redis
again only every `retry_seconds`, so requests do not each wait for a connection that will
not come.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from colonnade.kernel.metrics import REDIS_FALLBACKS

log = structlog.get_logger(__name__)

# What a call to Redis raises when Redis is down, slow or went away mid-call.
UNREACHABLE = (RedisError, OSError)


def connect(url: str, *, timeout_seconds: float, connections: int = 50) -> Redis:
    """A client and its pool; it connects on first use, so a shop starts while Redis is down.

    At most `connections` to Redis, and a call beyond them waits for one (up to the timeout)
    rather than failing at once, as the default pool would under a burst of requests.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        # A failed call falls back at once: retrying here would hold the request instead.
        retry=Retry(NoBackoff(), 0),
    )
    return Redis.from_pool(pool)


class Outage:
    """Whether one use of Redis (`use`, the metric's label) should ask Redis now."""

    def __init__(
        self, use: str, *, retry_seconds: float = 1.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._use = use
        self._retry_seconds = retry_seconds
        self._now = now
        self._down_since: float | None = None
        self._retry_at = 0.0

    def skipping(self) -> bool:
        """True (and counted as a fallback) while Redis failed less than `retry_seconds` ago."""
        if self._now() < self._retry_at:
            REDIS_FALLBACKS.labels(self._use).inc()
            return True
        return False

    def failed(self, error: BaseException) -> None:
        REDIS_FALLBACKS.labels(self._use).inc()
        now = self._now()
        self._retry_at = now + self._retry_seconds
        if self._down_since is None:
            self._down_since = now
            log.warning("redis.unreachable", use=self._use, error=repr(error))

    def answered(self) -> None:
        if self._down_since is not None:
            log.warning(
                "redis.back", use=self._use, down_seconds=round(self._now() - self._down_since, 1)
            )
            self._down_since = None
