"""The cart in a process of its own, calling pricing and the catalog in another over NATS
(`COLONNADE_REMOTE_MODULES=pricing,catalog`), on PostgreSQL and a NATS server of the test's
own: carts are priced by the other process, its refusals reach the shopper as the same
problems, and when that process is killed a cart change fails in time with a 503 and changes
nothing, until it is back."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from tests.conftest import OwnNats, PostgresServer, free_port, sqlalchemy_url
from tests.e2e.conftest import RunningShop, start_shop, stop
from tests.e2e.staff import Staff

# What the other process serves: the modules the cart calls, and what staff need to stock.
ANSWERING = "catalog,pricing,inventory,identity,promotions"


def test_the_cart_calls_pricing_and_the_catalog_in_another_process(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    broker = OwnNats(tmp_path / "jetstream")
    broker.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLONNADE_")}
    env.update(
        COLONNADE_DATABASE_URL=sqlalchemy_url(postgres.create_database("colonnade_remote")),
        COLONNADE_BUS_URL=broker.url,
        COLONNADE_SECRET_KEY="end-to-end-tests-only-" + "k" * 32,
        COLONNADE_REMOTE_CALL_SECONDS="1",
    )
    answering_env = {**env, "COLONNADE_METRICS_PORT": str(free_port())}
    answering, answering_url = start_shop(
        answering_env, tmp_path, "--modules", ANSWERING, "--demo-data"
    )
    carts, carts_url = start_shop(
        {
            **env,
            "COLONNADE_METRICS_PORT": str(free_port()),
            "COLONNADE_REMOTE_MODULES": "pricing,catalog",
        },
        tmp_path,
        "--modules",
        "cart",
    )
    try:
        staff = Staff.sign_in(RunningShop(answering_url, answering_env, tmp_path))
        mug = staff.new_product(price_cents=1250, on_hand=5)
        tee = staff.new_product(price_cents=2000, on_hand=5)
        with httpx.Client(base_url=carts_url, timeout=30) as shopper:
            opened = shopper.post("/store/carts", json={"market": "US"})
            assert opened.status_code == 201, opened.text
            lines = f"/store/carts/{opened.json()['id']}/lines"
            added = shopper.post(lines, json={"sku": mug, "quantity": 2})
            nowhere = shopper.post("/store/carts", json={"market": "XX"})
            unknown = shopper.post(lines, json={"sku": "NO-SUCH-SKU", "quantity": 1})

            answering.kill()
            answering.wait(timeout=10)
            began = time.monotonic()
            cut_off = shopper.post(lines, json={"sku": tee, "quantity": 1})
            waited = time.monotonic() - began

            answering, _ = start_shop(answering_env, tmp_path, "--modules", ANSWERING)
            back = shopper.post(lines, json={"sku": tee, "quantity": 1})
    finally:
        for process in (carts, answering):
            stop(process)
        broker.stop()

    # Priced by pricing in the other process: two at 12.50 USD.
    assert added.status_code == 200, added.text
    assert added.json()["subtotal"] == {"amount": 2500, "currency": "USD"}
    # Pricing's refusal, raised again here as its own problem.
    assert nowhere.status_code == 422, nowhere.text
    assert nowhere.json()["code"] == "unknown_market"
    assert "US" in nowhere.json()["known_markets"]
    # The catalog, asked over there, knows no such SKU.
    assert unknown.status_code in (404, 422), unknown.text
    assert unknown.json()["code"] == "unknown_sku"
    # With pricing and the catalog gone: a clear 503 within the call's deadline, nothing kept.
    assert cut_off.status_code == 503, cut_off.text
    assert cut_off.headers["content-type"].startswith("application/problem+json")
    assert cut_off.json()["code"] == "module_unavailable"
    assert waited < 5
    assert back.status_code == 200, back.text
    assert [(ln["sku"], ln["quantity"]) for ln in back.json()["lines"]] == [(mug, 2), (tee, 1)]
