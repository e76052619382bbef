"""Jobs the shop runs on itself: each on its own interval, each failure logged, none fatal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[], Awaitable[int]]


class Maintenance:
    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []

    async def run_all_once(self) -> dict[str, int]:
        """Run every job now; how much each one did."""
        return {job.name: await job.run() for job in self.jobs}

    async def _loop(self, job: Job) -> None:
        while True:
            try:
                done = await job.run()
                if done:
                    log.info("maintenance.ran", job=job.name, done=done)
            except Exception:  # a failing job must not stop the others
                log.exception("maintenance.failed", job=job.name)
            await asyncio.sleep(job.every_seconds)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(job), name=job.name) for job in self.jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
