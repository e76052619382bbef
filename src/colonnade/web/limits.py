"""Limits on what one client may ask of the shop: the size of a request body, and how often it
may log in, register or check out.

Rate limits live in this process's memory (the embedded shape), where with several processes
each counts on its own, so a client gets up to processes x limit. With Redis configured the
buckets live there instead (shared_limits.py), behind the same `Limiter` interface.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from colonnade.web.asgi import buffered_body, header, keep_body, send_problem


class BodySizeLimit:
    """Refuses bodies over `max_bytes` with 413, by their Content-Length or, for chunked
    bodies, as soon as the bytes read so far exceed it; nothing of such a request runs."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        # Read (at most max_bytes + one chunk) before the app starts, so a too large body is
        # refused before any route has done anything with its beginning.
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, keep_body(scope, b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_problem(
            scope,
            receive,
            send,
            status=413,
            code="body_too_large",
            title="Body too large",
            detail=f"request bodies may hold at most {self.max_bytes} bytes",
            max_bytes=self.max_bytes,
        )


class Limiter(Protocol):
    async def take(self, wants: Sequence[tuple[str, int, float]]) -> int:
        """Take one token from each `(key, limit, window seconds)` bucket if every one has a
        token, and answer 0; otherwise take none and answer the seconds until all would."""
        ...


def whole_seconds(wait: float) -> int:
    """A wait as the whole seconds of Retry-After: at least 1, rounded up, but rounded first
    so float noise (1.0000000001 s) does not add a whole second."""
    return max(1, math.ceil(round(wait, 6)))


class RateLimiter:
    """Token buckets by key: each holds up to `limit` tokens and refills `limit` per `window`
    seconds, so a quiet client may burst up to its limit, and a busy one gets the steady rate.

    Single-threaded by design (one event loop): `take` awaits nothing, so it is atomic.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._swept_at = clock()

    async def take(self, wants: Sequence[tuple[str, int, float]]) -> int:
        now = self._clock()
        self._sweep(now, max((window for _, _, window in wants), default=0.0))
        levels = [self._level(key, limit, window, now) for key, limit, window in wants]
        waits = [
            (1 - level) * window / limit
            for level, (_, limit, window) in zip(levels, wants, strict=True)
            if level < 1
        ]
        if waits:
            return whole_seconds(max(waits))
        for level, (key, _, _) in zip(levels, wants, strict=True):
            self._buckets[key] = (level - 1, now)
        return 0

    def _level(self, key: str, limit: int, window: float, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(limit), now))
        return min(float(limit), tokens + (now - at) * limit / window)

    def _sweep(self, now: float, window: float) -> None:
        # A bucket untouched for a whole window is full again: forgetting it changes nothing,
        # and keeps memory bounded by the clients of the last window.
        if now - self._swept_at < window:
            return
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < window}
        self._swept_at = now


AccountOf = Callable[[dict[str, str], bytes], str | None]


@dataclass(frozen=True)
class RateLimit:
    """A route's limits: per client address, and per account (what the request is about)."""

    name: str
    method: str
    path: str
    per_address: int
    per_account: int | None = None
    account: AccountOf | None = None
    window_seconds: float = 60.0
    # A request carrying this header spends only the address's allowance, not the account's.
    unless_header: str | None = None

    def matches(self, scope: Scope) -> dict[str, str] | None:
        if scope["method"] != self.method:
            return None
        found = path_pattern(self.path).fullmatch(scope["path"])
        return found.groupdict() if found else None


@functools.cache
def path_pattern(path: str) -> re.Pattern[str]:
    """A route's path template (`/store/carts/{cart_id}`) as a pattern whose groups are its
    parameters, for middlewares that act on one route before routing."""
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))


def form_field(name: str) -> AccountOf:
    def account(_: dict[str, str], body: bytes) -> str | None:
        values = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        return values.get(name, "").strip().lower() or None

    return account


def json_field(name: str) -> AccountOf:
    def account(_: dict[str, str], body: bytes) -> str | None:
        try:
            document = json.loads(body)
        except ValueError:
            return None
        value = document.get(name) if isinstance(document, dict) else None
        if not isinstance(value, str):
            return None
        return value.strip().lower() or None

    return account


def path_parameter(name: str) -> AccountOf:
    def account(params: dict[str, str], _: bytes) -> str | None:
        return params.get(name)

    return account


class RateLimits:
    """Applies `RateLimit`s by route, so the routes themselves stay unaware of them."""

    def __init__(self, app: ASGIApp, limits: Sequence[RateLimit], limiter: Limiter) -> None:
        self.app = app
        self.limits = limits
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for limit in self.limits:
            params = limit.matches(scope)
            if params is not None:
                allowed = await self._apply(limit, params, scope, receive, send)
                if allowed is None:
                    return
                receive = allowed
                break
        await self.app(scope, receive, send)

    async def _apply(
        self,
        limit: RateLimit,
        params: dict[str, str],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> Receive | None:
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wants = [(f"{limit.name}:address:{address}", limit.per_address, limit.window_seconds)]
        excused = limit.unless_header is not None and any(
            name == limit.unless_header.lower().encode() for name, _ in scope["headers"]
        )
        if limit.account is not None and limit.per_account is not None and not excused:
            body = b""
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body, receive = await buffered_body(scope, receive)
            account = limit.account(params, body)
            if account is not None:
                # Hashed: the limiter keeps no e-mail addresses in memory.
                digest = hashlib.sha256(account.encode()).hexdigest()
                wants.append(
                    (f"{limit.name}:account:{digest}", limit.per_account, limit.window_seconds)
                )
        retry_after = await self.limiter.take(wants)
        if retry_after == 0:
            return receive
        await send_problem(
            scope,
            receive,
            send,
            status=429,
            code="rate_limited",
            title="Too many requests",
            detail=f"too many {limit.name} attempts; try again in {retry_after} seconds",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )
        return None
