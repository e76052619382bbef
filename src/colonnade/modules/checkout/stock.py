"""The stock checkout holds, sells and gives back: InventoryService in this process, or the
same port in inventory's own process (modules/inventory/remote.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from colonnade.kernel.errors import ColonnadeError
from colonnade.modules.inventory.service import Reservation


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
