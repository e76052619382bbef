"""A rehearsal from first request to report: sign in as staff, read the catalog and the
shop's mix, stock the shelves, then let the crowd in while watching the shop every second,
striking the faults and opening the flash sale on schedule; afterwards audit the orders and
the flash SKU and write the report.

Three things run side by side on one event loop: the crowd (load.py), the watch (a timeline
point per scrape of the shop's metrics, with the machine's CPU on loopback) and the schedule
(the flash sale and the struck faults). The rehearsal ends when the profile does, plus at most
`drain_seconds` for visitors still under way.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from colonnade.rehearsal import machine
from colonnade.rehearsal.faults import Database, Struck, strike, token_at
from colonnade.rehearsal.findings import Point
from colonnade.rehearsal.load import Crowd, Tally
from colonnade.rehearsal.profile import DEFAULT_MIX, FlashSale, Mix, Profile
from colonnade.rehearsal.staff import Product, Staff, StaffRefused, StockLevel, units_to_stock
from colonnade.rehearsal.target import TargetRefused, check_faults, check_target, is_loopback
from colonnade.rehearsal.watch import MetricsPort, ShopReading, checkout_p99

# No request of a visitor waits longer than this for its answer.
REQUEST_SECONDS = 15.0
# The flash SKU's stock is set this long before its buyers arrive.
FLASH_LEAD_SECONDS = 1.0
# How long a fault's effects outlast it: the payment circuit breaker's cool-down and trial
# (a failing provider), a worker's restart, pools reconnecting, the buyers queued meanwhile
# served. The timeline marks the intervals as faulted meanwhile, and capacity figures leave
# them out.
AFTERMATH_SECONDS = 30.0


@dataclass(frozen=True)
class Rehearsal:
    """What was asked for: the target, how to reach it, and the profile's knobs."""

    url: str
    metrics_url: str
    metrics_token: str | None
    staff_email: str
    staff_password: str
    profile: Profile  # its flash sale's SKU may be empty: the catalog's first is taken
    market: str = "US"
    allowed_hosts: tuple[str, ...] = ()
    server_pid: int | None = None
    database_url: str | None = None
    stock_up: bool = True
    max_visitors: int = 1000
    window: float = 10.0
    every: float = 1.0
    drain_seconds: float = 5.0


@dataclass
class Rehearsed:
    """Everything the report is written from."""

    rehearsal: Rehearsal
    profile: Profile
    started_at: datetime
    took_seconds: float
    processes: int
    server_pid: int | None
    email: str
    points: list[Point]
    tally: Tally
    struck: list[Struck]
    first: ShopReading
    last: ShopReading
    # The shop's word on each order the buyers were answered (None: it holds no such order),
    # and how many orders it holds of the rehearsal's buyers in all.
    order_statuses: dict[str, str | None]
    orders_in_shop: int
    flash_before: StockLevel | None
    flash_after: StockLevel | None
    notes: list[str] = field(default_factory=list)
    local: bool = False


