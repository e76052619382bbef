"""Jobs the shop runs on itself: each on its own interval, each failure logged, none fatal.

The scheduler reports every run to metrics itself, so a new job is watched without any code
of its own: runs by outcome, items handled, duration, and when it last succeeded (an alert
on that timestamp catches a job that keeps failing or has stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from colonnade.kernel.metrics import (
    MAINTENANCE_DURATION,
    MAINTENANCE_ITEMS,
    MAINTENANCE_LAST_SUCCESS,
    MAINTENANCE_RUNS,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    # Returns how many items (rows) it handled.
    run: Callable[[], Awaitable[int]]


async def run_job(job: Job) -> int:
    """Run `job` once and report it; a failure is reported, then raised."""
    started = time.perf_counter()
    try:
        done = await job.run()
    except Exception:
        MAINTENANCE_RUNS.labels(job=job.name, outcome="failed").inc()
        raise
    finally:
        MAINTENANCE_DURATION.labels(job=job.name).observe(time.perf_counter() - started)
    MAINTENANCE_RUNS.labels(job=job.name, outcome="ok").inc()
    MAINTENANCE_ITEMS.labels(job=job.name).inc(done)
    MAINTENANCE_LAST_SUCCESS.labels(job=job.name).set(time.time())
    return done


class Maintenance:
    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._tasks: list[asyncio.Task[None]] = []

    async def run_all_once(self) -> dict[str, int]:
        """Run every job now; how much each one did."""
        return {job.name: await run_job(job) for job in self.jobs}

    async def _loop(self, job: Job) -> None:
        while True:
            try:
                done = await run_job(job)
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
