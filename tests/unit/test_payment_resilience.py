"""The resilient provider's rules with a scripted stand-in for the card processor (the one
party outside Colonnade): what is retried, what counts against the provider, what fails fast."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.money import Money
from colonnade.modules.payments.circuit import BreakerPolicy, CircuitBreaker, CircuitState
from colonnade.modules.payments.domain import (
    ProviderCircuitOpen,
    ProviderOutcome,
    ProviderUnavailable,
)
from colonnade.modules.payments.resilience import LocalBreaker, ResilientProvider

USD = Money(1000, "USD")


class ScriptedProcessor:
    """Answers each call with the next step of its script: an outcome, an error, or a hang."""

    def __init__(self, *script: ProviderOutcome | Exception | None) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, str]] = []

    async def _next(self, operation: str, key: str) -> ProviderOutcome:
        self.calls.append((operation, key))
        step = self.script.pop(0) if self.script else ProviderOutcome.approve("ch_1")
        if step is None:
            await asyncio.sleep(3600)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, ProviderOutcome)
        return step

    async def authorize(self, key: str, amount: Money, token: str) -> ProviderOutcome:
        return await self._next("authorize", key)

    async def capture(self, key: str, reference: str, amount: Money) -> ProviderOutcome:
        return await self._next("capture", key)

    async def void(self, key: str, reference: str) -> ProviderOutcome:
        return await self._next("void", key)

    async def refund(self, key: str, reference: str, amount: Money) -> ProviderOutcome:
        return await self._next("refund", key)


Build = Callable[..., tuple[ResilientProvider, CircuitBreaker]]


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(datetime(2025, 11, 28, 9, 0, tzinfo=UTC))


@pytest.fixture
def resilient(clock: SettableClock) -> Build:
    def build(
        processor: ScriptedProcessor, **options: object
    ) -> tuple[ResilientProvider, CircuitBreaker]:
        breaker = CircuitBreaker(
            BreakerPolicy(consecutive_failures=3, cooldown=timedelta(seconds=30)), clock
        )
        settings: dict[str, object] = {
            "timeout_seconds": 5.0,
            "retries": 2,
            "backoff_seconds": 0.001,
            **options,
        }
        provider = ResilientProvider(processor, breaker=LocalBreaker(breaker), **settings)  # type: ignore[arg-type]
        return provider, breaker

    return build


def no_answer() -> ProviderUnavailable:
    return ProviderUnavailable("no answer")


async def test_a_call_that_did_not_answer_is_asked_again_under_the_same_key(
    resilient: Build,
) -> None:
    processor = ScriptedProcessor(no_answer(), ProviderOutcome.approve("ch_1"))
    provider, breaker = resilient(processor)

    outcome = await provider.authorize("pay-1", USD, "tok_visa")

    assert outcome.approved
    assert processor.calls == [("authorize", "pay-1"), ("authorize", "pay-1")]
    assert breaker.state is CircuitState.CLOSED


async def test_retries_stop_after_the_configured_number(resilient: Build) -> None:
    processor = ScriptedProcessor(no_answer(), no_answer(), no_answer(), no_answer())
    provider, _ = resilient(processor, retries=1)

    with pytest.raises(ProviderUnavailable):
        await provider.capture("pay-1:capture", "ch_1", USD)
    assert len(processor.calls) == 2


async def test_a_call_that_is_not_safe_to_repeat_is_asked_once(resilient: Build) -> None:
    processor = ScriptedProcessor(no_answer(), ProviderOutcome.approve("ch_1"))
    provider, _ = resilient(processor, retry_safe=frozenset({"authorize"}))

    with pytest.raises(ProviderUnavailable):
        await provider.refund("refund:1", "ch_1", USD)
    assert processor.calls == [("refund", "refund:1")]


async def test_a_decline_is_an_answer_never_retried_and_never_held_against_the_provider(
    resilient: Build,
) -> None:
    declines = [ProviderOutcome.decline("card_declined") for _ in range(10)]
    processor = ScriptedProcessor(*declines)
    provider, breaker = resilient(processor)

    for n in range(10):
        assert not (await provider.authorize(f"pay-{n}", USD, "tok_chargeDeclined")).approved
    assert len(processor.calls) == 10
    assert breaker.state is CircuitState.CLOSED


async def test_a_provider_slower_than_the_timeout_has_not_answered(resilient: Build) -> None:
    processor = ScriptedProcessor(None)
    provider, _ = resilient(processor, timeout_seconds=0.05, retries=0)

    with pytest.raises(ProviderUnavailable, match=r"did not answer the void within 0\.05"):
        await provider.void("pay-1:void", "ch_1")


async def test_an_open_breaker_fails_at_once_without_asking_the_provider(
    resilient: Build, clock: SettableClock
) -> None:
    processor = ScriptedProcessor(*[no_answer() for _ in range(3)])
    provider, breaker = resilient(processor)
    with pytest.raises(ProviderUnavailable):
        await provider.authorize("pay-1", USD, "tok_visa")  # three attempts, three failures
    assert breaker.state is CircuitState.OPEN

    with pytest.raises(ProviderCircuitOpen) as open_:
        await provider.authorize("pay-2", USD, "tok_visa")
    assert len(processor.calls) == 3
    assert open_.value.retry_after == 30
    assert open_.value.problem()["code"] == "payment_provider_unavailable"

    clock.advance(timedelta(seconds=30))
    assert (await provider.authorize("pay-2", USD, "tok_visa")).approved
    assert breaker.state is CircuitState.CLOSED
