"""A shop for the benchmark: a fresh database, a started `colonnade serve`, a staff member.

Everything goes through the shop's public doors (the CLI and the admin API), exactly as an
operator would set it up, so the benchmark exercises nothing the real shop does not.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import asyncpg

from bench.load import LoadPlan

DatabaseKind = Literal["sqlite", "postgresql"]
POSTGRES_ADMIN_DSN = os.environ.get(
    "COLONNADE_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STAFF_EMAIL = "bench@colonnade.example"
STAFF_PASSWORD = "a long benchmark password"  # noqa: S105 - a throw-away shop's account


def dsn_of(database: str) -> str:
    return POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database


async def admin_execute(*statements: str) -> None:
    """Run statements on the server's maintenance database (CREATE/DROP DATABASE)."""
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def admin_fetchrow(query: str, *arguments: object) -> asyncpg.Record:
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        row = await conn.fetchrow(query, *arguments)
    finally:
        await conn.close()
    assert row is not None
    return row


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class BenchShop:
    """One `colonnade serve` process on its own fresh database."""

    kind: DatabaseKind
    workers: int = 1
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="colonnade-bench-")))
    database: str | None = None
    process: subprocess.Popen[bytes] | None = None
    base_url: str = ""
    # More COLONNADE_* settings for this shop (e.g. a faster sampling of the operations page).
    settings: dict[str, str] = field(default_factory=dict)
    # Its metrics port, where the load reads the shop's own counters.
    metrics_port: int = field(default_factory=free_port)
    # Load the demo shop (markets, products, stock) before serving.
    demo: bool = False

    @property
    def env(self) -> dict[str, str]:
        # Only the settings chosen here: whatever COLONNADE_* the caller's shell holds stays out.
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLONNADE_")}
        if self.kind == "postgresql":
            assert self.database is not None
            url = dsn_of(self.database).replace("postgresql://", "postgresql+asyncpg://", 1)
        else:
            url = f"sqlite+aiosqlite:///{self.workdir / 'colonnade.db'}"
        env["COLONNADE_DATABASE_URL"] = url
        env["COLONNADE_SECRET_KEY"] = "benchmark-only-" + "k" * 40
        # Every simulated buyer comes from 127.0.0.1: the per-address limit would measure itself.
        env["COLONNADE_RATE_LIMIT_CHECKOUT_PER_ADDRESS"] = "100000000"
        env["COLONNADE_METRICS_PORT"] = str(self.metrics_port)
        env.update(self.settings)
        return env

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def buying(self, skus: list[str], clients: int, **timing: float) -> LoadPlan:
        """`clients` shoppers buying `skus` here (`timing`: LoadPlan's warm-up and window),
        watched through this shop's metrics port and, on PostgreSQL, its database."""
        return LoadPlan(
            base_url=self.base_url,
            metrics_url=self.metrics_url,
            server_pid=self.pid,
            watch_database=self.kind == "postgresql",
            skus=skus,
            clients=clients,
            scenario="throughput",
            **timing,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def open(self) -> None:
        if self.kind == "postgresql":
            self.database = f"colonnade_bench_{uuid.uuid4().hex[:10]}"
            await admin_execute(f'CREATE DATABASE "{self.database}"')
        # The CLI migrates the fresh database and makes the staff account the seeding uses.
        self.cli("users", "create-admin", "--email", STAFF_EMAIL, "--password", STAFF_PASSWORD)
        if self.demo:
            self.cli("demo-data")
        port = free_port()
        self._spawn(port)
        self.base_url = f"http://127.0.0.1:{port}"
        await self._wait_until_ready()

    def _spawn(self, port: int) -> None:
        with (self.workdir / "serve.log").open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "colonnade",
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(self.workers),
                ],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def cli(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "colonnade", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"colonnade {' '.join(args[:2])} failed:\n{done.stdout}{done.stderr}"
            )

    async def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 90
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"colonnade serve exited early:\n{self.log()}")
                try:
                    async with session.get(self.base_url + "/health/ready") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"colonnade serve did not become ready:\n{self.log()}")

    def log(self) -> str:
        path = self.workdir / "serve.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_server(self) -> None:
        """Stop the shop; its database stays (its statistics are final once its backends end)."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    async def close(self) -> None:
        self.stop_server()
        if self.database is not None:
            await admin_execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self.database = None
        shutil.rmtree(self.workdir, ignore_errors=True)


class Staff:
    """The shop's staff member, through the admin API: opens the market, stocks the shelves."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        stockroom_url: str | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}
        # Where inventory's routes are, when a process of its own serves them.
        self._stockroom_url = stockroom_url or base_url

    @classmethod
    async def sign_in(
        cls, session: aiohttp.ClientSession, base_url: str, stockroom_url: str | None = None
    ) -> Staff:
        async with session.post(
            base_url + "/auth/token", data={"username": STAFF_EMAIL, "password": STAFF_PASSWORD}
        ) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"staff sign-in refused: {body}")
        return cls(session, base_url, body["access_token"], stockroom_url)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        base = self._stockroom_url if path.startswith("/admin/inventory") else self._base_url
        async with self._session.request(
            method, base + path, headers=self._headers, **kwargs
        ) as response:
            body = await response.json(content_type=None)
            if response.status >= 300:
                raise RuntimeError(f"{method} {path} -> {response.status}: {body}")
            return body

    async def open_us_market(self) -> None:
        await self.call(
            "PUT",
            "/admin/markets/US",
            json={
                "name": "United States",
                "currency": "USD",
                "locale": "en-US",
                "tax_inclusive": False,
                "tax_rate": "0.0725",
            },
        )

    async def new_product(self, sku: str, title: str, *, price_cents: int, on_hand: int) -> str:
        await self.call(
            "POST",
            "/admin/products",
            json={
                "title": {"en-US": title},
                "variants": [{"sku": sku, "prices": [{"amount": price_cents, "currency": "USD"}]}],
            },
        )
        await self.call("PUT", f"/admin/inventory/{sku}", json={"on_hand": on_hand})
        return sku

    async def black_friday(self, skus: list[str], code: str) -> str:
        """Black Friday: a running sale of 20% off every SKU, and a code for 10% more off
        every cart, with no limits."""
        for start in range(0, len(skus), 100):
            await self.call(
                "POST",
                "/admin/sales",
                json={
                    "name": f"Black Friday {start // 100 + 1}",
                    "market": "US",
                    "percent_off": 20,
                    "prices": [{"sku": sku} for sku in skus[start : start + 100]],
                },
            )
        await self.call("POST", "/admin/promotions", json={"code": code, "percent_off": 10})
        return code

    async def stock(self, sku: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("GET", f"/admin/inventory/{sku}")
        return result


async def stock_the_shop(
    base_url: str,
    products: int,
    on_hand: int,
    *,
    promotion: bool = False,
    stockroom_url: str | None = None,
) -> Shelves:
    """Open the US market, list `products` SKUs with `on_hand` each and one flash-sale SKU
    (stocked only just before its sale, by `stock_flash_sale`); with `promotion`, a sale of
    every SKU and a discount code for every cart. Stock is set at `stockroom_url` when a
    process of its own serves inventory."""
    async with aiohttp.ClientSession() as session:
        staff = await Staff.sign_in(session, base_url, stockroom_url)
        await staff.open_us_market()
        skus = [
            await staff.new_product(
                f"BENCH-{n:03d}", f"Benchmark beans no. {n}", price_cents=1850, on_hand=on_hand
            )
            for n in range(products)
        ]
        hot = await staff.new_product(
            "FLASH-SALE", "Limited edition grinder", price_cents=12900, on_hand=0
        )
        code = await staff.black_friday([*skus, hot], "BLACKFRIDAY") if promotion else None
    return Shelves(skus=skus, flash_sku=hot, promotion_code=code)


@dataclass(frozen=True)
class Shelves:
    skus: list[str]
    flash_sku: str
    promotion_code: str | None = None


async def stock_flash_sale(
    base_url: str, sku: str, on_hand: int, *, stockroom_url: str | None = None
) -> None:
    async with aiohttp.ClientSession() as session:
        staff = await Staff.sign_in(session, base_url, stockroom_url)
        await staff.call("PUT", f"/admin/inventory/{sku}", json={"on_hand": on_hand})


async def audit_flash_sale(
    base_url: str, sku: str, *, stockroom_url: str | None = None
) -> dict[str, Any]:
    """The flash SKU's stock as staff see it after the sale."""
    async with aiohttp.ClientSession() as session:
        staff = await Staff.sign_in(session, base_url, stockroom_url)
        return await staff.stock(sku)
