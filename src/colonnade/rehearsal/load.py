"""The crowd: visitors arriving at the profile's rate, each browsing, filling a cart or buying
through the storefront's public API, as a shop's own pages would.

aiohttp, not httpx: httpx's async client costs about twenty times more CPU per request at
this concurrency and would become the limit the rehearsal is meant to find. Visitors are
tasks on one event loop; arrivals are counted out of the profile's integral every tick, so
the rate holds whatever the answers, and a visitor who finds the crowd at its limit (every
connection busy with slower answers) is turned away and counted: the shop was not keeping up.

A buyer behaves as a careful storefront does: in the waiting room it comes back with its
ticket after Retry-After; when the connection fails (a worker killed under it) it repeats the
checkout under the same Idempotency-Key, so the shop answers the first result and charges
once. Every buyer checks out with one e-mail address per rehearsal, which the audit then
looks up among the shop's orders.

Every visitor comes from the one machine the crowd runs on, so each names an address of its
own in X-Forwarded-For (from 198.18.0.0/15, the range set aside for benchmarks): a shop that
trusts the rehearsal's machine as a proxy (COLONNADE_FORWARDED_ALLOW_IPS) then limits each
visitor's rate apart, as it would real buyers'; one that does not sees a single address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from colonnade.rehearsal.profile import Profile
from colonnade.rehearsal.staff import Product

Journey = Literal["browse", "cart", "buy", "flash"]
TICK_SECONDS = 0.05
# Connection failures a checkout repeats under its key before it gives up.
CHECKOUT_REPEATS = 2
# RFC 2544's addresses for benchmarking: never a real buyer's.
VISITOR_ADDRESSES = ipaddress.ip_network("198.18.0.0/15")
ADDRESS = {
    "name": "Rehearsal Buyer",
    "line1": "1 Colonnade Row",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


@dataclass
class Tally:
    """What the crowd did and was answered."""

    visits: Counter[Journey] = field(default_factory=Counter)
    # Final answers to checkouts: "ok", or "<status> <problem code>".
    outcomes: Counter[str] = field(default_factory=Counter)
    orders: dict[str, str] = field(default_factory=dict)  # order id -> SKU, as answered
    flash_sold: int = 0
    flash_sold_out: int = 0
    flash_last_sale: float | None = None  # seconds since the start
    turned_away: int = 0  # since the timeline's last point took them
    turned_away_total: int = 0
    unfinished: int = 0  # still under way when the drain ended
    failed_steps: Counter[str] = field(default_factory=Counter)  # before checkout


class Crowd:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        market: str,
        products: list[Product],
        profile: Profile,
        *,
        email: str,
        token_at: Callable[[float], str],
        max_visitors: int,
    ) -> None:
        self._session = session
        self._base_url = base_url
        self._market = market
        self._profile = profile
        flash_sku = profile.flash.sku if profile.flash else None
        self._products = [p for p in products if p.sku != flash_sku] or products
        self._flash = next((p for p in products if p.sku == flash_sku), None)
        self._email = email
        self._token_at = token_at
        self._max_visitors = max_visitors
        self._visitors: set[asyncio.Task[None]] = set()
        self._started = 0.0
        self.tally = Tally()

    @property
    def in_flight(self) -> int:
        return len(self._visitors)

    def elapsed(self) -> float:
        return asyncio.get_running_loop().time() - self._started

    async def run(self, started: float, drain_seconds: float) -> None:
        """Let visitors in until the profile ends, then wait up to `drain_seconds` for those
        under way; the rest are stopped and counted as unfinished."""
        self._started = started
        weights = (self._profile.mix.browse, self._profile.mix.cart, self._profile.mix.buy)
        kinds: tuple[Journey, ...] = ("browse", "cart", "buy")
        owed_visits = owed_flash = 0.0
        last = 0.0
        while (now := min(self.elapsed(), self._profile.seconds)) < self._profile.seconds:
            owed_visits += self._profile.visits_between(last, now)
            owed_flash += self._profile.flash_buyers_between(last, now)
            last = now
            while owed_visits >= 1:
                owed_visits -= 1
                self._let_in(random.choices(kinds, weights)[0])
            while owed_flash >= 1:
                owed_flash -= 1
                self._let_in("flash")
            await asyncio.sleep(TICK_SECONDS)
        if self._visitors:
            await asyncio.wait(set(self._visitors), timeout=drain_seconds)
        self.tally.unfinished = len(self._visitors)
        for visitor in list(self._visitors):
            visitor.cancel()
        await asyncio.gather(*self._visitors, return_exceptions=True)

    def _let_in(self, journey: Journey) -> None:
        if len(self._visitors) >= self._max_visitors:
            self.tally.turned_away += 1
            self.tally.turned_away_total += 1
            return
        self.tally.visits[journey] += 1
        visitor = asyncio.create_task(self._visit(journey))
        self._visitors.add(visitor)
        visitor.add_done_callback(self._visitors.discard)

    def take_turned_away(self) -> int:
        """Visitors turned away since the last call."""
        turned, self.tally.turned_away = self.tally.turned_away, 0
        return turned

    async def _visit(self, journey: Journey) -> None:
        host = VISITOR_ADDRESSES[random.randrange(VISITOR_ADDRESSES.num_addresses)]
        visitor = {"X-Forwarded-For": str(host)}
        try:
            if journey == "flash" and self._flash is not None:
                product = self._flash
                await self._get(visitor, f"/store/products/{product.id}")
            else:
                product = random.choice(self._products)
                await self._get(visitor, "/store/products", offset=self._listing_offset())
                await self._get(visitor, f"/store/products/{product.id}")
            if journey == "browse":
                return
            cart = await self._post(visitor, "/store/carts", {"market": self._market})
            await self._post(
                visitor, f"/store/carts/{cart['id']}/lines", {"sku": product.sku, "quantity": 1}
            )
            if journey == "cart":
                return
            await self._check_out(visitor, cart["id"], product.sku, journey == "flash")
        except _StepFailed as failed:
            self.tally.failed_steps[str(failed)] += 1

    def _listing_offset(self) -> int:
        pages = max(1, -(-len(self._products) // 20))
        return 20 * random.randrange(pages)

    async def _get(self, visitor: dict[str, str], path: str, offset: int | None = None) -> None:
        params: dict[str, Any] = {"market": self._market}
        if offset is not None:
            params.update(limit=20, offset=offset)
        try:
            async with self._session.get(
                self._base_url + path, params=params, headers=visitor
            ) as response:
                await response.read()
                if response.status >= 400:
                    raise _StepFailed(f"{response.status} GET")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _StepFailed(f"0 {type(error).__name__}") from error

    async def _post(self, visitor: dict[str, str], path: str, body: dict[str, Any]) -> Any:
        try:
            async with self._session.post(
                self._base_url + path, json=body, headers=visitor
            ) as response:
                answer = await response.json(content_type=None)
                if response.status >= 300:
                    raise _StepFailed(f"{response.status} {_code(answer)}")
                return answer
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise _StepFailed(f"0 {type(error).__name__}") from error

    async def _check_out(
        self, visitor: dict[str, str], cart_id: str, sku: str, flash: bool
    ) -> None:
        outcome, order_id = await self._checkout_answer(visitor, cart_id)
        tally = self.tally
        tally.outcomes[outcome] += 1
        if order_id is not None:
            tally.orders[order_id] = sku
            if flash:
                tally.flash_sold += 1
                tally.flash_last_sale = self.elapsed()
        elif flash and outcome == "409 out_of_stock":
            tally.flash_sold_out += 1

    async def _checkout_answer(
        self, visitor: dict[str, str], cart_id: str
    ) -> tuple[str, str | None]:
        url = f"{self._base_url}/store/carts/{cart_id}/checkout"
        body = {
            "email": self._email,
            "shipping_address": ADDRESS,
            "payment": {"method": "card", "token": self._token_at(self.elapsed())},
        }
        headers = {**visitor, "Idempotency-Key": uuid.uuid4().hex}
        repeats = 0
        while True:
            try:
                async with self._session.post(url, json=body, headers=headers) as response:
                    answer = await response.json(content_type=None)
                    if response.status == 201:
                        return "ok", answer["id"]
                    if response.status == 503 and _code(answer) == "checkout_queued":
                        headers["Queue-Ticket"] = answer["ticket"]
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    return f"{response.status} {_code(answer)}", None
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                if repeats >= CHECKOUT_REPEATS:
                    return f"0 {type(error).__name__}", None
                repeats += 1
                await asyncio.sleep(0.5)


class _StepFailed(Exception):
    """A step before checkout was refused or failed; the visitor leaves."""


def _code(answer: Any) -> str:
    return str(answer.get("code", "?")) if isinstance(answer, dict) else "?"
