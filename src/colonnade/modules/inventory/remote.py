"""Inventory in a process of its own, as the checkout's saga asks it: the same port as
InventoryService's reservations, over NATS request-reply (kernel/remote.py). Each call is its
own transaction over there, as the saga's steps are; the batched card path, which holds stock
in the checkout's own transaction, is not offered across processes."""

from __future__ import annotations

from datetime import timedelta

from colonnade.kernel.remote import Calling
from colonnade.modules.inventory.service import InventoryService, Reservation

MODULE = "inventory"
# The module that calls it across processes.
CALLED_BY = "checkout"
# What inventory answers for other processes.
ANSWERED = ("reserve", "commit", "release", "return_stock", "release_for", "reservation")


def calling(namespace: str, seconds: float) -> Calling:
    return Calling(MODULE, InventoryService, ANSWERED, namespace=namespace, seconds=seconds)


class RemoteInventory:
    def __init__(self, calls: Calling) -> None:
        self._calls = calls

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

    async def reservation(self, reservation_id: str) -> Reservation:
        found: Reservation = await self._calls.call("reservation", reservation_id=reservation_id)
        return found
