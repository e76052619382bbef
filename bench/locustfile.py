"""The rehearsal's Black Friday profile for teams that load-test with Locust.

    .venv/bin/pip install -e '.[locust]'
    .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8000 --headless

The shape is `colonnade rehearse`'s own (colonnade.rehearsal.profile): a ramp from a baseline
of purchases per second to a multiple of it, held to the end, visitors in the default mix
(browse, fill a cart and leave, buy), a flash sale's buyers rushing one SKU, and the payment
provider slow or failing on schedule (through the test gateway's tokens). It is set with the
same knobs, read from the environment:

    COLONNADE_REHEARSAL_DURATION      3m
    COLONNADE_REHEARSAL_BASELINE      2 (purchases per second)
    COLONNADE_REHEARSAL_PEAK          10 (times the baseline)
    COLONNADE_REHEARSAL_RAMP          a third of the duration
    COLONNADE_REHEARSAL_MARKET        US
    COLONNADE_REHEARSAL_FLASH_SKU     none: no flash sale
    COLONNADE_REHEARSAL_FLASH_AT      half-way through the peak
    COLONNADE_REHEARSAL_FLASH_BUYERS  500
    COLONNADE_REHEARSAL_FAULTS        e.g. slow-provider@1:00+30s,failing-provider@2:00+20s

Locust's load is closed (users who wait for their answers), the rehearsal's open (visitors
arriving whatever the answers): each Locust user here starts one visit a second, and the
shape sets as many users as visitors should arrive per second, which holds the arrival rate
while visits last under a second. What Locust cannot do is left to `colonnade rehearse`:
opening the flash SKU's stock at its minute (set it beforehand through the admin API), the
faults that reach into the shop's machine (a killed worker, cut database connections), the
shop's own mix from its analytics, and the report judged by the shop's own metrics.
"""

from __future__ import annotations

import math
import os
import random
import time
import uuid
from typing import Any

import gevent
import requests
from locust import HttpUser, LoadTestShape, constant_throughput, events, task

from colonnade.rehearsal.faults import token_at
from colonnade.rehearsal.profile import FlashSale, Profile, parse_fault, parse_seconds

ADDRESS = {
    "name": "Locust Buyer",
    "line1": "1 Colonnade Row",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


def _setting(name: str, default: str) -> str:
    return os.environ.get(f"COLONNADE_REHEARSAL_{name}", default)


def _profile() -> Profile:
    seconds = parse_seconds(_setting("DURATION", "3m"))
    ramp = parse_seconds(_setting("RAMP", str(seconds / 3)))
    sku = _setting("FLASH_SKU", "")
    flash = None
    if sku:
        opens = parse_seconds(_setting("FLASH_AT", str(ramp + (seconds - ramp) / 2)))
        flash = FlashSale(sku, opens, stock=0, buyers=int(_setting("FLASH_BUYERS", "500")))
    faults = [parse_fault(f) for f in _setting("FAULTS", "").split(",") if f.strip()]
    return Profile(
        seconds,
        float(_setting("BASELINE", "2")),
        float(_setting("PEAK", "10")),
        ramp,
        flash=flash,
        faults=tuple(faults),
    )


PROFILE = _profile()
MARKET = _setting("MARKET", "US")
PAYS_WITH = token_at(PROFILE)
# The market's products (id, first SKU), and when the test began: set as it starts.
CATALOG: list[tuple[str, str]] = []
STARTED = [time.monotonic()]


@events.test_start.add_listener
def _read_catalog(environment: Any, **_: Any) -> None:
    listed = requests.get(
        f"{environment.host}/store/products", params={"market": MARKET, "limit": 100}, timeout=30
    )
    listed.raise_for_status()
    CATALOG[:] = [(p["id"], p["variants"][0]["sku"]) for p in listed.json() if p["variants"]]
    STARTED[0] = time.monotonic()


class BlackFriday(LoadTestShape):
    """As many users as visitors should arrive each second (each starts a visit a second)."""

    def tick(self) -> tuple[int, float] | None:
        moment = self.get_run_time()
        if moment >= PROFILE.seconds:
            return None
        arriving = PROFILE.visits_between(moment, moment + 1)
        arriving += PROFILE.flash_buyers_between(moment, moment + 1)
        users = max(1, math.ceil(arriving))
        return users, float(users)


class Visitor(HttpUser):
    wait_time = constant_throughput(1)

    @task
    def visit(self) -> None:
        moment = time.monotonic() - STARTED[0]
        flash = PROFILE.flash
        rushing = PROFILE.flash_buyers_between(moment, moment + 1)
        arriving = PROFILE.visits_between(moment, moment + 1) + rushing
        if flash is not None and random.random() < rushing / max(arriving, 1e-9):
            product = next((p for p in CATALOG if p[1] == flash.sku), None)
            if product is not None:
                self._buy(product, moment)
            return
        others = [p for p in CATALOG if flash is None or p[1] != flash.sku]
        product = random.choice(others)
        self.client.get("/store/products", params={"market": MARKET, "limit": 20})
        self.client.get(
            f"/store/products/{product[0]}", params={"market": MARKET}, name="/store/products/[id]"
        )
        mix = PROFILE.mix
        journey = random.choices(["browse", "cart", "buy"], [mix.browse, mix.cart, mix.buy])[0]
        if journey == "cart":
            self._fill_cart(product[1])
        elif journey == "buy":
            self._buy(product, moment)

    def _fill_cart(self, sku: str) -> str | None:
        cart = self.client.post("/store/carts", json={"market": MARKET})
        if cart.status_code != 201:
            return None
        cart_id = str(cart.json()["id"])
        self.client.post(
            f"/store/carts/{cart_id}/lines",
            json={"sku": sku, "quantity": 1},
            name="/store/carts/[id]/lines",
        )
        return cart_id

    def _buy(self, product: tuple[str, str], moment: float) -> None:
        cart_id = self._fill_cart(product[1])
        if cart_id is None:
            return
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        body = {
            "email": "locust@example.com",
            "shipping_address": ADDRESS,
            "payment": {"method": "card", "token": PAYS_WITH(moment)},
        }
        while True:
            with self.client.post(
                f"/store/carts/{cart_id}/checkout",
                json=body,
                headers=headers,
                name="/store/carts/[id]/checkout",
                catch_response=True,
            ) as answer:
                queued = (
                    answer.status_code == 503 and answer.json().get("code") == "checkout_queued"
                )
                if answer.status_code == 409 or queued:
                    answer.success()  # sold out, or waiting its turn: the shop working as it should
                if not queued:
                    return
                headers["Queue-Ticket"] = answer.json()["ticket"]
                wait = float(answer.headers.get("Retry-After", "1"))
            gevent.sleep(min(wait, 5.0))
