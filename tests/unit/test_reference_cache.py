"""The short-lived map behind markets and titles: it forgets by age, by size and on demand,
and callers who miss the same entry at once share one read."""

from __future__ import annotations

import asyncio

from colonnade.kernel.cache import Recent


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_served_until_it_is_too_old() -> None:
    ticks = Ticks()
    kept: Recent[str, int] = Recent(5.0, now=ticks)
    kept.put("US", 1)
    ticks.now += 4.9
    assert kept.get("US") == 1
    ticks.now += 0.1
    assert kept.get("US") is None


def test_the_oldest_entries_go_first_when_it_is_full() -> None:
    kept: Recent[str, int] = Recent(60.0, size=2, now=Ticks())
    kept.put("a", 1)
    kept.put("b", 2)
    kept.put("a", 3)  # written again: now the newest
    kept.put("c", 4)
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == (3, None, 4)


def test_forgetting_drops_everything_and_zero_seconds_keeps_nothing() -> None:
    kept: Recent[str, int] = Recent(60.0, now=Ticks())
    kept.put("a", 1)
    kept.forget()
    assert kept.get("a") is None
    off: Recent[str, int] = Recent(0.0, now=Ticks())
    off.put("a", 1)
    assert off.get("a") is None


async def test_callers_missing_the_same_entry_at_once_share_one_read() -> None:
    kept: Recent[str, int] = Recent(60.0, now=Ticks())
    reads = 0
    release = asyncio.Event()

    async def read() -> int:
        nonlocal reads
        reads += 1
        await release.wait()
        kept.put("US", 7)
        return 7

    callers = [asyncio.create_task(kept.load_once("US", read)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*callers) == [7] * 50
    assert reads == 1
    assert await kept.load_once("US", read) == 7  # kept: no further read
    assert reads == 1


async def test_a_failed_read_fails_its_sharers_and_the_next_caller_reads_again() -> None:
    kept: Recent[str, int] = Recent(60.0, now=Ticks())
    attempts = 0

    async def read() -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise LookupError("no such market")
        return 3

    first = await asyncio.gather(
        *(kept.load_once("XX", read) for _ in range(3)), return_exceptions=True
    )
    assert [type(outcome) for outcome in first] == [LookupError] * 3
    assert await kept.load_once("XX", read) == 3
    assert attempts == 2


async def test_a_caller_that_gives_up_does_not_cancel_the_read_others_wait_for() -> None:
    kept: Recent[str, int] = Recent(60.0, now=Ticks())
    release = asyncio.Event()

    async def read() -> int:
        await release.wait()
        return 5

    impatient = asyncio.create_task(kept.load_once("US", read))
    patient = asyncio.create_task(kept.load_once("US", read))
    await asyncio.sleep(0)
    impatient.cancel()
    release.set()
    assert await patient == 5
    assert impatient.cancelled()


async def test_after_forgetting_a_caller_does_not_join_a_read_begun_before() -> None:
    kept: Recent[str, int] = Recent(60.0, now=Ticks())
    release = asyncio.Event()
    values = iter([1, 2])

    async def read() -> int:
        value = next(values)
        if value == 1:
            await release.wait()
        return value

    before = asyncio.create_task(kept.load_once("US", read))
    await asyncio.sleep(0)
    kept.forget()  # a write in this process: what was being read may be stale
    assert await kept.load_once("US", read) == 2
    release.set()
    assert await before == 1
