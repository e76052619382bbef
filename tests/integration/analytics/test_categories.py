"""Categories and week-over-week growth from the analytics warehouse, through the HTTP API on
both databases: what paid orders bought per category (with those below it) and currency,
and each market's demand against the week before, in total and per category."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from colonnade.cli import cli
from colonnade.kernel.money import Money
from tests.integration.analytics.shopfront import (
    START,
    Shopfront,
    cli_env,
)
from tests.integration.storefront import product


async def shelved(front: Shopfront, usd: int, eur: int, category: str | None) -> str:
    sku = await product(front.shop, price=usd, on_hand=50, category=category)
    await front.shop.pricing.set_prices(sku, [Money(usd, "USD"), Money(eur, "EUR")])
    return sku


async def shelves(front: Shopfront) -> dict[str, str]:
    """Tees below apparel, a hoodie in apparel itself, a mug in kitchen, a cap in none."""
    await front.shop.catalog.set_category("apparel", {"en-US": "Apparel"})
    await front.shop.catalog.set_category("tees", {"en-US": "Tees"}, parent="apparel")
    await front.shop.catalog.set_category("kitchen", {"en-US": "Kitchen"})
    return {
        "tee": await shelved(front, 2000, 1800, "tees"),
        "hoodie": await shelved(front, 5000, 4500, "apparel"),
        "mug": await shelved(front, 1000, 900, "kitchen"),
        "cap": await shelved(front, 1500, 1300, None),
    }


def paid(answers: list[httpx.Response], skus: set[str], currency: str) -> dict[str, Any]:
    """What the answers' lines of these SKUs cost in this currency, as the API shows money."""
    amount = sum(
        line["line_total"]["amount"]
        for answer in answers
        for line in answer.json()["lines"]
        if line["sku"] in skus and line["line_total"]["currency"] == currency
    )
    return {"amount": amount, "currency": currency}


async def test_top_categories_count_every_product_below_them_in_each_currency(
    front: Shopfront,
) -> None:
    sku = await shelves(front)
    bought = [
        await front.buy("US", (sku["tee"], 2), (sku["mug"], 1)),
        await front.buy("US", (sku["hoodie"], 1), (sku["cap"], 3)),
        await front.buy("DE", (sku["tee"], 1)),
    ]
    assert all(answer.status_code == 201 for answer in bought), [a.text for a in bought]
    declined = await front.buy("US", (sku["mug"], 9), token="tok_chargeDeclined")
    assert declined.status_code == 402
    window = {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()}

    top = await front.insight("categories", **window)
    us = await front.insight("categories", market="US", limit="2", **window)

    apparel = {sku["tee"], sku["hoodie"]}
    expected = [
        {"category": "apparel", "units": 3, "revenue": paid(bought, apparel, "USD")},
        {"category": "tees", "units": 2, "revenue": paid(bought, {sku["tee"]}, "USD")},
        # One unit each: the most revenue first, then by slug.
        {"category": "apparel", "units": 1, "revenue": paid(bought, apparel, "EUR")},
        {"category": "tees", "units": 1, "revenue": paid(bought, {sku["tee"]}, "EUR")},
        {"category": "kitchen", "units": 1, "revenue": paid(bought, {sku["mug"]}, "USD")},
    ]
    expected[2:] = sorted(expected[2:], key=lambda r: (-r["revenue"]["amount"], r["category"]))
    assert top["categories"] == expected
    assert us["categories"] == expected[:2]


async def test_growth_sets_each_markets_week_against_the_week_before(front: Shopfront) -> None:
    sku = await shelves(front)
    for answer in [
        await front.buy("US", (sku["tee"], 2)),
        await front.buy("DE", (sku["tee"], 1)),
    ]:
        assert answer.status_code == 201, answer.text
    front.clock.advance(timedelta(days=7))
    for answer in [
        await front.buy("US", (sku["tee"], 3), (sku["mug"], 1)),
        await front.buy("US", (sku["cap"], 2)),
    ]:
        assert answer.status_code == 201, answer.text

    report = await front.insight("growth", to=(START + timedelta(days=7, hours=1)).isoformat())

    assert (report["before_from"], report["week_from"], report["to"]) == (
        "2026-11-20T06:00:00Z",
        "2026-11-27T06:00:00Z",
        "2026-12-04T06:00:00Z",
    )
    assert [
        (r["market"], r["category"], r["units"], r["units_before"], r["percent"])
        for r in report["rows"]
    ] == [
        ("DE", None, 0, 1, -100.0),
        ("DE", "apparel", 0, 1, -100.0),
        ("DE", "tees", 0, 1, -100.0),
        ("US", None, 6, 2, 200.0),
        ("US", "apparel", 3, 2, 50.0),
        ("US", "kitchen", 1, 0, None),
        ("US", "tees", 3, 2, 50.0),
    ]
    de_only = await front.insight(
        "growth", to=(START + timedelta(days=7, hours=1)).isoformat(), market="DE"
    )
    assert [r["market"] for r in de_only["rows"]] == ["DE", "DE", "DE"]


async def test_a_bad_category_window_is_refused_with_its_reason(front: Shopfront) -> None:
    refused = await front.http.get(
        "/admin/insights/categories",
        params={"from": START.isoformat(), "to": (START - timedelta(days=1)).isoformat()},
        headers=await front.fresh_staff(),
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_insight_window"


def test_the_cli_shows_categories_and_growth(database_url: str, tmp_path: Path) -> None:
    env = cli_env(database_url, tmp_path / "warehouse")
    runner = CliRunner()
    categories = runner.invoke(
        cli,
        ["insights", "categories", "--from", "2026-11-27T00:00:00Z", "--to", "2026-11-28T00:00Z"],
        env=env,
    )
    growth = runner.invoke(cli, ["insights", "growth", "--to", "2026-12-04T00:00:00Z"], env=env)

    assert categories.exit_code == 0, categories.output
    assert "Top categories" in categories.output
    assert growth.exit_code == 0, growth.output
    assert "week to 2026-12-04 00:00 UTC" in growth.output
