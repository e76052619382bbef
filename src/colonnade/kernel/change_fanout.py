"""Word of committed changes between processes through a Redis channel, at once.

`Changes` polls the outbox so every process learns of a change within its poll; with Redis
the writer also publishes each change on `<prefix>:changes` and every subscribed process
forgets what it makes stale as soon as the message arrives. Pub/sub keeps nothing: a process
not listening at that moment (starting, reconnecting, Redis down) misses the message, and
the poll, which goes on regardless, delivers it within today's bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import orjson
import structlog
from redis.asyncio import Redis

from colonnade.kernel.changes import Heard
from colonnade.kernel.events import Envelope
from colonnade.kernel.shared_state import UNREACHABLE, Outage

log = structlog.get_logger(__name__)


class RedisFanout:
    def __init__(self, redis: Redis, *, prefix: str, retry_seconds: float = 1.0) -> None:
        self._redis = redis
        self._channel = f"{prefix}:changes"
        self._retry_seconds = retry_seconds
        self._outage = Outage("changes", retry_seconds=retry_seconds)
        self._telling: set[asyncio.Task[None]] = set()
        self._hearing: asyncio.Task[None] | None = None

    def tell(self, envelopes: Sequence[Envelope]) -> None:
        # Published in the background: the staff write that committed them need not wait.
        message = orjson.dumps(
            [{"id": e.event_id, "type": e.event_type, "payload": e.payload} for e in envelopes],
            option=orjson.OPT_NON_STR_KEYS,
        )
        task = asyncio.get_running_loop().create_task(self._publish(message))
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    async def _publish(self, message: bytes) -> None:
        if self._outage.skipping():
            return
        try:
            await self._redis.publish(self._channel, message)
        except UNREACHABLE as error:
            self._outage.failed(error)
            return
        self._outage.answered()

    def start(self, heard: Heard) -> None:
        if self._hearing is None:
            self._hearing = asyncio.create_task(self._hear(heard), name="colonnade-change-fanout")

    async def _hear(self, heard: Heard) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._outage.answered()
                    async for message in pubsub.listen():
                        _tell(heard, message["data"])
            except UNREACHABLE as error:
                self._outage.failed(error)
            await asyncio.sleep(self._retry_seconds)

    async def stop(self) -> None:
        if self._hearing is not None:
            self._hearing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hearing
            self._hearing = None
        # What was committed just before the end is still told; Redis answers or times out.
        await asyncio.gather(*self._telling, return_exceptions=True)


def _tell(heard: Heard, data: bytes) -> None:
    try:
        told = [(t["id"], t["type"], t["payload"]) for t in orjson.loads(data)]
    except (ValueError, TypeError, KeyError):  # not one of ours; the poll is still there
        log.warning("changes.fanout_message_unreadable", size=len(data))
        return
    for event_id, event_type, payload in told:
        heard(event_id, event_type, payload)