class Watch:
    """One timeline point per scrape of the shop's metrics."""

    def __init__(
        self,
        metrics: MetricsPort,
        crowd: Crowd,
        profile: Profile,
        server_pid: int | None,
        database: Database | None,
        first: ShopReading,
        *,
        local: bool,
    ) -> None:
        self._metrics = metrics
        self._crowd = crowd
        self._profile = profile
        self._server_pid = server_pid
        self._database = database
        self._server = machine.Meter()
        self._backends = machine.Meter()
        self._own = machine.OwnMeter()
        self._machine = machine.MachineMeter() if local else None
        self.last = first
        self.points: list[Point] = []
        self.struck: list[Struck] = []
        self._answered = 0
        # The meters' first readings: each later one counts from the one before.
        self._server_cpu(first.at)
        self._own.read(first.at)
        self._machine_cpu()

    async def _database_cpu(self, now: float) -> float | None:
        if self._database is None:
            return None
        return self._backends.read(now, await self._database.backends())

    def _server_cpu(self, now: float) -> float | None:
        if self._server_pid is None:
            return None
        return self._server.read(now, machine.tree(self._server_pid))

    def _machine_cpu(self) -> float | None:
        return self._machine.read() if self._machine is not None else None

    async def take(self, started: float) -> Point:
        reading = await self._metrics.read(asyncio.get_running_loop().time())
        before, self.last = self.last, reading
        seconds = max(reading.at - before.at, 1e-6)
        start, end = before.at - started, reading.at - started
        server_cpu = self._server_cpu(reading.at)
        if server_cpu is None and reading.process_cpu is not None and before.process_cpu:
            server_cpu = (reading.process_cpu - before.process_cpu) / seconds
        answered = len(self._crowd.tally.orders)
        visits = self._profile.visits_between(start, end)
        flash_buyers = self._profile.flash_buyers_between(start, end)
        faults: set[str] = {
            f.kind
            for f in self._profile.faults
            if f.at < end and start < f.at + f.lasting + AFTERMATH_SECONDS
        }
        point = Point(
            at=end,
            seconds=seconds,
            offered=(visits * self._profile.mix.buy + flash_buyers) / seconds,
            arriving=(visits + flash_buyers) / seconds,
            purchases=reading.paid - before.paid,
            answered=answered - self._answered,
            requests=reading.requests - before.requests,
            server_errors=reading.server_errors - before.server_errors,
            slo_events={
                name: (good - before.slo[name][0], total - before.slo[name][1])
                for name, (good, total) in reading.slo.items()
            },
            checkout_p99=checkout_p99(reading, before),
            events_published=reading.events_published - before.events_published,
            server_cpu=server_cpu,
            database_cpu=await self._database_cpu(reading.at),
            generator_cpu=self._own.read(reading.at),
            machine_cpu=self._machine_cpu(),
            pool_in_use=reading.pool_in_use,
            pool_size=reading.pool_size,
            outbox_lag=reading.outbox_lag,
            outbox_backlog=reading.outbox_backlog,
            queue_waiting=reading.queue_waiting,
            in_flight=self._crowd.in_flight,
            turned_away=self._crowd.take_turned_away(),
            faults=tuple(sorted(faults)),
            flash_sale=flash_buyers > 0,
        )
        self._answered = answered
        self.points.append(point)
        return point


async def rehearse(asked: Rehearsal, shown: Callable[[Point, Crowd, Profile], None]) -> Rehearsed:
    """Run the rehearsal; `shown` is called with every timeline point (the dashboard)."""
    host = check_target(asked.url, asked.allowed_hosts)
    check_target(asked.metrics_url, (*asked.allowed_hosts, host))
    check_faults(asked.url, asked.profile.faults, asked.database_url)
    local = is_loopback(host)
    loop = asyncio.get_running_loop()
    notes: list[str] = []
    crowd_connections = aiohttp.TCPConnector(
        limit=asked.max_visitors, limit_per_host=asked.max_visitors
    )
    async with (
        aiohttp.ClientSession(
            connector=crowd_connections, timeout=aiohttp.ClientTimeout(total=REQUEST_SECONDS)
        ) as session,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as side,
    ):
        staff = await Staff.sign_in(side, asked.url, asked.staff_email, asked.staff_password)
        products = await staff.catalog(asked.market)
        if not products:
            raise TargetRefused(f"the {asked.market} market lists no products to buy")
        profile = await _profile_for(asked, staff, products, notes)
        server_pid = asked.server_pid
        if server_pid is None and local:
            server_pid = machine.listening_pid(urlsplit(asked.url).port or 80)
        processes = max(1, len(machine.workers(server_pid))) if server_pid else 1
        if any(f.kind == "kill-worker" for f in profile.faults) and processes < 2:
            raise TargetRefused(
                "kill-worker needs a shop of several worker processes (colonnade serve"
                " --workers 2 or more) whose server process is known (--server-pid)"
            )
        if asked.stock_up:
            units = units_to_stock(profile.expected_purchases(), len(products))
            for product in products:
                if profile.flash is None or product.sku != profile.flash.sku:
                    await staff.make_available(product.sku, units)
        database = await Database.connect(asked.database_url) if asked.database_url else None
        try:
            metrics = MetricsPort(side, asked.metrics_url, asked.metrics_token)
            first = await metrics.read(loop.time())
            email = f"rehearsal-{uuid.uuid4().hex[:12]}@example.com"
            crowd = Crowd(
                session,
                asked.url,
                asked.market,
                products,
                profile,
                email=email,
                token_at=token_at(profile),
                max_visitors=asked.max_visitors,
            )
            watch = Watch(metrics, crowd, profile, server_pid, database, first, local=local)
            started_at = datetime.now(UTC)
            started = loop.time()
            flash_before: list[StockLevel] = []
            schedule = asyncio.create_task(
                _schedule(profile, staff, started, server_pid, database, watch, flash_before)
            )
            watching = asyncio.create_task(
                _watch(watch, started, asked.every, profile, crowd, shown)
            )
            await crowd.run(started, asked.drain_seconds)
            if watching.done():
                watching.result()  # the watch stopped early: say why
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            if schedule.done():
                schedule.result()  # a fault or the flash sale failed: say why
            schedule.cancel()
            await asyncio.gather(schedule, return_exceptions=True)
            shown(await watch.take(started), crowd, profile)
            took = loop.time() - started
            order_statuses = await staff.order_statuses(crowd.tally.orders)
            orders_in_shop = await staff.orders_placed_with(email)
            flash_after = None
            if profile.flash is not None and flash_before:
                flash_after = await staff.stock(profile.flash.sku)
        finally:
            if database is not None:
                await database.close()
    return Rehearsed(
        rehearsal=asked,
        profile=profile,
        started_at=started_at,
        took_seconds=took,
        processes=processes,
        server_pid=server_pid,
        email=email,
        points=watch.points,
        tally=crowd.tally,
        struck=watch.struck,
        first=first,
        last=watch.last,
        order_statuses=order_statuses,
        orders_in_shop=orders_in_shop,
        flash_before=flash_before[0] if flash_before else None,
        flash_after=flash_after,
        notes=notes,
        local=local,
    )


