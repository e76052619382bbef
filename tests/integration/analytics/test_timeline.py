"""The timeline on both databases: paid orders per market, as real purchases through the
HTTP API placed them, beside what the shop's process read of itself each minute (the
checkout route's requests and p99, checkouts per outcome, the outbox's lag, the pool), from
the warehouse's files and from what the process has not written yet."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from colonnade.cli import cli
from colonnade.ops.minutes import MinuteSampler
from tests.integration.analytics.shopfront import (
    START,
    Shopfront,
    cli_env,
    priced,
    shopfront,
)

CHECKOUT = "POST /store/carts/{cart_id}/checkout"


async def test_the_timeline_sets_each_minutes_orders_beside_the_checkout_and_the_machinery(
    front: Shopfront,
) -> None:
    mug = await priced(front.shop, usd=1000, eur=900)
    sampler = MinuteSampler(
        front.shop.analytics.keep_minutes,
        process="web-1",
        clock=lambda: front.clock.now().timestamp(),
    )
    # 05:00: a paid order in each market and a declined card in the US.
    assert (await front.buy("US", (mug, 1))).status_code == 201
    assert (await front.buy("DE", (mug, 1))).status_code == 201
    assert (await front.buy("US", (mug, 1), token="tok_chargeDeclined")).status_code == 402
    front.clock.advance(timedelta(minutes=1))
    assert await sampler.sample(write=True) > 0  # into the files
    # 05:01: DE orders double; this minute stays in the process, unwritten.
    for _ in range(2):
        assert (await front.buy("DE", (mug, 1))).status_code == 201
    front.clock.advance(timedelta(minutes=1))
    assert await sampler.sample() == 0
    window = {"from": START.isoformat(), "to": (START + timedelta(minutes=3)).isoformat()}

    timeline = await front.insight("timeline", **window)
    de = await front.insight("timeline", market="DE", **window)
    refused = await front.http.get(
        "/admin/insights/timeline",
        params={"from": START.isoformat(), "to": (START + timedelta(days=2)).isoformat()},
        headers=front.staff,
    )

    first, second, quiet = timeline["moments"]
    assert (timeline["every"], timeline["route"]) == ("minute", CHECKOUT)
    assert [m["start"] for m in timeline["moments"]] == [
        "2026-11-27T05:00:00Z",
        "2026-11-27T05:01:00Z",
        "2026-11-27T05:02:00Z",
    ]
    assert first["orders"] == [{"market": "DE", "orders": 1}, {"market": "US", "orders": 1}]
    assert second["orders"] == [{"market": "DE", "orders": 2}]
    assert (first["requests"], first["errors"], second["requests"]) == (3, 0, 2)
    assert first["p99_ms"] > 0
    assert second["p99_ms"] > 0
    assert first["checkouts"] == [
        {"outcome": "paid", "count": 2},
        {"outcome": "payment_declined", "count": 1},
    ]
    assert second["checkouts"] == [{"outcome": "paid", "count": 2}]
    for told in (first, second):
        assert told["outbox_lag_seconds"] >= 0
        assert told["pool_in_use"] >= 0
        assert told["pool_size"] >= 0
    assert quiet == {
        "start": "2026-11-27T05:02:00Z",
        "orders": [],
        "requests": 0,
        "errors": 0,
        "p99_ms": None,
        "checkouts": [],
        "outbox_lag_seconds": None,
        "pool_in_use": None,
        "pool_size": None,
    }
    # One market's orders; the machinery is the whole shop's.
    assert [m["orders"] for m in de["moments"]] == [
        [{"market": "DE", "orders": 1}],
        [{"market": "DE", "orders": 2}],
        [],
    ]
    assert [m["checkouts"] for m in de["moments"]] == [m["checkouts"] for m in timeline["moments"]]
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_insight_window"


def test_the_cli_shows_the_timeline(database_url: str, tmp_path: Path) -> None:
    async def buy_and_tell() -> None:
        async with shopfront(database_url, tmp_path) as front:
            mug = await priced(front.shop, usd=1000, eur=900)
            sampler = MinuteSampler(
                front.shop.analytics.keep_minutes,
                process="web-1",
                clock=lambda: front.clock.now().timestamp(),
            )
            assert (await front.buy("US", (mug, 1))).status_code == 201
            await front.settled()
            front.clock.advance(timedelta(minutes=1))
            await sampler.sample(write=True)

    asyncio.run(buy_and_tell())
    window = ["--from", START.isoformat(), "--to", (START + timedelta(minutes=2)).isoformat()]

    shown = CliRunner().invoke(
        cli, ["insights", "timeline", *window], env=cli_env(database_url, tmp_path / "warehouse")
    )

    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if "2026-11-27 05:0" in line]
    cells = [[cell.strip() for cell in row.strip("│ ").split("│")] for row in rows]
    assert [c[:3] for c in cells] == [
        ["2026-11-27 05:00", "US 1", "1"],
        ["2026-11-27 05:01", "—", "0"],
    ]
    assert cells[0][4] == "paid 1"
