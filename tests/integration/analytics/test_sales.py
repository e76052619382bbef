"""The analytics warehouse through the HTTP API on both databases: purchases, declines and
refunds become facts exactly once, the sales insight reports them to the minor unit per
currency and market whether the facts are still waiting or already in Parquet files, and a
rebuild from the orders gives the same figures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from colonnade.cli import cli
from colonnade.modules.analytics.schema import staged_batches
from colonnade.modules.analytics.warehouse import Warehouse, unpacked
from tests.integration.analytics.shopfront import START, Shopfront, cli_env, priced, total
from tests.integration.storefront import PASSWORD


async def test_the_sales_insight_counts_paid_orders_per_currency_and_market_to_the_minor_unit(
    front: Shopfront,
) -> None:
    mug = await priced(front.shop, usd=1000, eur=900)
    tee = await priced(front.shop, usd=2999, eur=2499)
    us_first = await front.buy("US", (mug, 2), (tee, 1))
    us_second = await front.buy("US", (tee, 1))
    de_first = await front.buy("DE", (mug, 3))
    declined = await front.buy("US", (mug, 1), token="tok_chargeDeclined")
    assert declined.status_code == 402, declined.text
    await front.refund(us_first.json()["id"], 500, "USD")
    # Two days later, outside the first window.
    front.clock.advance(timedelta(days=2))
    later = await front.buy("DE", (tee, 1))
    day = (START, START + timedelta(days=1))

    everything = await front.sales(*day)
    germany = await front.sales(*day, market="DE")
    both_days = await front.sales(START, START + timedelta(days=3))

    assert everything == {
        "orders": 3,
        "revenue": [
            {"amount": total(de_first), "currency": "EUR"},
            {"amount": total(us_first) + total(us_second), "currency": "USD"},
        ],
        "refunded": [{"amount": 0, "currency": "EUR"}, {"amount": 500, "currency": "USD"}],
    }
    assert germany == {
        "orders": 1,
        "revenue": [{"amount": total(de_first), "currency": "EUR"}],
        "refunded": [{"amount": 0, "currency": "EUR"}],
    }
    assert both_days["orders"] == 4
    assert both_days["revenue"][0] == {
        "amount": total(de_first) + total(later),
        "currency": "EUR",
    }
    # Nothing in a window before the first sale, and a market with no sales is empty.
    assert await front.sales(START - timedelta(days=1), START) == {
        "orders": 0,
        "revenue": [],
        "refunded": [],
    }
    assert (await front.sales(*day, market="JP"))["orders"] == 0


async def test_revenue_by_hour_lists_every_hour_of_the_window_with_its_paid_orders(
    front: Shopfront,
) -> None:
    mug = await priced(front.shop, usd=1000, eur=900)
    first = await front.buy("US", (mug, 1))
    front.clock.advance(timedelta(hours=2))
    second = await front.buy("US", (mug, 2))
    front.clock.advance(timedelta(minutes=30))
    third = await front.buy("DE", (mug, 1))
    assert (await front.buy("US", (mug, 1), token="tok_chargeDeclined")).status_code == 402
    # Half past four to eight: the first bucket is the hour holding the window's start.
    window = {
        "from": (START - timedelta(minutes=30)).isoformat(),
        "to": (START + timedelta(hours=3)).isoformat(),
    }

    hourly = await front.insight("revenue", every="hour", **window)
    daily = await front.insight("revenue", every="day", **window)
    german = await front.insight("revenue", every="hour", market="DE", **window)

    def at(hours: int) -> str:
        return (START + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")

    assert hourly == {
        "every": "hour",
        "buckets": [
            {"start": at(-1), "orders": 0, "revenue": []},
            {"start": at(0), "orders": 1, "revenue": [{"amount": total(first), "currency": "USD"}]},
            {"start": at(1), "orders": 0, "revenue": []},
            {
                "start": at(2),
                "orders": 2,
                "revenue": [
                    {"amount": total(third), "currency": "EUR"},
                    {"amount": total(second), "currency": "USD"},
                ],
            },
        ],
    }
    assert daily["buckets"] == [
        {
            "start": "2026-11-27T00:00:00Z",
            "orders": 3,
            "revenue": [
                {"amount": total(third), "currency": "EUR"},
                {"amount": total(first) + total(second), "currency": "USD"},
            ],
        }
    ]
    assert [b["orders"] for b in german["buckets"]] == [0, 0, 0, 1]


async def test_top_products_rank_skus_by_units_paid_orders_bought(front: Shopfront) -> None:
    mug = await priced(front.shop, usd=1000, eur=900)
    tee = await priced(front.shop, usd=2999, eur=2499)
    cap = await priced(front.shop, usd=1500, eur=1200)
    bought = [
        await front.buy("US", (mug, 2), (tee, 1)),
        await front.buy("US", (mug, 3)),
        await front.buy("US", (cap, 1), (tee, 1)),
        await front.buy("DE", (tee, 4)),
    ]
    assert (await front.buy("US", (cap, 9), token="tok_chargeDeclined")).status_code == 402
    window = {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()}

    top = await front.insight("products", **window)
    top_two = await front.insight("products", limit="2", **window)
    us = await front.insight("products", market="US", **window)

    def paid_for(sku: str, currency: str) -> int:
        return sum(
            line["line_total"]["amount"]
            for answer in bought
            for line in answer.json()["lines"]
            if line["sku"] == sku and line["line_total"]["currency"] == currency
        )

    assert top["products"] == [
        {"sku": mug, "units": 5, "revenue": {"amount": paid_for(mug, "USD"), "currency": "USD"}},
        {"sku": tee, "units": 4, "revenue": {"amount": paid_for(tee, "EUR"), "currency": "EUR"}},
        {"sku": tee, "units": 2, "revenue": {"amount": paid_for(tee, "USD"), "currency": "USD"}},
        {"sku": cap, "units": 1, "revenue": {"amount": paid_for(cap, "USD"), "currency": "USD"}},
    ]
    assert top_two["products"] == top["products"][:2]
    assert [(p["sku"], p["units"]) for p in us["products"]] == [(mug, 5), (tee, 2), (cap, 1)]


async def test_figures_hold_while_facts_move_into_parquet_files_and_after(
    front: Shopfront, tmp_path: Path
) -> None:
    mug = await priced(front.shop, usd=1000, eur=900)
    first = await front.buy("US", (mug, 1))
    window = (START, START + timedelta(days=1))
    before = await front.sales(*window)

    sealed = await front.shop.analytics.seal()
    after_sealing = await front.sales(*window)
    second = await front.buy("US", (mug, 2))
    mixed = await front.sales(*window)

    # The mug stocked, the cart started; the order's placement, its line and its payment.
    assert sealed == 5
    assert await staged_facts(front) == 4  # the second's
    files = list((tmp_path / "warehouse" / "facts").glob("day=2026-11-27/part-*.parquet"))
    assert len(files) == 1
    assert before == after_sealing
    assert before["revenue"] == [{"amount": total(first), "currency": "USD"}]
    assert mixed["orders"] == 2
    assert mixed["revenue"] == [{"amount": total(first) + total(second), "currency": "USD"}]


async def test_a_sealing_cut_short_after_writing_its_files_counts_nothing_twice(
    front: Shopfront, tmp_path: Path
) -> None:
    mug = await priced(front.shop, usd=1000, eur=900)
    bought = await front.buy("US", (mug, 1))
    window = (START, START + timedelta(days=1))
    before = await front.sales(*window)
    # What a sealing does before it deletes the rows: claim them, write the batch's file.
    async with front.shop.db.transaction() as uow:
        await uow.execute(update(staged_batches).values(batch="cut-short"))
        await uow.commit()
    async with front.shop.db.reading() as conn:
        rows = (await conn.execute(select(staged_batches.c.facts))).scalars().all()
    Warehouse(tmp_path / "warehouse").write(
        "cut-short", pa.concat_tables([unpacked(facts) for facts in rows])
    )

    files = sorted((tmp_path / "warehouse" / "facts").glob("day=*/part-*.parquet"))
    while_cut_short = await front.sales(*window)
    finished = await front.shop.analytics.seal()

    assert before["revenue"] == [{"amount": total(bought), "currency": "USD"}]
    assert while_cut_short == before
    assert finished == 5  # stocked, the cart started; the order placed, its line, its payment
    assert await staged_facts(front) == 0
    # The finishing sealing wrote the same files again, and no others.
    assert sorted((tmp_path / "warehouse" / "facts").glob("day=*/part-*.parquet")) == files
    assert all(path.name == "part-cut-short.parquet" for path in files)
    assert await front.sales(*window) == before


async def test_a_redelivered_event_changes_no_figure(front: Shopfront) -> None:
    mug = await priced(front.shop, usd=1000, eur=900)
    bought = await front.buy("US", (mug, 1))
    await front.refund(bought.json()["id"], 300, "USD")
    window = (START, START + timedelta(days=1))
    before = await front.sales(*window)
    staged = await staged_facts(front)

    again = await front.told("orders.")
    for envelope in again:
        await front.shop.bus.publish(envelope)
    await front.shop.analytics.seal()
    for envelope in again:
        await front.shop.bus.publish(envelope)

    assert staged == 6  # stocked, the cart started; the order placed, its line, paid, refunded
    assert await front.sales(*window) == before
    assert before["refunded"] == [{"amount": 300, "currency": "USD"}]


async def test_the_warehouse_deleted_and_rebuilt_from_the_orders_gives_the_same_figures(
    front: Shopfront, tmp_path: Path
) -> None:
    mug = await priced(front.shop, usd=1000, eur=900)
    tee = await priced(front.shop, usd=2999, eur=2499)
    for market, lines in [("US", [(mug, 1)]), ("DE", [(tee, 2)]), ("US", [(mug, 1), (tee, 1)])]:
        assert (await front.buy(market, *lines)).status_code == 201
        front.clock.advance(timedelta(hours=5))
    refunded = await front.buy("US", (tee, 3))
    await front.refund(refunded.json()["id"], 1000, "USD")
    await front.refund(refunded.json()["id"], 234, "USD")
    assert (await front.buy("US", (mug, 1), token="tok_chargeDeclined")).status_code == 402
    windows = [
        (START, START + timedelta(days=1)),
        (START + timedelta(hours=4), START + timedelta(hours=12)),
    ]
    before = [await front.sales(*w) for w in windows]
    before_de = await front.sales(*windows[0], market="DE")
    day = {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()}
    products_before = await front.insight("products", **day)
    hours_before = await front.insight("revenue", every="hour", **day)
    await front.shop.analytics.seal()

    progress: list[tuple[int, int]] = []
    read = await front.shop.analytics.rebuild(
        lambda limit, offset: front.shop.orders.search(limit=limit, offset=offset),
        lambda done, of: progress.append((done, of)),
    )

    assert read == 4  # every order the shop placed (the declined checkout placed none)
    assert progress[-1] == (4, 4)
    assert [await front.sales(*w) for w in windows] == before
    assert await front.sales(*windows[0], market="DE") == before_de
    assert await front.insight("products", **day) == products_before
    assert await front.insight("revenue", every="hour", **day) == hours_before
    assert len(products_before["products"]) == 3  # the tee in two currencies, the mug
    assert before[0]["refunded"] == [
        {"amount": 0, "currency": "EUR"},
        {"amount": 1234, "currency": "USD"},
    ]
    assert list((tmp_path / "warehouse" / "facts").glob("day=*/part-*.parquet"))


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2026-11-28T00:00:00Z", "to": "2026-11-27T00:00:00Z"}, "invalid_insight_window"),
        ({"from": "2026-11-27T00:00:00Z", "to": "2026-11-27T00:00:00Z"}, "invalid_insight_window"),
        ({"from": "2025-01-01T00:00:00Z", "to": "2026-11-27T00:00:00Z"}, "invalid_insight_window"),
        ({"from": "2026-11-27", "to": "2026-11-28T00:00:00Z"}, "invalid_input"),
        ({"to": "2026-11-28T00:00:00Z"}, "invalid_input"),
        (
            {"from": "2026-11-27T00:00:00Z", "to": "2026-11-28T00:00:00Z", "market": "de"},
            "invalid_input",
        ),
        (
            {"from": "2026-11-20T00:00:00Z", "to": "2026-11-28T00:00:00Z", "every": "hour"},
            "invalid_insight_window",
        ),
        (
            {"from": "2026-11-27T00:00:00Z", "to": "2026-11-28T00:00:00Z", "every": "minute"},
            "invalid_input",
        ),
        (
            {"from": "2026-11-27T00:00:00Z", "to": "2026-11-28T00:00:00Z", "limit": "0"},
            "invalid_input",
        ),
    ],
)
async def test_a_bad_window_is_refused_with_its_reason(
    front: Shopfront, params: dict[str, str], code: str
) -> None:
    route = "revenue" if "every" in params else "products" if "limit" in params else "sales"
    refused = await front.http.get(f"/admin/insights/{route}", params=params, headers=front.staff)

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == code


async def test_only_staff_who_may_read_insights_see_them(front: Shopfront) -> None:
    await front.shop.identity.create_staff("packer@shop.test", PASSWORD, roles=["warehouse"])
    await front.shop.identity.create_staff("money@shop.test", PASSWORD, roles=["finance"])
    params = {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()}

    anonymous = await front.http.get("/admin/insights/sales", params=params)
    packer = await front.http.get(
        "/admin/insights/sales",
        params=params,
        headers=await front.sign_in_staff("packer@shop.test"),
    )
    finance = await front.http.get(
        "/admin/insights/sales",
        params=params,
        headers=await front.sign_in_staff("money@shop.test"),
    )

    assert anonymous.status_code == 401
    assert packer.status_code == 403
    assert finance.status_code == 200, finance.text


def test_the_cli_shows_the_figures_and_rebuilds(database_url: str, tmp_path: Path) -> None:
    env = cli_env(database_url, tmp_path / "warehouse")
    runner = CliRunner()
    shown = runner.invoke(
        cli,
        ["insights", "sales", "--from", "2026-11-27T00:00:00Z", "--to", "2026-11-28T00:00:00Z"],
        env=env,
    )
    rebuilt = runner.invoke(cli, ["analytics", "rebuild"], env=env)

    assert shown.exit_code == 0, shown.output
    assert "0 paid orders" in shown.output
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "0 orders read" in rebuilt.output


async def staged_facts(front: Shopfront) -> int:
    """The facts waiting in the table for a sealing."""
    async with front.shop.db.reading() as conn:
        found = await conn.execute(select(func.sum(staged_batches.c.facts_count)))
        return int(found.scalar() or 0)
