"""A batch's rows in one statement (kernel/bulk.py) and the hot path's own PostgreSQL
statements (UnitOfWork.fetch): the rows land, clashes are skipped, updates reach exactly the
rows they name, JSON survives the trip, and everything stays inside the unit of work's
transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from colonnade.kernel.bulk import insert_rows, update_rows
from colonnade.kernel.db import Database
from colonnade.kernel.schema import inbox, outbox
from tests.conftest import count_rows

AT = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _event(n: int) -> dict[str, object]:
    return {
        "event_id": f"evt-{n}",
        "event_type": "OrderPaid",
        "payload": {"order_id": f"o-{n}", "lines": [{"sku": "BEANS", "quantity": n}]},
        "headers": {"traceparent": "00-abc-def-01"},
        "occurred_at": AT,
        "next_attempt_at": AT,
        "attempts": 0,
    }


async def test_a_batch_of_rows_lands_whole_with_its_json_intact(db: Database) -> None:
    async with db.transaction() as uow:
        await insert_rows(uow, outbox, [_event(n) for n in range(1, 4)])
        await uow.commit()

    async with db.reading() as conn:
        rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).mappings().all()
    assert [r["event_id"] for r in rows] == ["evt-1", "evt-2", "evt-3"]
    assert rows[2]["payload"] == {"order_id": "o-3", "lines": [{"sku": "BEANS", "quantity": 3}]}
    assert rows[0]["headers"] == {"traceparent": "00-abc-def-01"}
    assert rows[0]["occurred_at"] == AT


async def test_rows_that_clash_are_skipped_and_only_the_new_ones_are_named(db: Database) -> None:
    def mark(event_id: str) -> dict[str, object]:
        return {"consumer": "notifications", "event_id": event_id, "processed_at": AT}

    async with db.transaction() as uow:
        await insert_rows(uow, inbox, [mark("evt-1")])
        await uow.commit()
    async with db.transaction() as uow:
        made = await insert_rows(
            uow,
            inbox,
            [mark("evt-1"), mark("evt-2"), mark("evt-3")],
            skip_conflicts_on=("consumer", "event_id"),
            returning="event_id",
        )
        await uow.commit()

    assert sorted(made) == ["evt-2", "evt-3"]
    assert await count_rows(db, "kernel_inbox") == 3


async def test_an_update_of_a_batch_sets_each_named_row_and_no_other(db: Database) -> None:
    async with db.transaction() as uow:
        ids = await insert_rows(uow, outbox, [_event(n) for n in range(1, 4)], returning="id")
        await uow.commit()
    later = datetime(2026, 11, 27, 9, 5, tzinfo=UTC)
    async with db.transaction() as uow:
        await update_rows(
            uow,
            outbox,
            [
                {"id": ids[2], "payload": {"order_id": "o-3", "lines": []}, "attempts": 2},
                {"id": ids[0], "payload": {"order_id": "o-1", "note": "ü"}, "attempts": 1},
            ],
        )
        await update_rows(uow, outbox, [{"id": ids[1], "published_at": later}])
        await uow.commit()

    async with db.reading() as conn:
        rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).mappings().all()
    assert [(r["attempts"], r["payload"]) for r in rows] == [
        (1, {"order_id": "o-1", "note": "ü"}),
        (0, {"order_id": "o-2", "lines": [{"sku": "BEANS", "quantity": 2}]}),
        (2, {"order_id": "o-3", "lines": []}),
    ]
    assert [r["published_at"] for r in rows] == [None, later, None]
    assert [r["event_id"] for r in rows] == ["evt-1", "evt-2", "evt-3"]


async def test_the_first_and_later_statements_roll_back_with_the_unit_of_work(
    db: Database,
) -> None:
    """The first statement of a unit of work opens its transaction; on PostgreSQL the later
    ones run straight on the driver. Both are undone when the unit of work is not committed."""
    async with db.transaction() as uow:
        await insert_rows(uow, outbox, [_event(1)])
        await insert_rows(uow, outbox, [_event(2), _event(3)])
        async with db.reading() as conn:
            # Not committed: no other connection sees the rows yet.
            assert (await conn.scalar(select(outbox.c.id).limit(1))) is None
    assert await count_rows(db, "kernel_outbox") == 0


async def test_a_statement_of_the_driver_runs_in_the_transaction(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("the driver's own statements are PostgreSQL's")
    async with db.transaction() as uow:
        first = await uow.fetch("SELECT txid_current()")
        again = await uow.fetch("SELECT txid_current()")
        await uow.commit()
    assert first[0][0] == again[0][0]
