"""The event bus on NATS JetStream, for the distributed shape (`COLONNADE_BUS_URL=nats://…`).

Publishing: each module's events go to a stream of its own (`<NAMESPACE>_<MODULE>`, subjects
`<namespace>.<module>.<Event>`), stored on file. The event id is the `Nats-Msg-Id`, so a
relay that publishes an event again within the stream's duplicate window (it lost the answer,
or crashed before marking the row) stores it once. An event counts as delivered when the
stream has stored it; the relay marks it published then.

Consuming: each subscription is a durable pull consumer with explicit acks, fetched in
batches by a task of its own. The consumer's inbox is the exactly-once guard (a redelivery
after a crash between the handler's commit and the ack is skipped there). A batch the handler
refuses is offered again one event at a time, so only the poison event is held back: it is
negatively acknowledged with a growing delay, and once it has failed `max_deliver` times
(or come that often without an answer, its handler having died with the process) it is
parked in the dead letters under its consumer's name and terminated in the stream.
Replaying a dead letter (`colonnade dead-letters replay`) publishes it anew under a message
id of its own, since the first one may still be inside the duplicate window.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import nats
import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from colonnade.kernel.bus import (
    BatchHandler,
    BusUnavailable,
    DeliveryResult,
    Handler,
    Subscriber,
    Subscriptions,
)
from colonnade.kernel.dead_letters import REPLAY_HEADER, DeadLetters
from colonnade.kernel.events import Envelope
from colonnade.kernel.metrics import EVENTS_CONSUMED

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0
# How long one fetch waits for events before asking again: short, so a stopping consumer
# ends soon, long enough that an idle one costs the broker little.
FETCH_WAIT_SECONDS = 1.0
ACK_WAIT = timedelta(seconds=30)
MAX_REDELIVERY_DELAY_SECONDS = 60.0
# Errors that say the broker is out of reach, not that an event is bad.
_UNREACHABLE = (
    asyncio.TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.js.errors.NoStreamResponseError,
    OSError,
)


def _token(text: str) -> str:
    """`text` as one token of a NATS subject or a stream/consumer name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


async def connect(url: str, name: str) -> Client:
    """A connection to NATS that keeps reconnecting for as long as it is open: a broker
    restart pauses the shop's events and calls, it does not end them."""
    return await nats.connect(
        url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5
    )


