"""The cost of one remote hop: a module's port called in this process, against the same call
made to the module in another process over NATS request-reply (kernel/remote.py), same run.

    python -m bench.remote_hop            # 3,000 calls one at a time, 20,000 by 64 callers
    python -m bench.remote_hop --quick

The call is the cart's: pricing's quote of two lines in the US (from pricing's caches after the
first call, as a busy shop's are), so what is measured is the hop itself. Pricing answers in a
child process of its own on the same SQLite database; the NATS server is COLONNADE_BUS_URL's
(nats://127.0.0.1:4222 by default). Reported per call: the wall time one at a time, the calls
per second with 64 callers at once, and the CPU the caller and the answering process spent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
from rich.table import Table

from bench.report import RESULTS, console
from colonnade import migrations
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.kernel.remote import Answering
from colonnade.modules.pricing import remote as pricing_remote
from colonnade.modules.pricing.service import PricingService

LINES = [("MUG", 2), ("TEE", 1)]
CALLERS = 64
NAMESPACE = "colonnade-bench"


@dataclass(frozen=True)
class Hop:
    way: str
    one_at_a_time_us: float
    calls_per_second: float
    caller_cpu_us: float
    answering_cpu_us: float | None


async def _pricing(url: str) -> tuple[Database, PricingService]:
    db = Database(url)
    pricing = PricingService(db, base_currency="USD")
    return db, pricing


def _answer(url: str, nats_url: str, ready: Any, stop: Any) -> None:
    async def run() -> None:
        db, pricing = await _pricing(url)
        client = await nats.connect(nats_url)
        answering = Answering(
            pricing_remote.MODULE, pricing, pricing_remote.ANSWERED, db, namespace=NAMESPACE
        )
        await answering.start(client)
        ready.set()
        await asyncio.to_thread(stop.wait)
        await answering.stop()
        await client.close()
        await db.dispose()

    asyncio.run(run())


def _cpu_seconds(pid: int) -> float:
    """A process's user and system CPU so far (Linux: from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(
    way: str, call: Callable[[], Awaitable[Any]], calls: int, at_once: int, answering: int | None
) -> Hop:
    for _ in range(50):  # warm the caches and the connection
        await call()
    began = time.perf_counter()
    for _ in range(calls):
        await call()
    one = (time.perf_counter() - began) / calls

    async def caller(count: int) -> None:
        for _ in range(count):
            await call()

    cpu, theirs = time.process_time(), _cpu_seconds(answering) if answering else 0.0
    began = time.perf_counter()
    await asyncio.gather(*(caller(at_once // CALLERS) for _ in range(CALLERS)))
    took = time.perf_counter() - began
    done = at_once // CALLERS * CALLERS
    return Hop(
        way=way,
        one_at_a_time_us=one * 1e6,
        calls_per_second=done / took,
        caller_cpu_us=(time.process_time() - cpu) / done * 1e6,
        answering_cpu_us=None
        if answering is None
        else (_cpu_seconds(answering) - theirs) / done * 1e6,
    )


async def main(options: argparse.Namespace) -> list[Hop]:
    workdir = Path(tempfile.mkdtemp(prefix="colonnade-hop-"))
    url = f"sqlite+aiosqlite:///{workdir / 'shop.db'}"
    db, pricing = await _pricing(url)
    await migrations.upgrade(db, ["pricing"])
    await pricing.set_market("US", "United States", "USD", "en-US", False, Decimal("0.0725"))
    await pricing.set_prices("MUG", [Money(1250, "USD")])
    await pricing.set_prices("TEE", [Money(2000, "USD")])
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    child = context.Process(target=_answer, args=(url, options.nats, ready, stop))
    child.start()
    client = await nats.connect(options.nats)
    try:
        if not ready.wait(timeout=30):
            raise RuntimeError("the answering process did not start")
        calls = pricing_remote.calling(NAMESPACE, 5.0)
        calls.connect(client)
        remote = pricing_remote.RemotePricing(calls)
        hops = [
            await _measure(
                "in this process",
                lambda: pricing.quote("US", LINES),
                options.calls,
                options.at_once,
                None,
            ),
            await _measure(
                "another process, over NATS",
                lambda: remote.quote("US", LINES),
                options.calls,
                options.at_once,
                child.pid,
            ),
        ]
    finally:
        stop.set()
        child.join(timeout=10)
        await client.close()
        await db.dispose()
    return hops


def table(hops: list[Hop]) -> Table:
    shown = Table(title="One call of the cart to pricing: a quote of two lines")
    for column in ("way", "one at a time", f"{CALLERS} callers", "caller CPU", "pricing CPU"):
        shown.add_column(column, justify="left" if column == "way" else "right")
    for hop in hops:
        shown.add_row(
            hop.way,
            f"{hop.one_at_a_time_us:,.0f} µs",
            f"{hop.calls_per_second:,.0f}/s",
            f"{hop.caller_cpu_us:,.0f} µs",
            "—" if hop.answering_cpu_us is None else f"{hop.answering_cpu_us:,.0f} µs",
        )
    return shown


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3_000, help="calls one at a time")
    parser.add_argument("--at-once", type=int, default=20_000, help="calls by 64 callers")
    parser.add_argument(
        "--nats", default=os.environ.get("COLONNADE_BUS_URL", "nats://127.0.0.1:4222")
    )
    parser.add_argument("--quick", action="store_true", help="300 and 2,000 calls")
    options = parser.parse_args()
    if options.quick:
        options.calls, options.at_once = 300, 2_000
    return options


if __name__ == "__main__":
    options = parse_options()
    hops = asyncio.run(main(options))
    console.print(table(hops))
    if hops[0].one_at_a_time_us:
        console.print(
            f"a remote hop adds {hops[1].one_at_a_time_us - hops[0].one_at_a_time_us:,.0f} µs"
            " to a call made one at a time"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"remote-hop-{stamp}.json"
    path.write_text(json.dumps({"arguments": vars(options), "hops": [asdict(h) for h in hops]}))
    console.print(f"written to {path}")
