"""The event bus port and its in-process adapter.

Delivery is at least once: the relay retries an event whose delivery failed, so handlers
must be idempotent. `Inbox.guard` makes a handler so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol

from colonnade.kernel import tracing
from colonnade.kernel.events import Envelope
from colonnade.kernel.metrics import EVENTS_CONSUMED, consumed

Handler = Callable[[Envelope], Awaitable[None]]


class DeliveryFailed(Exception):
    """One or more subscribers failed to take an event; the relay will offer it again."""

    def __init__(self, message: str, consumers: list[str]) -> None:
        super().__init__(message)
        self.consumers = consumers


class EventBus(Protocol):
    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None: ...

    async def publish(self, envelope: Envelope) -> None: ...

    async def health(self) -> str:
        """Whether the bus takes events now: "ok", or why not (readiness shows it)."""
        ...


class InProcessBus:
    """Hands each event to every subscriber of its type, in this process."""

    def __init__(self) -> None:
        self._subscribers: dict[str, dict[str, Handler]] = defaultdict(dict)

    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None:
        if consumer in self._subscribers[event_type]:
            raise ValueError(f"{consumer} already subscribes to {event_type}")
        self._subscribers[event_type][consumer] = handler

    async def health(self) -> str:
        return "ok"  # in this process: it works whenever the process does

    async def publish(self, envelope: Envelope) -> None:
        failures: dict[str, str] = {}
        for consumer, handler in self._subscribers.get(envelope.event_type, {}).items():
            try:
                with tracing.consuming(envelope, consumer):
                    await handler(envelope)
            except Exception as error:  # noqa: BLE001 - one consumer must not stop the others
                failures[consumer] = f"{consumer}: {type(error).__name__}: {error}"
                EVENTS_CONSUMED.labels(consumer, "failed").inc()
            else:
                consumed(consumer, envelope)
        if failures:
            raise DeliveryFailed("; ".join(failures.values()), list(failures))
