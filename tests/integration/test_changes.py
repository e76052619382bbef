"""Every process hears of committed changes: the writer's own process at once, the others
from the outbox on their next poll, each event once, even when commits land out of id order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select

from colonnade.kernel.changes import Changes
from colonnade.kernel.db import Database
from colonnade.kernel.money import Money
from colonnade.kernel.schema import outbox
from colonnade.modules.pricing.service import PricingService

PRICE_CHANGED = "pricing.PriceChanged"


class Heard:
    def __init__(self, changes: Changes) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        changes.listen(PRICE_CHANGED, lambda kind, payload: self.events.append((kind, payload)))

    @property
    def skus(self) -> list[str]:
        return [payload["sku"] for _, payload in self.events]


async def test_the_writing_process_hears_at_once_and_another_on_its_next_poll(
    db: Database,
) -> None:
    here, there = Changes(db), Changes(db)
    heard_here, heard_there = Heard(here), Heard(there)
    await here.catch_up()
    await there.catch_up()
    pricing = PricingService(db, base_currency="USD", changes=here)

    await pricing.set_prices("KENYA-1", [Money(900, "USD")])

    assert heard_here.skus == ["KENYA-1"]
    assert heard_there.skus == []
    await there.catch_up()
    await here.catch_up()
    assert heard_there.skus == ["KENYA-1"]
    assert heard_there.events[0][1]["prices"] == [{"amount": 900, "currency": "USD"}]
    await there.catch_up()
    assert (heard_here.skus, heard_there.skus) == (["KENYA-1"], ["KENYA-1"])


async def test_an_event_whose_commit_lands_after_a_later_one_is_still_heard(
    db: Database,
) -> None:
    there = Changes(db)
    heard = Heard(there)
    await there.catch_up()
    async with db.reading() as conn:
        newest = int(await conn.scalar(select(func.coalesce(func.max(outbox.c.id), 0))) or 0)

    # Ids are taken before commit: the second writer's row becomes visible first.
    await _outbox_row(db, newest + 2, "LATER-ID")
    await there.catch_up()
    await _outbox_row(db, newest + 1, "EARLIER-ID")
    await there.catch_up()
    await there.catch_up()

    assert heard.skus == ["LATER-ID", "EARLIER-ID"]


async def _outbox_row(db: Database, row_id: int, sku: str) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as uow:
        await uow.execute(
            insert(outbox).values(
                id=row_id,
                event_id=f"event-{row_id}",
                event_type=PRICE_CHANGED,
                payload={"sku": sku, "prices": []},
                headers={},
                occurred_at=now,
                next_attempt_at=now,
            )
        )
        await uow.commit()
