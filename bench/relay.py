"""The outbox relay benchmark: `python -m bench.relay [--purchases N] [--quick] ...`.

On a fresh database of each kind it fills the outbox with the events of N purchases, each a
real paid order (OrderPlaced and OrderPaid, from the orders service, so the notifications
consumer has an order to read and confirm) and the purchase's other events, which no
in-process consumer takes. Then it times the shop's own relay publishing all of them through
the shop's in-process consumers, counting the statements it runs, and checks that every
order got its one confirmation.

Each measurement runs in a process of its own, once with this checkout's code and once with
the code of a baseline commit (by default where this branch left main), so the table
compares both on the same machine in the same run. Prints a table; writes JSON to
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar

from rich.table import Table

from bench.report import RESULTS, console
from bench.shop import POSTGRES_ADMIN_DSN, admin_execute, dsn_of

REPOSITORY = Path(__file__).resolve().parent.parent
DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Figures:
    """One drain of a filled outbox by one version of the code."""

    database: str
    code: str
    purchases: int
    events: int
    seconds: float
    statements: int
    confirmations: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    @property
    def statements_per_event(self) -> float:
        return self.statements / self.events


# --- one measurement, in a process running the code under test --------------------------


def _measure(database: str, purchases: int, events_per_purchase: int) -> dict[str, Any]:
    """Runs with whichever `colonnade` is first on sys.path: this checkout's or the baseline's."""
    from colonnade.kernel.redaction import configure_logging

    with (
        open(os.devnull, "w") as nowhere,
        tempfile.TemporaryDirectory(prefix="colonnade-bench-relay-") as folder,
    ):
        # The shop logs each e-mail as it would in production, but not onto the bench's table.
        configure_logging("INFO", nowhere)
        if database == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(folder) / 'colonnade.db'}"
            return asyncio.run(_drain(url, purchases, events_per_purchase))
        return asyncio.run(_on_fresh_postgres(purchases, events_per_purchase))


async def _on_fresh_postgres(purchases: int, events_per_purchase: int) -> dict[str, Any]:
    name = f"colonnade_bench_relay_{uuid.uuid4().hex[:10]}"
    await admin_execute(f'CREATE DATABASE "{name}"')
    try:
        url = dsn_of(name).replace("postgresql://", "postgresql+asyncpg://", 1)
        return await _drain(url, purchases, events_per_purchase)
    finally:
        await admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _drain(url: str, purchases: int, events_per_purchase: int) -> dict[str, Any]:
    from sqlalchemy import func, select, table

    from colonnade.app import assemble
    from colonnade.kernel.db import Database
    from colonnade.kernel.settings import Settings
    from colonnade.migrations import upgrade
    from colonnade.modules import MODULES

    migrating = Database(url)
    await upgrade(migrating, MODULES)
    await migrating.dispose()
    shop = assemble(Settings(database_url=url, secret_key="bench-relay-" + "x" * 32))
    try:
        await shop.keyring.load()
        await _fill(shop, purchases, events_per_purchase)
        events = await shop.relay.pending()
        with _counting_statements(shop.db) as statements:
            started = time.perf_counter()
            while await shop.relay.pending():
                await shop.relay.publish_due()
            seconds = time.perf_counter() - started
        async with shop.db.reading() as conn:
            # Read by name: the bench only counts what the consumer wrote.
            confirmations = await conn.scalar(
                select(func.count()).select_from(table("notifications_messages"))
            )
        return {
            "events": events,
            "seconds": seconds,
            "statements": len(statements),
            "confirmations": int(confirmations or 0),
        }
    finally:
        await shop.db.dispose()


async def _fill(shop: Any, purchases: int, events_per_purchase: int) -> None:
    """Each purchase: its order placed (OrderPlaced), its other events, its order paid
    (OrderPaid), in the order a checkout records them."""
    from colonnade.kernel.money import Money
    from colonnade.modules.orders.service import NewOrder, OrderLine

    usd = "USD"
    others = _other_events(events_per_purchase - 2)
    for n in range(purchases):
        line = OrderLine(
            f"SKU-{n % 50}",
            f"Coffee no. {n % 50}",
            2,
            Money(1250, usd),
            Money(2500, usd),
            Money(0, usd),
        )
        placed = await shop.orders.place(
            NewOrder(
                checkout_id=f"bench-{uuid.uuid4().hex}",
                email=f"buyer{n}@example.com",
                market="US",
                currency=usd,
                tax_inclusive=False,
                lines=[line],
                shipping=Money(500, usd),
                shipping_address={"name": "Ada", "line1": "1 Row", "country": "US"},
            )
        )
        async with shop.db.transaction() as uow:
            for each in others:
                uow.record(each(order_id=placed.order.id))
            await uow.commit()
        await shop.orders.mark_paid(placed.order.id, placed.order.total)


def _other_events(count: int) -> list[Any]:
    """Events a purchase records besides its order's, of the types a checkout records; no
    in-process consumer takes them, so they cost the relay its share of claim and mark."""
    from colonnade.kernel.events import Event

    @dataclass(frozen=True)
    class PaymentCaptured(Event):
        event_type: ClassVar[str] = "payments.PaymentCaptured"
        order_id: str

    @dataclass(frozen=True)
    class StockCommitted(Event):
        event_type: ClassVar[str] = "inventory.StockCommitted"
        order_id: str

    @dataclass(frozen=True)
    class CheckoutCompleted(Event):
        event_type: ClassVar[str] = "checkout.CheckoutCompleted"
        order_id: str

    kinds = [PaymentCaptured, StockCommitted, CheckoutCompleted]
    return [kinds[n % len(kinds)] for n in range(count)]


@contextmanager
def _counting_statements(db: Any) -> Iterator[list[str]]:
    from sqlalchemy import event

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


# --- the run: both versions on both databases --------------------------------------------


def _source_of(revision: str, into: Path) -> Path:
    """The `src` folder of `revision`, unpacked into `into`."""
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", revision, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _resolve(revision: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPOSITORY), "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _merge_base() -> str:
    return subprocess.run(
        ["git", "-C", str(REPOSITORY), "merge-base", "HEAD", "main"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _run_one(
    source: Path, code: str, database: str, purchases: int, events_per_purchase: int
) -> Figures:
    """One measurement in a fresh process whose `colonnade` is the one in `source`."""
    with tempfile.NamedTemporaryFile(suffix=".json") as answer:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.relay",
                "--measure-into",
                answer.name,
                "--databases",
                database,
                "--purchases",
                str(purchases),
                "--events-per-purchase",
                str(events_per_purchase),
            ],
            check=True,
            cwd=REPOSITORY,
            env={**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{REPOSITORY}"},
        )
        measured = json.loads(Path(answer.name).read_text())
    return Figures(database=database, code=code, purchases=purchases, **measured)


def _table(figures: list[Figures], baseline: str) -> Table:
    table = Table(title="Outbox relay: a filled outbox published through the in-process consumers")
    for name in (
        "database",
        "code",
        "purchases",
        "events",
        "seconds",
        "events/s",
        "vs baseline",
        "statements/event",
        "confirmations",
    ):
        table.add_column(name, justify="left" if name in ("database", "code") else "right")
    base_rate = {f.database: f.events_per_second for f in figures if f.code == baseline}
    for f in figures:
        base = base_rate.get(f.database)
        table.add_row(
            f.database,
            f.code,
            str(f.purchases),
            str(f.events),
            f"{f.seconds:.2f}",
            f"{f.events_per_second:,.0f}",
            "—" if base is None else f"{f.events_per_second / base:.1f}",
            f"{f.statements_per_event:.2f}",
            str(f.confirmations),
        )
    return table


def _write_json(figures: list[Figures], arguments: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"relay-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "relay",
                "at": stamp,
                "arguments": arguments,
                "cpus": os.cpu_count(),
                "figures": [
                    {
                        **asdict(f),
                        "events_per_second": f.events_per_second,
                        "statements_per_event": f.statements_per_event,
                    }
                    for f in figures
                ],
            },
            indent=2,
        )
    )
    return path


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--purchases", type=int, default=1000)
    parser.add_argument("--events-per-purchase", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 purchases, for a smoke run")
    parser.add_argument(
        "--databases", default=",".join(DATABASES), help="sqlite, postgresql or both"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="the commit to compare with (default: where this branch left main); 'none' to skip",
    )
    parser.add_argument("--measure-into", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    arguments = _arguments()
    if arguments.events_per_purchase < 2:
        raise SystemExit("a purchase has at least its OrderPlaced and OrderPaid")
    purchases = 200 if arguments.quick else arguments.purchases
    databases = [d.strip() for d in arguments.databases.split(",") if d.strip()]
    if arguments.measure_into:
        [database] = databases
        measured = _measure(database, purchases, arguments.events_per_purchase)
        Path(arguments.measure_into).write_text(json.dumps(measured))
        return
    console.print(f"PostgreSQL: {POSTGRES_ADMIN_DSN.rsplit('@', 1)[-1]}")
    head = _resolve("HEAD")
    figures: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="colonnade-bench-baseline-") as folder:
        versions = [(REPOSITORY / "src", f"{head} (this)")]
        baseline = "" if arguments.baseline == "none" else arguments.baseline or _merge_base()
        if baseline:
            baseline = _resolve(baseline)
            versions.insert(0, (_source_of(baseline, Path(folder)), baseline))
        for database in databases:
            for source, code in versions:
                console.print(f"{database}: {code}, {purchases} purchases ...")
                figures.append(
                    _run_one(source, code, database, purchases, arguments.events_per_purchase)
                )
    console.print(_table(figures, baseline))
    written = _write_json(
        figures,
        {
            "purchases": purchases,
            "events_per_purchase": arguments.events_per_purchase,
            "databases": databases,
            "baseline": baseline or None,
            "head": head,
        },
    )
    console.print(f"written to {written.relative_to(REPOSITORY)}")


if __name__ == "__main__":
    main()
