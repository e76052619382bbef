"""A shop upgraded while facts wait in the table a row each: they move into staged batches,
and the next sealing writes every one of them, once, to the warehouse's files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from colonnade.kernel.db import Database
from colonnade.migrations import alembic_config, upgrade
from colonnade.modules import MODULES
from colonnade.modules.analytics.service import AnalyticsService

AT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
# The table as it was before this revision.
ROW_PER_FACT = sa.table(
    "analytics_staged_facts",
    *(
        sa.column(name, sa.String)
        for name in ("id", "kind", "order_id", "market", "currency", "sku", "batch")
    ),
    sa.column("occurred_at", sa.DateTime),
    sa.column("amount", sa.BigInteger),
    sa.column("units", sa.Integer),
)


async def migrate(db: Database, step: str, revision: str) -> None:
    config = alembic_config(MODULES)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        getattr(command, step)(config, revision)

    async with db.transaction() as uow:
        await uow.connection.run_sync(run)
        await uow.commit()


def fact(kind: str, order: str, amount: int, batch: str | None) -> dict[str, object]:
    return {
        "id": f"{kind}:{order}",
        "kind": kind,
        "occurred_at": AT.replace(tzinfo=None),
        "order_id": order,
        "market": "US",
        "currency": "USD",
        "amount": amount,
        "units": 0,
        "sku": "",
        "batch": batch,
    }


async def test_facts_waiting_a_row_each_are_sealed_after_the_upgrade(
    db: Database, tmp_path: Path
) -> None:
    await migrate(db, "downgrade", "analytics_0003")
    waiting = [
        fact("order_placed", "o-1", 2500, None),
        fact("order_paid", "o-1", 2500, None),
        # Claimed by a sealing that was cut short before the upgrade.
        fact("order_placed", "o-2", 700, "cut-short"),
    ]
    async with db.transaction() as uow:
        await uow.execute(sa.insert(ROW_PER_FACT), waiting)
        await uow.commit()

    await upgrade(db, MODULES)
    analytics = AnalyticsService(db, tmp_path / "warehouse")
    figures = await analytics.sales(AT.replace(hour=0), AT.replace(hour=23))
    sealed = await analytics.seal()

    assert figures.orders == 1
    assert [money.as_dict() for money in figures.revenue] == [{"amount": 2500, "currency": "USD"}]
    assert sealed == 3
    files = sorted((tmp_path / "warehouse" / "facts").glob("day=2026-11-27/*.parquet"))
    written = sorted(
        (row["id"], row["amount"]) for path in files for row in pq.read_table(path).to_pylist()
    )
    assert written == [
        ("order_paid:o-1", 2500),
        ("order_placed:o-1", 2500),
        ("order_placed:o-2", 700),
    ]
    assert "part-cut-short.parquet" in [path.name for path in files]
    assert await analytics.seal() == 0
