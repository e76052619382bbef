"""The event bus port and its in-process adapter.

Delivery is at least once: the relay retries an event whose delivery failed, so handlers
must be idempotent. `Inbox.guard` makes a handler so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol

from colonnade.kernel.events import Envelope

Handler = Callable[[Envelope], Awaitable[None]]


class DeliveryFailed(Exception):
    """One or more subscribers failed to take an event; the relay will offer it again."""


class EventBus(Protocol):
    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None: ...

    async def publish(self, envelope: Envelope) -> None: ...


class InProcessBus:
    """Hands each event to every subscriber of its type, in this process."""

    def __init__(self) -> None:
        self._subscribers: dict[str, dict[str, Handler]] = defaultdict(dict)

    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None:
        if consumer in self._subscribers[event_type]:
            raise ValueError(f"{consumer} already subscribes to {event_type}")
        self._subscribers[event_type][consumer] = handler

    async def publish(self, envelope: Envelope) -> None:
        failures: list[str] = []
        for consumer, handler in self._subscribers.get(envelope.event_type, {}).items():
            try:
                await handler(envelope)
            except Exception as error:  # noqa: BLE001 - one consumer must not stop the others
                failures.append(f"{consumer}: {type(error).__name__}: {error}")
        if failures:
            raise DeliveryFailed("; ".join(failures))
