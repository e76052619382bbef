"""Natural batching: the requests that arrive while one batch is in the database go together
in the next one ("smart batching", as in the LMAX disruptor and TigerBeetle's client).

A batch of one goes at once, so an idle shop waits for nothing; under load batches grow by
themselves, and the fixed cost of a transaction (its round trips, its commit, the statements
it builds) is paid once per batch instead of once per request.

The handler takes the whole batch and answers one result per request, in order; a result
that is an exception is raised to that request alone. A request that turns out, midway, not
to fit with the others (its effect in one module cannot stand once another module refused
it) is taken out by raising `Exclude`: the batch's transaction is abandoned and it runs
again without that request, which gets its own refusal. A handler that fails as a whole (a
database error) is run again on each half of its batch, down to single requests, so one
poison request cannot sink its neighbours.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from colonnade.kernel.metrics import BATCH_SIZE

Request = TypeVar("Request")
Result = TypeVar("Result")

# Results in the order of the requests; an exception in a place is that request's failure.
BatchHandler = Callable[[Sequence["Submitted[Request]"]], Awaitable[Sequence[Result | Exception]]]


class Exclude(Exception):
    """Raised by a handler: answer these requests (by their place in the batch) with their
    refusal, and run the batch again without them."""

    def __init__(self, refused: Mapping[int, Exception]) -> None:
        super().__init__(f"{len(refused)} requests taken out of the batch")
        self.refused = refused


@dataclass
class Submitted(Generic[Request]):
    """One request waiting in a batch, with the context (trace, request id) of its caller,
    so what the batch does for it can be told apart from what it does for its neighbours."""

    request: Request
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class Batcher(Generic[Request, Result]):
    """Runs `handler` over the requests gathered while the previous batch was running."""

    def __init__(
        self, name: str, handler: BatchHandler[Request, Result], *, max_size: int = 256
    ) -> None:
        self.name = name
        self._handler = handler
        self._max_size = max_size
        self._waiting: list[tuple[Submitted[Request], asyncio.Future[Result]]] = []
        self._runner: asyncio.Task[None] | None = None
        self._sizes = BATCH_SIZE.labels(name)

    async def submit(self, request: Request) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((Submitted(request), future))
        if self._runner is None or self._runner.done():
            # Started in the caller's context: a batch of one is traced under its request.
            self._runner = asyncio.create_task(self._run(), name=f"batch-{self.name}")
        return await future

    async def _run(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_size]
            del self._waiting[: len(batch)]
            self._sizes.observe(len(batch))
            await self._settle(batch)

    async def _settle(self, batch: list[tuple[Submitted[Request], asyncio.Future[Result]]]) -> None:
        try:
            results = await self._handler([submitted for submitted, _ in batch])
        except Exclude as exclude:
            refused = exclude.refused or dict.fromkeys(range(len(batch)), exclude)
            for i, refusal in refused.items():
                _answer(batch[i][1], refusal)
            rest = [item for i, item in enumerate(batch) if i not in refused]
            if rest:
                await self._settle(rest)
            return
        except Exception as error:  # noqa: BLE001 - narrowed down by halving the batch
            if len(batch) == 1:
                _answer(batch[0][1], error)
                return
            half = len(batch) // 2
            await self._settle(batch[:half])
            await self._settle(batch[half:])
            return
        except BaseException as error:
            for _, future in batch:
                _answer(future, error)
            raise
        if len(results) != len(batch):
            wrong = RuntimeError(f"batch {self.name} answered {len(results)} of {len(batch)}")
            results = [wrong] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            _answer(future, result)


def _answer(future: asyncio.Future[Result], result: Result | BaseException) -> None:
    if future.done():  # the caller went away (cancelled); the batch still did its work
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
