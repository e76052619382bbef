"""The payment circuit breaker shared by every process and replica, kept in Redis.

One process's failed calls count for all, so they all open together and none keeps asking
a provider the others already know is down; after the cool-down exactly one trial call goes,
from whichever process claims it first (SET NX, with a lease as long as one call may take, so
a trial whose process died frees itself). The rules are `BreakerPolicy`'s, applied here to
what Redis keeps under `<prefix>:cb:payments:`:

- `opened`: when the breaker opened (absent while closed); open for the cool-down, then
  half-open until the trial's report closes it or opens it again;
- `run`: failures in a row; `calls` and `failures`: the window's calls, sorted by time;
- `trial`: the process holding the trial call.

Each report is one MULTI round trip (a transition adds one). While Redis fails, each
process's own `CircuitBreaker` decides, as it does without Redis: a provider outage during a
Redis outage is still caught, a few calls per process later.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from colonnade.kernel.clock import Clock
from colonnade.kernel.shared_state import UNREACHABLE, Outage
from colonnade.modules.payments.circuit import BreakerPolicy, CircuitBreaker, CircuitState

# Deletes the trial claim only if it is still this process's (its lease may have ended).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class SharedCircuitBreaker:
    def __init__(
        self,
        redis: Redis,
        policy: BreakerPolicy,
        clock: Clock,
        *,
        prefix: str,
        trial_lease: timedelta,
    ) -> None:
        self._redis = redis
        self._policy = policy
        self._clock = clock
        keys = f"{prefix}:cb:payments:"
        self._opened = keys + "opened"
        self._run = keys + "run"
        self._calls = keys + "calls"
        self._failures = keys + "failures"
        self._trial = keys + "trial"
        self._lease_ms = max(1, int(trial_lease.total_seconds() * 1000))
        self._window_ms = max(1, int(policy.window.total_seconds() * 1000))
        self._release = redis.register_script(_RELEASE)
        self._fallback = CircuitBreaker(policy, clock)
        self._outage = Outage("payment_circuit")
        self._opened_at: datetime | None = None  # as last read from Redis
        self._holding: str | None = None  # this process's trial claim
        self._fell_back = False

    @property
    def state(self) -> CircuitState:
        return self._fallback.state if self._fell_back else self._shared_state()

    def retry_after(self) -> int:
        if self._fell_back:
            return self._fallback.retry_after()
        return self._policy.retry_after(self._opened_at, self._clock.now())

    async def allow(self) -> bool:
        if self._outage.skipping():
            return self._fall_back().allow()
        try:
            self._seen(await self._redis.get(self._opened))
            state = self._shared_state()
            if state is not CircuitState.HALF_OPEN:
                allowed = state is CircuitState.CLOSED
            else:
                claim = secrets.token_hex(8)
                allowed = bool(
                    await self._redis.set(self._trial, claim, nx=True, px=self._lease_ms)
                )
                if allowed:
                    self._holding = claim
        except UNREACHABLE as error:
            self._outage.failed(error)
            return self._fall_back().allow()
        self._answered()
        return allowed

    async def succeeded(self) -> None:
        if self._outage.skipping():
            self._fall_back().succeeded()
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(self._opened)
                pipe.set(self._run, 0)
                self._remember(pipe, self._calls)
                opened, *_ = await pipe.execute()
            self._seen(opened)
            if self._shared_state() is CircuitState.HALF_OPEN:  # the trial answered: close
                await self._redis.delete(
                    self._opened, self._run, self._calls, self._failures, self._trial
                )
                self._holding = None
                self._seen(None)
        except UNREACHABLE as error:
            self._outage.failed(error)
            self._fall_back().succeeded()
            return
        self._answered()

    async def failed(self) -> None:
        if self._outage.skipping():
            self._fall_back().failed()
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(self._opened)
                pipe.incr(self._run)
                self._remember(pipe, self._calls)
                self._remember(pipe, self._failures)
                pipe.zcard(self._calls)
                pipe.zcard(self._failures)
                replies = await pipe.execute()
            opened, run = replies[:2]
            calls, failures = replies[-2:]
            self._seen(opened)
            state = self._shared_state()
            if state is CircuitState.HALF_OPEN:
                await self._open(again=True)
            elif state is CircuitState.CLOSED and self._policy.opens(run, calls, failures):
                await self._open(again=False)
            # Open and cooling down: a late failure of a call let through before; it is open.
        except UNREACHABLE as error:
            self._outage.failed(error)
            self._fall_back().failed()
            return
        self._answered()

    async def abandoned(self) -> None:
        claim, self._holding = self._holding, None
        if claim is None:  # no shared trial here; perhaps one of this process's own breaker
            self._fallback.abandoned()
            return
        try:
            await self._release([self._trial], [claim])
        except UNREACHABLE as error:
            self._outage.failed(error)  # the claim's lease ends it
            return
        self._answered()

    # --- Redis ----------------------------------------------------------------------------

    def _remember(self, pipe: Pipeline, key: str) -> None:
        """Adds this call to a window's sorted set, and drops what the window has passed."""
        now = self._clock.now().timestamp()
        pipe.zadd(key, {secrets.token_hex(8): now})
        pipe.zremrangebyscore(key, "-inf", now - self._policy.window.total_seconds())
        pipe.pexpire(key, self._window_ms)

    async def _open(self, *, again: bool) -> None:
        """Opens the breaker now; when a first opening races another process's, the earlier
        one stands (NX), so the cool-down is not pushed back."""
        now = repr(self._clock.now().timestamp())
        async with self._redis.pipeline(transaction=True) as pipe:
            if again:
                pipe.set(self._opened, now)
                pipe.delete(self._trial)
            else:
                pipe.set(self._opened, now, nx=True)
            pipe.get(self._opened)
            *_, opened = await pipe.execute()
        self._holding = None
        self._seen(opened)

    def _shared_state(self) -> CircuitState:
        return self._policy.state_since(self._opened_at, self._clock.now())

    def _seen(self, opened: bytes | str | None) -> None:
        self._opened_at = None if opened is None else datetime.fromtimestamp(float(opened), UTC)

    # --- this process's own breaker while Redis fails ---------------------------------------

    def _fall_back(self) -> CircuitBreaker:
        self._fell_back = True
        return self._fallback

    def _answered(self) -> None:
        self._fell_back = False
        self._outage.answered()
