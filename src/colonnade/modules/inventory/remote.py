"""Inventory in a process of its own, as checkout and the store's pages ask it: the same port
as InventoryService's, over NATS request-reply (kernel/remote.py). Each call is its own
transaction over there: the saga's steps one reservation at a time, the card purchase's
`hold` and `settle` a batch of purchases a call."""

from __future__ import annotations

from datetime import timedelta

from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.remote import Calling
from colonnade.modules.inventory.service import InventoryService, Reservation, StockLevel

MODULE = "inventory"
# The modules that call it across processes.
CALLED_BY = ("checkout", "catalog")
# What inventory answers for other processes.
ANSWERED = (
    "hold",
    "settle",
    "reserve",
    "commit",
    "release",
    "return_stock",
    "release_for",
    "give_back_for",
    "reservation",
    "availability",
    "set_on_hand",
)


def calling(namespace: str, seconds: float) -> Calling:
    return Calling(MODULE, InventoryService, ANSWERED, namespace=namespace, seconds=seconds)


class RemoteInventory:
    def __init__(self, calls: Calling) -> None:
        self._calls = calls

    async def hold(
        self, requests: list[tuple[str, list[tuple[str, int]]]]
    ) -> list[Reservation | ColonnadeError]:
        held: list[Reservation | ColonnadeError] = await self._calls.call("hold", requests=requests)
        return held

    async def settle(
        self, sold: list[Reservation], released: list[Reservation]
    ) -> list[ColonnadeError | None]:
        settled: list[ColonnadeError | None] = await self._calls.call(
            "settle", sold=sold, released=released
        )
        return settled

    async def reserve(
        self, reference: str, lines: list[tuple[str, int]], ttl: timedelta | None = None
    ) -> Reservation:
        held: Reservation = await self._calls.call(
            "reserve", reference=reference, lines=lines, ttl=ttl
        )
        return held

    async def commit(self, reservation_id: str) -> None:
        await self._calls.call("commit", reservation_id=reservation_id)

    async def release(self, reservation_id: str) -> None:
        await self._calls.call("release", reservation_id=reservation_id)

    async def return_stock(self, reservation_id: str) -> None:
        await self._calls.call("return_stock", reservation_id=reservation_id)

    async def release_for(self, reference: str) -> int:
        return int(await self._calls.call("release_for", reference=reference))

    async def give_back_for(self, reference: str) -> int:
        return int(await self._calls.call("give_back_for", reference=reference))

    async def reservation(self, reservation_id: str) -> Reservation:
        found: Reservation = await self._calls.call("reservation", reservation_id=reservation_id)
        return found

    async def availability(self, skus: list[str]) -> dict[str, int]:
        found: dict[str, int] = await self._calls.call("availability", skus=skus)
        return found

    async def set_on_hand(self, sku: str, on_hand: int, warehouse: str | None = None) -> StockLevel:
        level: StockLevel = await self._calls.call(
            "set_on_hand", sku=sku, on_hand=on_hand, warehouse=warehouse
        )
        return level
