"""A job run again and again in the background, every few seconds, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Every:
    """Runs `job` every `seconds`; a run that fails is logged as `failure` (a database
    hiccup must not end the loop) and the next one comes as usual."""

    def __init__(
        self, name: str, seconds: float, job: Callable[[], Awaitable[object]], failure: str
    ) -> None:
        self._name = name
        self._seconds = seconds
        self._job = job
        self._failure = failure
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._job()
            except Exception:
                log.exception(self._failure)
            await asyncio.sleep(self._seconds)
