"""Natural batching: what arrives while a batch runs goes together in the next one, and each
request keeps its own answer."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence

import pytest

from colonnade.kernel.batching import Batcher, Exclude, Submitted


class Poison(Exception):
    pass


class Recorder:
    """A handler that notes each batch it was given, and waits while `hold` is clear."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, batch: Sequence[Submitted[int]]) -> list[int | Exception]:
        numbers = [s.request for s in batch]
        self.batches.append(numbers)
        await self.hold.wait()
        if any(n < 0 for n in numbers) and len(numbers) > 1:
            raise RuntimeError("the database refused the whole batch")
        return [Poison(n) if n < 0 else n * 10 for n in numbers]


async def test_a_request_alone_goes_at_once() -> None:
    handler = Recorder()
    batcher = Batcher("test", handler)

    assert await asyncio.wait_for(batcher.submit(1), timeout=1) == 10
    assert handler.batches == [[1]]


async def test_requests_arriving_while_a_batch_runs_go_together_in_the_next() -> None:
    handler = Recorder()
    batcher = Batcher("test", handler)
    handler.hold.clear()
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)  # the first batch is in the handler now
    later = [asyncio.create_task(batcher.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    handler.hold.set()

    assert await first == 10
    assert [await t for t in later] == [20, 30, 40]
    assert handler.batches == [[1], [2, 3, 4]]


async def test_one_failed_request_fails_alone() -> None:
    handler = Recorder()
    batcher = Batcher("test", handler)
    handler.hold.clear()
    tasks = [asyncio.create_task(batcher.submit(n)) for n in (1, 2, -3, 4)]
    await asyncio.sleep(0)
    handler.hold.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert results[:2] == [10, 20]
    assert isinstance(results[2], Poison)
    assert results[3] == 40


async def test_a_batch_the_database_refuses_is_halved_until_the_poison_is_alone() -> None:
    handler = Recorder()
    batcher = Batcher("test", handler, max_size=8)
    handler.hold.clear()
    tasks = [asyncio.create_task(batcher.submit(n)) for n in (1, 2, 3, 4, 5, -6, 7, 8)]
    await asyncio.sleep(0)
    handler.hold.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert [r for r in results if not isinstance(r, Exception)] == [10, 20, 30, 40, 50, 70, 80]
    assert isinstance(results[5], Poison)
    # The whole batch, then halves, then quarters, until the poison went alone.
    assert handler.batches == [
        [1, 2, 3, 4, 5, -6, 7, 8],
        [1, 2, 3, 4],
        [5, -6, 7, 8],
        [5, -6],
        [5],
        [-6],
        [7, 8],
    ]


async def test_no_batch_is_larger_than_its_limit() -> None:
    handler = Recorder()
    batcher = Batcher("test", handler, max_size=3)
    handler.hold.clear()
    tasks = [asyncio.create_task(batcher.submit(n)) for n in range(1, 9)]
    await asyncio.sleep(0)
    handler.hold.set()
    await asyncio.gather(*tasks)

    assert all(len(b) <= 3 for b in handler.batches)
    assert sorted(n for b in handler.batches for n in b) == list(range(1, 9))


async def test_each_request_keeps_its_callers_context() -> None:
    who: contextvars.ContextVar[str] = contextvars.ContextVar("who")
    seen: list[str] = []

    async def handler(batch: Sequence[Submitted[int]]) -> list[int]:
        seen.extend(s.context.run(who.get) for s in batch)
        return [s.request for s in batch]

    batcher = Batcher("test", handler)

    async def as_buyer(name: str, n: int) -> int:
        who.set(name)
        return await batcher.submit(n)

    await asyncio.gather(as_buyer("ada", 1), as_buyer("bob", 2))
    assert sorted(seen) == ["ada", "bob"]


@pytest.mark.parametrize("size", [1, 5])
async def test_a_cancelled_caller_does_not_stop_the_batch(size: int) -> None:
    handler = Recorder()
    batcher = Batcher("test", handler)
    handler.hold.clear()
    tasks = [asyncio.create_task(batcher.submit(n)) for n in range(1, size + 1)]
    await asyncio.sleep(0)
    tasks[0].cancel()
    handler.hold.set()
    await asyncio.gather(*tasks, return_exceptions=True)

    assert handler.batches == [list(range(1, size + 1))]
    assert all(t.result() == (i + 1) * 10 for i, t in enumerate(tasks[1:], start=1))


async def test_a_request_taken_out_midway_is_refused_and_the_rest_run_again_without_it() -> None:
    runs: list[list[int]] = []

    async def handler(batch: Sequence[Submitted[int]]) -> list[int]:
        numbers = [s.request for s in batch]
        runs.append(numbers)
        odd = {i: Poison(n) for i, n in enumerate(numbers) if n % 2}
        if odd:
            raise Exclude(odd)
        return [n * 10 for n in numbers]

    batcher = Batcher("test", handler)
    results = await asyncio.gather(
        *(batcher.submit(n) for n in (1, 2, 3, 4)), return_exceptions=True
    )

    assert isinstance(results[0], Poison)
    assert isinstance(results[2], Poison)
    assert (results[1], results[3]) == (20, 40)
    assert runs == [[1, 2, 3, 4], [2, 4]]
