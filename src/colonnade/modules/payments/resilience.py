"""Any payment provider, made safe to depend on when it is slow or down.

- Every call has a time limit: a provider that does not answer in time has not answered
  (ProviderUnavailable), as the port defines it.
- A call that did not answer is asked again, after an exponential, jittered back-off, only
  when asking again cannot act twice: each call of the port carries an idempotency key, and
  the provider answers a repeated key with its first answer. Declines are answers and are
  never retried.
- A circuit breaker (circuit.py) stops asking a provider that keeps failing: while it is
  open a call fails at once with ProviderCircuitOpen, and the provider is not asked.

The breaker lives in this process (`LocalBreaker`): each worker process learns on its own that
the provider is down (a few failed calls each) and tries it again on its own. With Redis
configured, every process and replica shares one (adapters/shared_circuit.py).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from colonnade.kernel.metrics import PAYMENT_CIRCUIT_STATE, PAYMENT_PROVIDER_CALLS
from colonnade.kernel.money import Money
from colonnade.modules.payments.circuit import CircuitBreaker, CircuitState
from colonnade.modules.payments.domain import (
    PaymentProvider,
    ProviderCircuitOpen,
    ProviderOutcome,
    ProviderUnavailable,
)

log = structlog.get_logger(__name__)

# Every operation of the port is keyed, so every one may be asked again.
RETRY_SAFE = frozenset({"authorize", "charge", "capture", "void", "refund"})


class Breaker(Protocol):
    """A circuit breaker as the calls use it: `allow` before each call, then one report of how
    it ended. Asynchronous, because a shared breaker asks Redis."""

    @property
    def state(self) -> CircuitState:
        """The state as this process last saw it."""
        ...

    async def allow(self) -> bool: ...

    async def succeeded(self) -> None: ...

    async def failed(self) -> None: ...

    async def abandoned(self) -> None: ...

    def retry_after(self) -> int: ...


class LocalBreaker:
    """This process's own circuit breaker, as a `Breaker`."""

    def __init__(self, circuit: CircuitBreaker) -> None:
        self._circuit = circuit

    @property
    def state(self) -> CircuitState:
        return self._circuit.state

    async def allow(self) -> bool:
        return self._circuit.allow()

    async def succeeded(self) -> None:
        self._circuit.succeeded()

    async def failed(self) -> None:
        self._circuit.failed()

    async def abandoned(self) -> None:
        self._circuit.abandoned()

    def retry_after(self) -> int:
        return self._circuit.retry_after()


class ResilientProvider:
    def __init__(
        self,
        provider: PaymentProvider,
        *,
        breaker: Breaker,
        timeout_seconds: float,
        retries: int = 2,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 5.0,
        retry_safe: frozenset[str] = RETRY_SAFE,
    ) -> None:
        self._provider = provider
        self._breaker = breaker
        self._timeout = timeout_seconds
        self._retries = retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._retry_safe = retry_safe
        PAYMENT_CIRCUIT_STATE.set(breaker.state)

    async def authorize(self, key: str, amount: Money, token: str) -> ProviderOutcome:
        return await self._call("authorize", lambda: self._provider.authorize(key, amount, token))

    async def charge(self, key: str, amount: Money, token: str) -> ProviderOutcome:
        return await self._call("charge", lambda: self._provider.charge(key, amount, token))

    async def capture(self, key: str, reference: str, amount: Money) -> ProviderOutcome:
        return await self._call("capture", lambda: self._provider.capture(key, reference, amount))

    async def void(self, key: str, reference: str) -> ProviderOutcome:
        return await self._call("void", lambda: self._provider.void(key, reference))

    async def refund(self, key: str, reference: str, amount: Money) -> ProviderOutcome:
        return await self._call("refund", lambda: self._provider.refund(key, reference, amount))

    async def _call(
        self, operation: str, call: Callable[[], Awaitable[ProviderOutcome]]
    ) -> ProviderOutcome:
        attempts = 1 + (self._retries if operation in self._retry_safe else 0)
        for attempt in range(1, attempts + 1):
            try:
                return await self._once(operation, call)
            except ProviderCircuitOpen:
                raise
            except ProviderUnavailable as unavailable:
                if attempt == attempts:
                    raise
                log.info(
                    "payments.provider_retry",
                    operation=operation,
                    attempt=attempt,
                    error=str(unavailable),
                )
            await asyncio.sleep(self._pause_before(attempt + 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _once(
        self, operation: str, call: Callable[[], Awaitable[ProviderOutcome]]
    ) -> ProviderOutcome:
        if not await self._breaker.allow():
            self._show_state()
            raise ProviderCircuitOpen(self._breaker.retry_after())
        try:
            async with asyncio.timeout(self._timeout):
                outcome = await call()
        except TimeoutError:
            await self._ended(operation, "timed_out", self._breaker.failed)
            raise ProviderUnavailable(
                f"the payment provider did not answer the {operation} within "
                f"{self._timeout:g} seconds; try again later"
            ) from None
        except ProviderUnavailable:
            await self._ended(operation, "unavailable", self._breaker.failed)
            raise
        except Exception:
            # An error of ours or a rejected request: it says nothing about the provider's health.
            await self._ended(operation, "error", self._breaker.abandoned)
            raise
        except BaseException:
            await self._breaker.abandoned()  # cancelled: the caller went away
            raise
        await self._ended(
            operation, "approved" if outcome.approved else "declined", self._breaker.succeeded
        )
        return outcome

    def _pause_before(self, attempt: int) -> float:
        """Exponential back-off with jitter, so callers that failed together do not all come
        back at the same instant: between half and all of base * 2^(attempt - 2)."""
        ceiling = min(self._max_backoff, self._backoff * 2 ** (attempt - 2))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - not a secret

    async def _ended(
        self, operation: str, outcome: str, report: Callable[[], Awaitable[None]]
    ) -> None:
        PAYMENT_PROVIDER_CALLS.labels(operation, outcome).inc()
        before = self._breaker.state
        await report()
        self._show_state()
        after = self._breaker.state
        if after != before:
            log.warning("payments.circuit_changed", before=before.name, after=after.name)

    def _show_state(self) -> None:
        PAYMENT_CIRCUIT_STATE.set(self._breaker.state)
