"""What checkout asks of the modules it does not own, where they may be in another process
(modules/<module>/remote.py) or in this one (their services): stock, prices and titles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.kernel.errors import ColonnadeError
from colonnade.modules.inventory.service import Reservation
from colonnade.modules.pricing.service import Quote


class StockKeeper(Protocol):
    """Each call a transaction of its own over there."""

    # The card purchase's batches: a result per request, in order.
    async def hold(
        self, requests: list[tuple[str, list[tuple[str, int]]]]
    ) -> list[Reservation | ColonnadeError]: ...

    async def settle(
        self, sold: list[Reservation], released: list[Reservation]
    ) -> list[ColonnadeError | None]: ...

    # The saga's steps, one reservation at a time.
    async def reserve(
        self, reference: str, lines: list[tuple[str, int]], ttl: timedelta | None = None
    ) -> Reservation: ...

    async def commit(self, reservation_id: str) -> None: ...

    async def release(self, reservation_id: str) -> None: ...

    async def return_stock(self, reservation_id: str) -> None: ...

    async def release_for(self, reference: str) -> int: ...

    async def give_back_for(self, reference: str) -> int: ...

    async def reservation(self, reservation_id: str) -> Reservation: ...


class Prices(Protocol):
    async def quote(self, market_code: str, lines: list[tuple[str, int]]) -> Quote: ...

    # On the caller's connection when pricing's tables are in its database.
    async def quote_batch(
        self, conn: AsyncConnection, wanted: Sequence[tuple[str, list[tuple[str, int]]]]
    ) -> list[Quote | ColonnadeError]: ...

    def discounted(self, quote: Quote, discounts: Mapping[str, int]) -> Quote: ...


class Titles(Protocol):
    async def titles_for(self, skus: list[str], locale: str) -> dict[str, str]: ...