class JetStreamBus:
    """The `EventBus` port over NATS JetStream."""

    def __init__(
        self,
        url: str,
        *,
        dead_letters: DeadLetters,
        namespace: str = "colonnade",
        max_deliver: int = 5,
        retention: timedelta = timedelta(days=7),
        fetch_batch: int = 100,
    ) -> None:
        self._url = url
        self._dead_letters = dead_letters
        self._namespace = _token(namespace)
        self._max_deliver = max_deliver
        self._retention = retention
        self._fetch_batch = fetch_batch
        self._subscriptions = Subscriptions()
        self._client: Client | None = None
        self._streams_made: set[str] = set()
        self._consuming: list[asyncio.Task[None]] = []

    # The port

    def subscribe(self, event_type: str, consumer: str, handler: Handler) -> None:
        self._subscriptions.subscribe(event_type, consumer, handler)

    def subscribe_batch(self, event_type: str, consumer: str, handler: BatchHandler) -> None:
        self._subscriptions.subscribe_batch(event_type, consumer, handler)

    async def health(self) -> str:
        if self._client is None:
            return "not connected to NATS yet"
        if not self._client.is_connected:
            return "NATS connection lost; reconnecting"
        return "ok"

    async def publish_batch(self, envelopes: Sequence[Envelope]) -> list[DeliveryResult]:
        """Publish every event at once and wait for the stream's acknowledgements. Raises
        `BusUnavailable` when the broker cannot be reached: no event is to blame."""
        js = self._jetstream()
        try:
            for module in {_module(envelope.event_type) for envelope in envelopes}:
                await self._stream_for(module)
        except _UNREACHABLE as error:
            raise BusUnavailable(f"NATS: {type(error).__name__}: {error}") from error
        acks = await asyncio.gather(
            *(
                js.publish(
                    self.subject(envelope.event_type),
                    _encode(envelope),
                    timeout=PUBLISH_TIMEOUT_SECONDS,
                    headers={"Nats-Msg-Id": _message_id(envelope)},
                )
                for envelope in envelopes
            ),
            return_exceptions=True,
        )
        unreachable = [ack for ack in acks if isinstance(ack, _UNREACHABLE)]
        if len(unreachable) == len(acks):
            raise BusUnavailable(f"NATS: {type(unreachable[0]).__name__}: {unreachable[0]}")
        return [ack if isinstance(ack, Exception) else None for ack in acks]

    # Names

    def subject(self, event_type: str) -> str:
        module, _, name = event_type.partition(".")
        return f"{self._namespace}.{_token(module)}.{_token(name)}"

    def stream(self, module: str) -> str:
        return f"{self._namespace}_{_token(module)}".upper()

    @staticmethod
    def durable(consumer: str, event_type: str) -> str:
        return _token(f"{consumer}--{event_type.rpartition('.')[2]}")

    def durable_consumers(self) -> list[tuple[str, str]]:
        """(stream, durable consumer) of every subscription: what a lag-based autoscaler
        of the workers watches."""
        return sorted(
            (self.stream(_module(event_type)), self.durable(consumer, event_type))
            for event_type, consumers in self._subscriptions.by_type.items()
            for consumer in consumers
        )

    # Life

    async def open(self, *, consumes: Callable[[str], bool]) -> None:
        """Connect (and keep reconnecting for as long as the bus is open), and start one
        fetching task per subscription whose consumer `consumes` accepts."""
        self._client = await connect(self._url, "colonnade")
        for event_type, consumers in self._subscriptions.by_type.items():
            for consumer, subscriber in consumers.items():
                if not consumes(consumer):
                    continue
                await self._stream_for(_module(event_type))
                self._consuming.append(
                    asyncio.create_task(
                        self._consume(event_type, consumer, subscriber),
                        name=f"consume {consumer} {event_type}",
                    )
                )

    async def close(self) -> None:
        for task in self._consuming:
            task.cancel()
        for task in self._consuming:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._consuming.clear()
        if self._client is not None:
            # Not drain(): it waits out the pull requests still open at the broker. Acks are
            # sent as they are made, and an unsent one only means a redelivery the inbox skips.
            with contextlib.suppress(*_UNREACHABLE):
                await self._client.flush(timeout=2)
            await self._client.close()
            self._client = None

    # Inside

    def _jetstream(self) -> JetStreamContext:
        if self._client is None:
            raise BusUnavailable("the JetStream bus is not open")
        return self._client.jetstream(timeout=PUBLISH_TIMEOUT_SECONDS)

    async def _stream_for(self, module: str) -> str:
        name = self.stream(module)
        if name in self._streams_made:
            return name
        js = self._jetstream()
        try:
            await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=name,
                    subjects=[f"{self._namespace}.{_token(module)}.>"],
                    storage=StorageType.FILE,
                    max_age=self._retention.total_seconds(),
                )
            )
        self._streams_made.add(name)
        return name

    async def _consume(self, event_type: str, consumer: str, subscriber: Subscriber) -> None:
        durable = self.durable(consumer, event_type)
        while True:
            try:
                subscription = await self._jetstream().pull_subscribe(
                    self.subject(event_type),
                    durable=durable,
                    stream=self.stream(_module(event_type)),
                    config=ConsumerConfig(
                        durable_name=durable,
                        ack_policy=AckPolicy.EXPLICIT,
                        deliver_policy=DeliverPolicy.ALL,
                        # Unbounded here: the broker would drop an event silently after its
                        # last delivery; this consumer parks it as a dead letter instead.
                        max_deliver=-1,
                        ack_wait=ACK_WAIT.total_seconds(),
                    ),
                )
                break
            except _UNREACHABLE as error:
                log.warning("bus.consumer_waits_for_nats", consumer=consumer, error=str(error))
                await asyncio.sleep(1.0)
        while True:
            try:
                messages = await subscription.fetch(self._fetch_batch, timeout=FETCH_WAIT_SECONDS)
            except TimeoutError:
                # Nothing came within the wait (the client's own timeout error is one too).
                continue
            except _UNREACHABLE as error:
                log.warning("bus.fetch_failed", consumer=consumer, error=str(error))
                await asyncio.sleep(1.0)
                continue
            try:
                await self._take(consumer, subscriber, messages)
            except Exception:  # the consumer must outlive a lost broker or database
                # What was not acknowledged comes again after ACK_WAIT, and the inbox skips
                # what the handler already took.
                log.exception("bus.consumer_failed", consumer=consumer)
                await asyncio.sleep(1.0)

    async def _take(self, consumer: str, subscriber: Subscriber, messages: list[Msg]) -> None:
        envelopes: list[tuple[Msg, Envelope]] = []
        for message in messages:
            try:
                envelope = _decode(message.data)
            except (ValueError, TypeError, KeyError) as error:
                # Not an event of ours: nothing can ever take it.
                log.error("bus.unreadable_event", consumer=consumer, error=str(error))
                EVENTS_CONSUMED.labels(consumer, "failed").inc()
                await message.term()
                continue
            delivered = message.metadata.num_delivered or 1
            if delivered > self._max_deliver:
                # Every delivery so far ended without an answer (the process died handling
                # it, or overran ACK_WAIT): park it rather than let it take the consumer down
                # again and again.
                await self._park(
                    consumer, message, envelope, delivered, "delivered without an answer"
                )
                continue
            envelopes.append((message, envelope))
        if not envelopes:
            return
        refused = await subscriber.offer(consumer, [envelope for _, envelope in envelopes])
        for message, envelope in envelopes:
            reason = refused.get(envelope.event_id)
            if reason is None:
                await message.ack()
                continue
            delivered = message.metadata.num_delivered or 1
            if delivered < self._max_deliver:
                await message.nak(delay=min(2.0**delivered, MAX_REDELIVERY_DELAY_SECONDS))
                log.warning(
                    "bus.delivery_failed", consumer=consumer, attempts=delivered, error=reason
                )
                continue
            await self._park(consumer, message, envelope, delivered, reason)

    async def _park(
        self, consumer: str, message: Msg, envelope: Envelope, delivered: int, reason: str
    ) -> None:
        await self._dead_letters.park_delivery(
            envelope, consumer=consumer, attempts=delivered, error=reason[:2000]
        )
        await message.term()
        log.error(
            "bus.parked_as_dead_letter",
            consumer=consumer,
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            attempts=delivered,
            error=reason,
        )


def _module(event_type: str) -> str:
    return event_type.partition(".")[0]


def _message_id(envelope: Envelope) -> str:
    replay = envelope.headers.get(REPLAY_HEADER)
    return envelope.event_id if replay is None else f"{envelope.event_id}.replay-{replay}"


def _encode(envelope: Envelope) -> bytes:
    return orjson.dumps(
        {
            "event_id": envelope.event_id,
            "event_type": envelope.event_type,
            "occurred_at": envelope.occurred_at.isoformat(),
            "payload": envelope.payload,
            "headers": envelope.headers,
        }
    )


def _decode(data: bytes) -> Envelope:
    fields: dict[str, Any] = orjson.loads(data)
    return Envelope(
        event_type=fields["event_type"],
        payload=fields["payload"],
        occurred_at=datetime.fromisoformat(fields["occurred_at"]),
        event_id=fields["event_id"],
        headers=fields["headers"],
    )
