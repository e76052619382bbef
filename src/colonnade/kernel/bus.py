"""The event bus port and its in-process adapter.

Delivery is at least once: the relay retries an event whose delivery failed, so handlers
must be idempotent. `inbox.guard` and `inbox.once` make a handler so.

The port is batch-shaped: the relay hands over a whole batch and gets one result per event,
`None` where every subscriber took it and the error where one did not, so one poison event
never fails its neighbours. An adapter to a broker publishes the batch at once and answers
when each event is acknowledged (or not); the in-process adapter hands each consumer all
the events of the batch it subscribes to in one call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from colonnade.kernel import tracing
from colonnade.kernel.events import Envelope
from colonnade.kernel.metrics import EVENTS_CONSUMED, consumed

log = structlog.get_logger(__name__)

Handler = Callable[[Envelope], Awaitable[None]]
BatchHandler = Callable[[Sequence[Envelope]], Awaitable[None]]
# One per event published, in the batch's order: None once delivered, else why not.
DeliveryResult = Exception | None


class DeliveryFailed(Exception):
    """One or more subscribers failed to take an event; the relay will offer it again."""

    def __init__(self, message: str, consumers: list[str]) -> None:
        super().__init__(message)
        self.consumers = consumers


class EventBus(Protocol):
    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None:
        """`consumer` takes each event of `event_type`, one call per event."""
        ...

    def subscribe_batch(self, event_type: str, consumer: str, handler: BatchHandler) -> None:
        """`consumer` takes the events of `event_type` in batches, one call per batch; when
        a call fails, its events come again one per call, so the failure is the poison
        event's alone."""
        ...

    async def publish_batch(self, envelopes: Sequence[Envelope]) -> list[DeliveryResult]:
        """Deliver `envelopes`; one result per envelope, in their order. Never raises for
        one event's failure: that is its result."""
        ...

    async def health(self) -> str:
        """Whether the bus takes events now: "ok", or why not (readiness shows it)."""
        ...

    async def open(self, *, consumes: Callable[[str], bool]) -> None:
        """Get ready to publish, and hand events to those of this process's subscribers
        whose consumer names `consumes` accepts."""
        ...

    async def close(self) -> None: ...


class BusUnavailable(Exception):
    """The bus cannot take events at all now (its broker is unreachable): no event's fault,
    so the relay keeps them without counting an attempt against them."""


@dataclass(frozen=True)
class Subscriber:
    takes: BatchHandler
    # False: `takes` wraps a handler of single events, so it is only ever given one at a time.
    in_batches: bool

    async def offer(self, consumer: str, envelopes: list[Envelope]) -> dict[str, str]:
        """Hand `envelopes` over; the ids of those refused, with why."""
        hand = _hand_batch if self.in_batches else _hand_one_by_one
        return await hand(consumer, self.takes, envelopes)


class Subscriptions:
    """Who takes which events: event type -> consumer -> how it takes them."""

    def __init__(self) -> None:
        self.by_type: dict[str, dict[str, Subscriber]] = defaultdict(dict)

    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None:
        async def one(envelopes: Sequence[Envelope]) -> None:
            [envelope] = envelopes
            await handler(envelope)

        self._add(event_type, consumer, Subscriber(one, in_batches=False))

    def subscribe_batch(self, event_type: str, consumer: str, handler: BatchHandler) -> None:
        self._add(event_type, consumer, Subscriber(handler, in_batches=True))

    def _add(self, event_type: str, consumer: str, subscriber: Subscriber) -> None:
        if consumer in self.by_type[event_type]:
            raise ValueError(f"{consumer} already subscribes to {event_type}")
        self.by_type[event_type][consumer] = subscriber


class InProcessBus:
    """Hands the events of a batch to every subscriber of their type, in this process.

    Each consumer gets its events in the order they were published; events of different
    types may reach it in another order (retries reorder them anyway).
    """

    def __init__(self) -> None:
        self._subscriptions = Subscriptions()

    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None:
        self._subscriptions.subscribe(event_type, consumer, handler)

    def subscribe_batch(self, event_type: str, consumer: str, handler: BatchHandler) -> None:
        self._subscriptions.subscribe_batch(event_type, consumer, handler)

    async def health(self) -> str:
        return "ok"  # in this process: it works whenever the process does

    async def open(self, *, consumes: Callable[[str], bool]) -> None:
        """Nothing to open: the relay's publishing hands events to every subscriber."""

    async def close(self) -> None:
        """Nothing to close."""

    async def publish(self, envelope: Envelope) -> None:
        """Deliver one event; raises what its delivery failed with."""
        [failure] = await self.publish_batch([envelope])
        if failure is not None:
            raise failure

    async def publish_batch(self, envelopes: Sequence[Envelope]) -> list[DeliveryResult]:
        refusals: dict[str, dict[str, str]] = defaultdict(dict)  # event id -> consumer -> why
        for event_type, of_type in _by_type(envelopes).items():
            for consumer, subscriber in self._subscriptions.by_type.get(event_type, {}).items():
                refused = await subscriber.offer(consumer, of_type)
                for event_id, reason in refused.items():
                    refusals[event_id][consumer] = reason
        return [_result(refusals.get(envelope.event_id)) for envelope in envelopes]


def _by_type(envelopes: Sequence[Envelope]) -> dict[str, list[Envelope]]:
    grouped: dict[str, list[Envelope]] = defaultdict(list)
    for envelope in envelopes:
        grouped[envelope.event_type].append(envelope)
    return grouped


async def _hand_batch(
    consumer: str, handler: BatchHandler, envelopes: list[Envelope]
) -> dict[str, str]:
    """All of them in one call; if that fails, each again alone, to find which one failed."""
    if len(envelopes) > 1 and await _took_all(consumer, handler, envelopes):
        return {}
    return await _hand_one_by_one(consumer, handler, envelopes)


async def _took_all(consumer: str, handler: BatchHandler, envelopes: list[Envelope]) -> bool:
    try:
        with tracing.consuming_batch(envelopes, consumer):
            await handler(envelopes)
    except Exception as error:  # noqa: BLE001 - the calls one by one tell whose failure it was
        log.info(
            "bus.batch_refused",
            consumer=consumer,
            events=len(envelopes),
            error=f"{type(error).__name__}: {error}",
        )
        return False
    for envelope in envelopes:
        consumed(consumer, envelope)
    return True


async def _hand_one_by_one(
    consumer: str, handler: BatchHandler, envelopes: list[Envelope]
) -> dict[str, str]:
    refused: dict[str, str] = {}
    for envelope in envelopes:
        try:
            with tracing.consuming(envelope, consumer):
                await handler([envelope])
        except Exception as error:  # noqa: BLE001 - one event must not stop the others
            refused[envelope.event_id] = f"{consumer}: {type(error).__name__}: {error}"
            EVENTS_CONSUMED.labels(consumer, "failed").inc()
        else:
            consumed(consumer, envelope)
    return refused


def _result(refusals: dict[str, str] | None) -> DeliveryResult:
    if not refusals:
        return None
    return DeliveryFailed("; ".join(refusals.values()), list(refusals))