async def _profile_for(
    asked: Rehearsal, staff: Staff, products: list[Product], notes: list[str]
) -> Profile:
    """The profile asked for, with the shop's own mix where its analytics have one and the
    flash sale on the catalog's first SKU when none was named."""
    mix: Mix = DEFAULT_MIX
    try:
        mix = await staff.observed_mix(asked.market) or DEFAULT_MIX
    except StaffRefused as refused:
        notes.append(f"the shop's mix could not be read ({refused}); the default mix is used")
    flash = asked.profile.flash
    if flash is not None and not flash.sku:
        flash = replace(flash, sku=products[0].sku)
    if flash is not None and flash.sku not in {p.sku for p in products}:
        raise TargetRefused(f"the flash SKU {flash.sku} is not listed in {asked.market}")
    return replace(asked.profile, mix=mix, flash=flash)


async def _watch(
    watch: Watch,
    started: float,
    every: float,
    profile: Profile,
    crowd: Crowd,
    shown: Callable[[Point, Crowd, Profile], None],
) -> None:
    loop = asyncio.get_running_loop()
    due = started
    while True:
        due += every
        await asyncio.sleep(max(0.0, due - loop.time()))
        try:
            shown(await watch.take(started), crowd, profile)
        except (aiohttp.ClientError, TimeoutError):
            continue  # a scrape missed (the shop too busy to answer it): the next one spans it


async def _schedule(
    profile: Profile,
    staff: Staff,
    started: float,
    server_pid: int | None,
    database: Database | None,
    watch: Watch,
    flash_before: list[StockLevel],
) -> None:
    """Open the flash sale and strike the faults, each at its moment."""
    loop = asyncio.get_running_loop()
    moments: list[tuple[float, Any]] = [(f.at, f) for f in profile.struck_faults()]
    if profile.flash is not None:
        moments.append((max(0.0, profile.flash.at - FLASH_LEAD_SECONDS), profile.flash))
    for at, what in sorted(moments, key=lambda m: m[0]):
        await asyncio.sleep(max(0.0, started + at - loop.time()))
        if isinstance(what, FlashSale):
            flash_before.append(await staff.open_flash_sale(what.sku, what.stock))
        else:
            watch.struck.append(await strike(what, loop.time() - started, server_pid, database))
