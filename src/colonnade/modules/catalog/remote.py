"""The catalog in a process of its own, as the cart asks it: the same port as CatalogService,
over NATS request-reply (kernel/remote.py)."""

from __future__ import annotations

from colonnade.kernel.remote import Calling
from colonnade.modules.catalog.service import CatalogService

MODULE = "catalog"
# The module that calls it across processes.
CALLED_BY = "cart"
# What the catalog answers for other processes.
ANSWERED = ("sku_exists",)


def calling(namespace: str, seconds: float) -> Calling:
    return Calling(MODULE, CatalogService, ANSWERED, namespace=namespace, seconds=seconds)


class RemoteCatalog:
    def __init__(self, calls: Calling) -> None:
        self._calls = calls

    async def sku_exists(self, sku: str) -> bool:
        return bool(await self._calls.call("sku_exists", sku=sku))
