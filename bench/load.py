"""The load generator: guest shoppers buying over HTTP, run in a process of its own.

It lives in its own process so that its CPU is its own to measure (and so the orchestrator's
work never steals from it). aiohttp, not httpx: httpx's async client costs about twenty times
more CPU per request at 64 connections and would become the bottleneck it is meant to measure.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from tests.e2e.buyers import checkout_body

from bench.measure import CpuShares, CpuSnapshot, ShopCounters, batch_percentiles, percentile

Scenario = Literal["throughput", "flash_sale"]
SOLD_OUT = "409 out_of_stock"


@dataclass(frozen=True)
class LoadPlan:
    base_url: str
    # Where the shop's /metrics answers: its metrics port, not the port buyers use.
    metrics_url: str
    server_pid: int
    watch_database: bool
    skus: list[str]
    clients: int
    scenario: Scenario
    # throughput: shoppers buy through a warm-up, then `seconds` are counted. The warm-up
    # lasts until every shopper has finished a purchase (so the window sees the steady state,
    # not the first wave of cold, queued purchases), at least `warmup_seconds`, at most
    # `max_warmup_seconds`.
    warmup_seconds: float = 0.0
    max_warmup_seconds: float = 90.0
    seconds: float = 20.0
    # flash sale: a shopper stops at its first "sold out"; the deadline guards a stuck sale.
    deadline_seconds: float = 600.0
    # A discount code every shopper enters before checking out (a request more a purchase),
    # or, with code_at_checkout, gives in the checkout's body (no request more).
    promotion_code: str | None = None
    code_at_checkout: bool = False


@dataclass
class LoadReport:
    scenario: Scenario
    clients: int
    window_seconds: float
    purchases: int  # completed purchases (201) finished inside the measured window
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    errors: dict[str, int]  # non-2xx answers (and transport failures) by "status code"
    cpu: CpuShares
    attempts_total: int  # every purchase attempt, warm-up included (for per-purchase costs)
    purchases_total: int
    sold_out_answers: int = 0
    sale_seconds: float | None = None  # flash sale: from the first request to the last sale
    notes: list[str] = field(default_factory=list)
    # From the shop's /metrics over the window: statements per finished purchase attempt,
    # batch sizes per step (p50, p99) and the outbox's lag when the window closed.
    statements_per_purchase: float | None = None
    batch_sizes: dict[str, list[float]] = field(default_factory=dict)
    outbox_lag_seconds: float | None = None


@dataclass(frozen=True)
class Attempt:
    started: float
    finished: float
    outcome: str  # "ok", or "<status> <code>" of the answer that ended the purchase


async def _answer(response: aiohttp.ClientResponse) -> str | None:
    """None for a 2xx answer, else "<status> <problem code>"."""
    if response.status < 300:
        await response.read()
        return None
    try:
        code = (await response.json(content_type=None)).get("code", "?")
    except (ValueError, AttributeError, aiohttp.ClientError):
        code = "unreadable"
    return f"{response.status} {code}"


async def purchase(
    session: aiohttp.ClientSession,
    base_url: str,
    sku: str,
    promotion_code: str | None = None,
    *,
    code_at_checkout: bool = False,
) -> str:
    """One guest purchase, the three requests a storefront makes: cart, line, checkout; with
    a promotion code, a fourth enters it before checkout, unless the checkout gives it."""
    try:
        async with session.post(f"{base_url}/store/carts", json={"market": "US"}) as response:
            if (failed := await _answer(response)) is not None:
                return failed
            cart_id = (await response.json())["id"]
        async with session.post(
            f"{base_url}/store/carts/{cart_id}/lines", json={"sku": sku, "quantity": 1}
        ) as response:
            if (failed := await _answer(response)) is not None:
                return failed
        if promotion_code is not None and not code_at_checkout:
            async with session.post(
                f"{base_url}/store/carts/{cart_id}/promotions", json={"code": promotion_code}
            ) as response:
                if (failed := await _answer(response)) is not None:
                    return failed
        async with session.post(
            f"{base_url}/store/carts/{cart_id}/checkout",
            json=(
                {**checkout_body("tok_visa"), "promotion_code": promotion_code}
                if code_at_checkout
                else checkout_body("tok_visa")
            ),
            headers={"Idempotency-Key": uuid.uuid4().hex},
        ) as response:
            return await _answer(response) or "ok"
    except (aiohttp.ClientError, TimeoutError) as error:
        return f"0 {type(error).__name__}"


async def _shopper(
    session: aiohttp.ClientSession,
    plan: LoadPlan,
    closing: asyncio.Event,
    attempts: list[Attempt],
) -> None:
    loop = asyncio.get_running_loop()
    while not closing.is_set():
        # Buyers spread over the SKUs at random, so no one stock row is every buyer's row.
        sku = random.choice(plan.skus)
        started = loop.time()
        outcome = await purchase(
            session,
            plan.base_url,
            sku,
            plan.promotion_code,
            code_at_checkout=plan.code_at_checkout,
        )
        attempts.append(Attempt(started, loop.time(), outcome))
        if plan.scenario == "flash_sale" and outcome == SOLD_OUT:
            return


async def _drive(plan: LoadPlan) -> LoadReport:
    loop = asyncio.get_running_loop()
    attempts: list[Attempt] = []
    connector = aiohttp.TCPConnector(limit=plan.clients, limit_per_host=plan.clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        closing = asyncio.Event()
        began = loop.time()
        shoppers = [
            asyncio.create_task(_shopper(session, plan, closing, attempts))
            for _ in range(plan.clients)
        ]
        if plan.scenario == "throughput":
            await _warm_up(plan, attempts, began)
        first = CpuSnapshot.take(plan.server_pid, plan.watch_database)
        counted = await _counters(plan.metrics_url)
        opened = loop.time()
        if plan.scenario == "throughput":
            await asyncio.sleep(plan.seconds)
            await _until_every_shopper_bought(plan, attempts, opened)
        else:
            # Every shopper stops at its first "sold out"; the deadline guards a stuck sale.
            await asyncio.wait(shoppers, timeout=plan.deadline_seconds)
        last = CpuSnapshot.take(plan.server_pid, plan.watch_database)
        closed = loop.time()
        recounted = await _counters(plan.metrics_url)
        closing.set()
        # Purchases still under way finish outside the window and are not counted.
        await asyncio.gather(*shoppers)
    report = _report(plan, attempts, first, last, opened, closed)
    finished = sum(opened <= a.finished <= closed for a in attempts)
    report.statements_per_purchase = (recounted.statements - counted.statements) / max(finished, 1)
    report.batch_sizes = batch_percentiles(counted, recounted)
    report.outbox_lag_seconds = recounted.outbox_lag_seconds
    return report


async def _counters(metrics_url: str) -> ShopCounters:
    # A session of its own: the shoppers' connections are all busy buying.
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{metrics_url}/metrics") as response,
    ):
        return ShopCounters.parse(await response.text())


async def _warm_up(plan: LoadPlan, attempts: list[Attempt], began: float) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() - began < plan.max_warmup_seconds:
        warm = loop.time() - began >= plan.warmup_seconds
        if warm and len(attempts) >= plan.clients:
            return
        await asyncio.sleep(0.1)


async def _until_every_shopper_bought(
    plan: LoadPlan, attempts: list[Attempt], opened: float
) -> None:
    """Stretch the window until it holds as many finished purchases as there are shoppers.

    When every shopper waits behind every other (SQLite's one writer, a saturated server),
    purchases finish in waves, one per `clients / rate` seconds; a window shorter than that
    would see one wave or none and report nonsense, one spanning a wave reports the rate.
    """
    loop = asyncio.get_running_loop()
    deadline = opened + plan.seconds + plan.max_warmup_seconds
    while loop.time() < deadline:
        if sum(a.finished >= opened for a in attempts) >= plan.clients:
            return
        await asyncio.sleep(0.1)


def _report(
    plan: LoadPlan,
    attempts: list[Attempt],
    first: CpuSnapshot,
    last: CpuSnapshot,
    opened: float,
    closed: float,
) -> LoadReport:
    inside = [a for a in attempts if opened <= a.finished <= closed]
    sales = sorted(a.finished - a.started for a in inside if a.outcome == "ok")
    errors = Counter(a.outcome for a in inside if a.outcome not in ("ok", SOLD_OUT))
    cpu = CpuShares.between(first, last)
    report = LoadReport(
        scenario=plan.scenario,
        clients=plan.clients,
        window_seconds=cpu.wall_seconds,
        purchases=len(sales),
        rate=len(sales) / cpu.wall_seconds,
        p50_ms=_ms(percentile(sales, 0.50)),
        p99_ms=_ms(percentile(sales, 0.99)),
        errors=dict(errors.most_common()),
        cpu=cpu,
        attempts_total=len(attempts),
        purchases_total=sum(a.outcome == "ok" for a in attempts),
        sold_out_answers=sum(a.outcome == SOLD_OUT for a in inside),
    )
    if plan.scenario == "throughput" and cpu.wall_seconds > plan.seconds + 1:
        report.notes.append(
            f"window stretched to {cpu.wall_seconds:.0f}s so it holds a purchase per shopper"
            " (purchases finish in waves)"
        )
    if plan.scenario == "flash_sale":
        last_sale = max((a.finished for a in inside if a.outcome == "ok"), default=None)
        if last_sale is not None:
            # Sales per second while stock lasts: the tail of "sold out" answers is not sales.
            report.sale_seconds = last_sale - opened
            report.rate = len(sales) / max(report.sale_seconds, 1e-9)
        if closed - opened >= plan.deadline_seconds:
            report.notes.append("the sale hit its deadline before every shopper saw sold out")
    return report


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def run(plan: LoadPlan) -> LoadReport:
    """Entry point of the load generator's process."""
    try:
        import uvloop  # the shop's own server runs on it too (uvicorn[standard])
    except ImportError:
        return asyncio.run(_drive(plan))
    return uvloop.run(_drive(plan))
