"""A module's service called from another process's side over the real NATS server, on both
databases: the same answers as a call in the same process, refusals raised again as the same
typed errors (inside a batch's results too), the caller's idempotency key and deadline carried
along, replicas sharing the calls, and a module that does not answer failing the call in
time with a 503 problem."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import nats
import pytest
from nats.aio.client import Client

from colonnade.kernel.clock import SettableClock
from colonnade.kernel.db import Database
from colonnade.kernel.errors import ColonnadeError
from colonnade.kernel.money import Money
from colonnade.kernel.remote import (
    Answering,
    Calling,
    ModuleUnavailable,
    idempotency_key,
    on_behalf_of,
    restored,
    within,
)
from colonnade.modules.cart.domain import UnknownSku as CartUnknownSku
from colonnade.modules.inventory.domain import UnknownSku as InventoryUnknownSku
from colonnade.modules.pricing.service import PriceMissing, PricingService, UnknownMarket

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PRICING = ("market", "quote", "quote_batch")


class Desk:
    """A service of this test's own: who answered, with which key, and one that takes long."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def who(self, asked: int) -> tuple[str, int, str | None]:
        return self.name, asked, idempotency_key()

    async def slow(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "late"

    async def broken(self) -> str:
        raise RuntimeError("a bug")


@pytest.fixture
async def clients(nats_url: str) -> AsyncIterator[tuple[Client, Client]]:
    """One connection for the answering process's side, one for the caller's."""
    answering, calling = await nats.connect(nats_url), await nats.connect(nats_url)
    yield answering, calling
    await answering.close()
    await calling.close()


@pytest.fixture
async def pricing(db: Database) -> PricingService:
    shop = PricingService(db, base_currency="USD", clock=SettableClock(NOW))
    await shop.set_market("US", "United States", "USD", "en-US", False, Decimal("0.0725"))
    await shop.set_market("DE", "Deutschland", "EUR", "de-DE", True, Decimal("0.19"))
    await shop.set_prices("MUG", [Money(1250, "USD"), Money(1100, "EUR")])
    return shop


def module(name: str) -> str:
    """A module name of this test alone: tests running at once share the NATS server."""
    return f"{name}{time.monotonic_ns()}"


async def test_a_remote_call_answers_as_the_call_in_process_and_refuses_alike(
    db: Database, pricing: PricingService, clients: tuple[Client, Client]
) -> None:
    name = module("pricing")
    answering = Answering(name, pricing, PRICING, db)
    await answering.start(clients[0])
    remote = Calling(name, PricingService, PRICING)
    remote.connect(clients[1])
    try:
        market = await remote.call("market", code="DE")
        quote = await remote.call("quote", market_code="US", lines=[("MUG", 2)])
        batch = await remote.call(
            "quote_batch", wanted=[("DE", [("MUG", 1)]), ("FR", [("MUG", 1)]), ("US", [("TEA", 1)])]
        )
        with pytest.raises(UnknownMarket) as unknown:
            await remote.call("market", code="FR")
    finally:
        await answering.stop()

    assert market == await pricing.market("DE")
    assert quote == await pricing.quote("US", [("MUG", 2)])
    here = await pricing.market("DE")
    assert (here.tax_rate, here.currency) == (Decimal("0.19"), "EUR")
    de, fr, tea = batch
    assert de == await pricing.quote("DE", [("MUG", 1)])
    # A refusal inside the batch's results is in its place, as the same type.
    assert isinstance(fr, UnknownMarket)
    assert isinstance(tea, PriceMissing)
    with pytest.raises(UnknownMarket) as here_unknown:
        await pricing.market("FR")
    assert unknown.value.problem() == here_unknown.value.problem()
    assert fr.problem() == here_unknown.value.problem()


async def test_the_callers_idempotency_key_reaches_the_module_and_replicas_share_the_calls(
    clients: tuple[Client, Client],
) -> None:
    name = module("desk")
    replicas = [Answering(name, Desk(f"desk-{n}"), ["who"]) for n in (1, 2)]
    for replica in replicas:
        await replica.start(clients[0])
    remote = Calling(name, Desk, ["who"])
    remote.connect(clients[1])
    try:
        with on_behalf_of("checkout-key-7"):
            answers = await asyncio.gather(*(remote.call("who", asked=n) for n in range(40)))
        anonymous = await remote.call("who", asked=-1)
    finally:
        for replica in replicas:
            await replica.stop()

    assert sorted(asked for _, asked, _ in answers) == list(range(40))
    assert {key for _, _, key in answers} == {"checkout-key-7"}
    assert anonymous[2] is None
    # A queue group: each call answered once, by one replica or the other, both used.
    served = Counter(name for name, _, _ in answers)
    assert set(served) == {"desk-1", "desk-2"}
    assert sum(served.values()) == 40


async def test_a_module_that_does_not_answer_fails_the_call_by_its_deadline_and_a_bug_at_once(
    clients: tuple[Client, Client],
) -> None:
    name = module("desk")
    answering = Answering(name, Desk("desk-1"), ["slow", "broken"])
    await answering.start(clients[0])
    remote = Calling(name, Desk, ["slow", "broken"])
    remote.connect(clients[1])
    try:
        began = time.monotonic()
        with within(0.3), pytest.raises(ModuleUnavailable) as late:
            await remote.call("slow", seconds=5.0)
        waited = time.monotonic() - began
        fast = await remote.call("slow", seconds=0.0)
        began = time.monotonic()
        with pytest.raises(ColonnadeError) as failed:
            await remote.call("broken")
        failed_in = time.monotonic() - began
    finally:
        await answering.stop()
    # With no replica at all, the call fails at once.
    began = time.monotonic()
    with pytest.raises(ModuleUnavailable) as gone:
        await remote.call("slow", seconds=0.0)
    refused_in = time.monotonic() - began

    assert 0.25 <= waited < 2.0
    assert fast == "late"
    problem = late.value.problem()
    assert (problem["status"], problem["code"], problem["module"]) == (
        503,
        "module_unavailable",
        name,
    )
    assert gone.value.problem()["method"] == "slow"
    # A bug over there is answered at once as a 500, not left to run out the deadline.
    assert (failed.value.status, failed.value.code) == (500, "internal_error")
    assert failed_in < 1.0
    assert refused_in < 2.0


def test_a_refusal_is_raised_again_as_the_answering_modules_own_type() -> None:
    """Codes repeat across modules (`unknown_sku` is the cart's 422 and inventory's 404):
    the module that answered decides which; an unknown code keeps its status and detail."""
    problem = {"code": "unknown_sku", "detail": "no SKU 'X'", "status": 404, "sku": "X"}

    from_inventory = restored(problem, "inventory")
    from_cart = restored({**problem, "status": 422}, "cart")
    unknown = restored({"code": "brand_new", "detail": "new", "status": 418, "title": "Teapot"})

    assert isinstance(from_inventory, InventoryUnknownSku)
    assert isinstance(from_cart, CartUnknownSku)
    assert from_inventory.problem()["sku"] == "X"
    assert (unknown.status, unknown.code, unknown.detail) == (418, "brand_new", "new")
