"""The catalog in a process of its own, as the modules that name or place SKUs ask it: the same
port as CatalogService, over NATS request-reply (kernel/remote.py)."""

from __future__ import annotations

from collections.abc import Sequence

from colonnade.kernel.placements import Placement
from colonnade.kernel.remote import Calling
from colonnade.modules.catalog.service import CatalogService

MODULE = "catalog"
# The modules that call it across processes.
CALLED_BY = ("cart", "checkout", "pricing", "promotions", "inventory")
# What the catalog answers for other processes.
ANSWERED = ("sku_exists", "titles_for", "placements")


def calling(namespace: str, seconds: float) -> Calling:
    return Calling(MODULE, CatalogService, ANSWERED, namespace=namespace, seconds=seconds)


class RemoteCatalog:
    def __init__(self, calls: Calling) -> None:
        self._calls = calls

    async def sku_exists(self, sku: str) -> bool:
        return bool(await self._calls.call("sku_exists", sku=sku))

    async def titles_for(self, skus: list[str], locale: str) -> dict[str, str]:
        found: dict[str, str] = await self._calls.call("titles_for", skus=skus, locale=locale)
        return found

    async def placements(self, skus: Sequence[str]) -> dict[str, Placement]:
        found: dict[str, Placement] = await self._calls.call("placements", skus=list(skus))
        return found
