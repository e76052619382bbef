"""Pricing in a process of its own, as the cart and checkout ask it: the same port as
PricingService, over NATS request-reply (kernel/remote.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.remote import Calling
from colonnade.modules.pricing.service import Market, PricingService, Quote

MODULE = "pricing"
# The modules that call it across processes.
CALLED_BY = ("cart", "checkout")
# What pricing answers for other processes.
ANSWERED = ("market", "quote", "quote_batch")


def calling(namespace: str, seconds: float) -> Calling:
    return Calling(MODULE, PricingService, ANSWERED, namespace=namespace, seconds=seconds)


class RemotePricing:
    def __init__(self, calls: Calling) -> None:
        self._calls = calls

    async def market(self, code: str) -> Market:
        found: Market = await self._calls.call("market", code=code)
        return found

    async def quote(self, market_code: str, lines: list[tuple[str, int]]) -> Quote:
        found: Quote = await self._calls.call("quote", market_code=market_code, lines=lines)
        return found

    async def quote_batch(
        self, conn: AsyncConnection, wanted: Sequence[tuple[str, list[tuple[str, int]]]]
    ) -> list[Quote | ColonnadeError]:
        """As PricingService's, read on pricing's own connection (`conn` is the caller's)."""
        found: list[Quote | ColonnadeError] = await self._calls.call(
            "quote_batch", wanted=list(wanted)
        )
        return found

    @staticmethod
    def discounted(quote: Quote, discounts: Mapping[str, int]) -> Quote:
        """Worked out here: the discount's arithmetic needs nothing of pricing's data."""
        return PricingService.discounted(quote, discounts)
