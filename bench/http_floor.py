"""The HTTP floor of a purchase: what its three requests cost the server before any shop work.

    python -m bench.http_floor            # 64 clients, 15 s per server
    python -m bench.http_floor --quick    # a short smoke run

Three servers answer the same three requests (open a cart, add a line, check out) to the same
load generator, one after another:

- `routes`: the shop's own cart and checkout routes (their request models, auth dependency
  and answers), on FastAPI and uvicorn as `colonnade serve` runs them, over services that
  answer at once;
- `protected`: the same, behind every middleware the shop mounts (observation with its access
  log line, caching and security headers, body size, NUL and card number guards, rate limits,
  the audit trail) and with the shop's logging;
- `shop`: the whole shop on PostgreSQL, one worker.

Server CPU per purchase of the first two is the part of the shop's own figure that no change
below the HTTP layer can take away.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from typing import IO, cast

import aiohttp
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rich.table import Table

from bench import load
from bench.load import LoadPlan, LoadReport
from bench.report import console
from bench.shop import BenchShop, free_port, stock_the_shop
from colonnade.kernel.ids import new_id
from colonnade.kernel.money import Money
from colonnade.kernel.principal import Principal
from colonnade.kernel.redaction import configure_logging
from colonnade.kernel.settings import Settings
from colonnade.modules.cart import api as cart_api
from colonnade.modules.cart.domain import CartStatus
from colonnade.modules.cart.service import CartLineView, CartService, CartView
from colonnade.modules.checkout import api as checkout_api
from colonnade.modules.checkout.domain import Outcome
from colonnade.modules.checkout.service import CheckoutService
from colonnade.modules.compliance.api import AuditTrail
from colonnade.web import hardening
from colonnade.web.caching import PrivateUnlessPublic
from colonnade.web.observability import RequestObservation

_PRICE = Money(1850, "USD")
_TAX = Money(134, "USD")


def _cart(cart_id: str, lines: int) -> CartView:
    line = CartLineView("BENCH-001", 1, _PRICE, _PRICE, _TAX)
    return CartView(
        id=cart_id,
        market="US",
        currency="USD",
        status=CartStatus.OPEN,
        lines=(line,) * lines,
        subtotal=_PRICE,
        tax=_TAX,
        total=_PRICE + _TAX,
        tax_inclusive=False,
    )


class _Carts:
    """Stands in for the cart service behind the shop's own cart routes: answers at once."""

    async def create(self, market: str, customer: str | None) -> CartView:
        return _cart(new_id(), 0)

    async def add_line(
        self, cart_id: str, sku: str, quantity: int, customer: str | None
    ) -> CartView:
        return _cart(cart_id, 1)


class _Checkout:
    """Stands in for the checkout service behind the shop's own checkout route."""

    async def check_out(self, cart_id: str, key: str | None, request: object) -> Outcome:
        return Outcome(201, {"order_id": new_id(), "status": "paid", "total": _PRICE.as_dict()})


def _routes() -> APIRouter:
    routes = APIRouter()

    @routes.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @routes.get("/health/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return routes


async def _nobody(token: str) -> Principal:
    raise AssertionError("the floor's buyers are guests")


def routes_only() -> FastAPI:
    """The shop's request handling on FastAPI, without its middlewares."""
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.authenticate = _nobody
    app.include_router(_routes())
    app.include_router(cart_api.router(cast(CartService, _Carts())))
    app.include_router(checkout_api.router(cast(CheckoutService, _Checkout())))
    return app


def protected() -> FastAPI:
    """The same routes, behind the middlewares the shop mounts in the same order."""
    settings = Settings(rate_limit_checkout_per_address=100_000_000)
    configure_logging(settings.log_level)
    app = routes_only()
    # Guests are never audited, so the trail looks at every request and records none.
    app.add_middleware(AuditTrail, audit=None)
    hardening.install(app, settings)
    app.add_middleware(PrivateUnlessPublic)
    app.add_middleware(RequestObservation, routes=app.router.routes)
    return app


def _serve(factory: str, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    # Log lines go to a file, as `colonnade serve`'s do in the purchase benchmark.
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"bench.http_floor:{factory}",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        stdout=log,
    )


async def _ready(base_url: str) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(base_url + "/health/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{base_url} did not start")


async def _floor(
    factory: str, pool: ProcessPoolExecutor, options: argparse.Namespace
) -> LoadReport:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        server = _serve(factory, port, log)
        try:
            await _ready(base_url)
            # The stand-ins serve /metrics on their one port.
            plan = _plan(base_url, base_url, server.pid, ["BENCH-001"], options)
            return await asyncio.get_running_loop().run_in_executor(pool, load.run, plan)
        finally:
            server.terminate()
            server.wait(timeout=30)


async def _shop(pool: ProcessPoolExecutor, options: argparse.Namespace) -> LoadReport:
    shop = BenchShop("postgresql", workers=1)
    try:
        await shop.open()
        shelves = await stock_the_shop(shop.base_url, 20, 1_000_000)
        plan = _plan(shop.base_url, shop.metrics_url, shop.pid, shelves.skus, options)
        return await asyncio.get_running_loop().run_in_executor(pool, load.run, plan)
    finally:
        await shop.close()


def _plan(
    base_url: str, metrics_url: str, pid: int, skus: list[str], options: argparse.Namespace
) -> LoadPlan:
    return LoadPlan(
        base_url=base_url,
        metrics_url=metrics_url,
        server_pid=pid,
        watch_database=False,
        skus=skus,
        clients=options.clients,
        scenario="throughput",
        warmup_seconds=options.warmup,
        seconds=options.seconds,
    )


async def run(options: argparse.Namespace) -> dict[str, LoadReport]:
    context = multiprocessing.get_context("spawn")
    reports: dict[str, LoadReport] = {}
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for name, factory in (("routes", "routes_only"), ("protected", "protected")):
            console.print(f"  {name}: {options.clients} clients for {options.seconds}s ...")
            reports[name] = await _floor(factory, pool, options)
        console.print(f"  shop (PostgreSQL, 1 worker): {options.clients} clients ...")
        reports["shop"] = await _shop(pool, options)
    return reports


def _table(reports: dict[str, LoadReport]) -> Table:
    table = Table(title="Server CPU per purchase (cart + line + checkout), one worker")
    for column in ("server", "purchases/s", "p99 ms", "errors", "server CPU", "ms/purchase"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, report in reports.items():
        per_purchase = report.cpu.server * report.cpu.wall_seconds / max(report.purchases, 1)
        table.add_row(
            name,
            f"{report.rate:.0f}",
            f"{report.p99_ms:.0f}" if report.p99_ms is not None else "-",
            str(sum(report.errors.values())),
            f"{report.cpu.server:.0%}",
            f"{per_purchase * 1000:.2f}",
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_floor")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=None, help="per server (default 15)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (3s each)")
    options = parser.parse_args(argv)
    if options.seconds is None:
        options.seconds = 3 if options.quick else 15
    options.warmup = min(5.0, max(1.0, options.seconds / 4))
    console.print(_table(asyncio.run(run(options))))


if __name__ == "__main__":
    main()
