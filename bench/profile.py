"""Where a purchase's server time goes: `python -m bench.profile [--promotion checkout]`.

Starts `colonnade serve` on a fresh PostgreSQL database (two workers, as the purchase bench
does), puts 64 buyers on it, and samples the workers with py-spy (`pip install
'colonnade[profile]'`) while they buy. It prints the share of the workers' busy samples spent
in each part of Colonnade (a sample counts toward every part on its stack) and keeps the raw
stacks for a flame graph. Shares are taken within one process's own samples, so unlike rates
they hold on a busy machine; compare a run with and without a change.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from bench.load import run
from bench.purchase import ON_HAND_PER_SKU, PRODUCTS
from bench.shop import BenchShop, stock_the_shop

RESULTS = Path(__file__).parent / "results"
# Parts of Colonnade, by where their code lives; the purchase's own steps by function.
PARTS = {
    "http and middleware (web/)": "colonnade/web/",
    "kernel (db, outbox, batching…)": "colonnade/kernel/",
    "cart": "modules/cart/",
    "checkout": "modules/checkout/",
    "pricing": "modules/pricing/",
    "promotions": "modules/promotions/",
    "inventory": "modules/inventory/",
    "payments": "modules/payments/",
    "orders": "modules/orders/",
    "catalog": "modules/catalog/",
    "  re-weighing promotions at checkout (take_codes_off)": "take_codes_off (",
    "  discounts into a quote (discounted)": "discounted (",
    "  sale prices (on_sale)": "on_sale (",
}


def shares(raw: Path) -> tuple[int, dict[str, float]]:
    """Busy samples in py-spy's raw (collapsed) output, and each part's share of them."""
    stacks: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            stacks[stack] += int(count)
    total = sum(stacks.values()) or 1
    return total, {
        part: sum(n for stack, n in stacks.items() if needle in stack) / total
        for part, needle in PARTS.items()
    }


async def profile(promotion: str | None, seconds: int, spy: str) -> Path:
    shop = BenchShop("postgresql", workers=2)
    try:
        await shop.open()
        shelves = await stock_the_shop(
            shop.base_url, PRODUCTS, ON_HAND_PER_SKU, promotion=promotion is not None
        )
        plan = replace(
            shop.buying(shelves.skus, 64, warmup_seconds=5, seconds=seconds + 5),
            promotion_code=shelves.promotion_code,
            code_at_checkout=promotion == "checkout",
        )
        RESULTS.mkdir(exist_ok=True)
        raw = RESULTS / f"profile-{promotion or 'plain'}.txt"
        # Sampling starts with the load's warm-up and ends before the load does.
        recorder = await asyncio.create_subprocess_exec(
            *(spy, "record", "--pid", str(shop.pid), "--subprocesses", "--nonblocking"),
            *("--duration", str(seconds), "--rate", "40", "--format", "raw"),
            *("--output", str(raw)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        report = await asyncio.to_thread(run, plan)
        await recorder.wait()
        print(f"{report.purchases} purchases at {report.rate:.1f}/s while sampling")
        return raw
    finally:
        await shop.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "--promotion",
        choices=["cart", "checkout"],
        default=None,
        help="Black Friday: a sale on every SKU and a code on every order, entered on the cart "
        "or given with the checkout (as bench.purchase --promotion)",
    )
    parser.add_argument("--seconds", type=int, default=35, help="how long to sample")
    options = parser.parse_args(argv)
    spy = shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: pip install 'colonnade[profile]'")
    raw = asyncio.run(profile(options.promotion, options.seconds, spy))
    total, found = shares(raw)
    print(f"{total:,} busy samples of the server's workers; raw stacks in {raw}")
    for part, share in found.items():
        print(f"  {part:56s} {100 * share:5.1f}%")


if __name__ == "__main__":
    main()
