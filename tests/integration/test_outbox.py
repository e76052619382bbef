"""The outbox and inbox: events commit with their state, leave at least once, count once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from colonnade.kernel import outbox as outbox_module
from colonnade.kernel.bus import InProcessBus
from colonnade.kernel.db import Database
from colonnade.kernel.events import Envelope, Event
from colonnade.kernel.inbox import guard, once
from colonnade.kernel.outbox import OutboxRelay
from colonnade.kernel.schema import outbox
from colonnade.kernel.uow import UnitOfWork

notes = Table(
    "test_notes", MetaData(), Column("id", Integer, primary_key=True), Column("text", String(50))
)


@dataclass(frozen=True)
class NoteWritten(Event):
    event_type = "test.NoteWritten"
    text: str


@pytest.fixture
async def notes_db(db: Database) -> Database:
    async with db.transaction() as uow:
        await uow.connection.run_sync(lambda c: notes.create(c, checkfirst=True))
        await uow.commit()
    return db


async def write_note(db: Database, text: str, *, commit: bool) -> None:
    async with db.transaction() as uow:
        await uow.execute(insert(notes).values(text=text))
        uow.record(NoteWritten(text=text))
        if commit:
            await uow.commit()


async def outbox_rows(db: Database) -> list[dict]:
    async with db.reading() as conn:
        return [dict(r) for r in (await conn.execute(select(outbox))).mappings()]


async def test_an_event_is_stored_only_when_its_state_commits(notes_db: Database) -> None:
    await write_note(notes_db, "kept", commit=True)
    await write_note(notes_db, "rolled back", commit=False)
    rows = await outbox_rows(notes_db)
    assert [r["payload"] for r in rows] == [{"text": "kept"}]
    async with notes_db.reading() as conn:
        assert (await conn.execute(select(notes.c.text))).scalars().all() == ["kept"]


async def test_the_relay_delivers_each_committed_event_and_marks_it(notes_db: Database) -> None:
    bus = InProcessBus()
    seen: list[str] = []

    async def remember(envelope: Envelope) -> None:
        seen.append(envelope.open(NoteWritten).text)

    bus.subscribe(NoteWritten.event_type, "test-consumer", remember)
    relay = OutboxRelay(notes_db, bus)
    for text in ("a", "b", "c"):
        await write_note(notes_db, text, commit=True)
    assert await relay.pending() == 3
    assert await relay.publish_due() == 3
    assert seen == ["a", "b", "c"]
    assert await relay.pending() == 0
    assert await relay.publish_due() == 0


async def test_a_failed_delivery_stays_in_the_outbox_for_a_later_attempt(
    notes_db: Database,
) -> None:
    bus = InProcessBus()

    async def broken(_: Envelope) -> None:
        raise RuntimeError("mail server down")

    bus.subscribe(NoteWritten.event_type, "mailer", broken)
    relay = OutboxRelay(notes_db, bus)
    await write_note(notes_db, "x", commit=True)
    assert await relay.publish_due() == 0
    [row] = await outbox_rows(notes_db)
    assert row["published_at"] is None
    assert row["attempts"] == 1
    assert "mail server down" in row["last_error"]
    assert row["next_attempt_at"] > row["occurred_at"]
    # Not due yet: back-off keeps it from being retried at once.
    assert await relay.publish_due() == 0
    assert await relay.pending() == 1


async def test_the_inbox_applies_a_redelivered_event_once(notes_db: Database) -> None:
    applied: list[str] = []

    async def count_note(envelope: Envelope, uow: UnitOfWork) -> None:
        applied.append(envelope.event_id)
        await uow.execute(insert(notes).values(text="counted"))

    handler = guard(notes_db, "counter", count_note)
    envelope = Envelope(
        event_type=NoteWritten.event_type,
        payload={"text": "x"},
        occurred_at=datetime.now(UTC),
    )
    for _ in range(3):
        await handler(envelope)
    assert len(applied) == 1
    async with notes_db.reading() as conn:
        assert (await conn.execute(select(notes.c.text))).scalars().all() == ["counted"]


async def test_a_consumer_that_fails_midway_leaves_no_inbox_mark(notes_db: Database) -> None:
    attempts = 0

    async def flaky(envelope: Envelope, uow: UnitOfWork) -> None:
        nonlocal attempts
        attempts += 1
        await uow.execute(insert(notes).values(text=f"try {attempts}"))
        if attempts == 1:
            raise RuntimeError("crash after writing")

    handler = guard(notes_db, "flaky", flaky)
    envelope = Envelope(
        event_type=NoteWritten.event_type,
        payload={"text": "x"},
        occurred_at=datetime.now(UTC),
    )
    with pytest.raises(RuntimeError):
        await handler(envelope)
    await handler(envelope)
    await handler(envelope)
    assert attempts == 2
    async with notes_db.reading() as conn:
        assert (await conn.execute(select(notes.c.text))).scalars().all() == ["try 2"]


async def test_an_idempotent_handler_is_marked_only_after_it_succeeded(notes_db: Database) -> None:
    calls = 0

    async def settle(_: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("payment provider down")

    handler = once(notes_db, "settler", settle)
    envelope = Envelope(
        event_type=NoteWritten.event_type, payload={"text": "x"}, occurred_at=datetime.now(UTC)
    )
    with pytest.raises(RuntimeError):
        await handler(envelope)
    await handler(envelope)
    await handler(envelope)
    assert calls == 2


async def test_the_backlog_gauge_follows_a_long_run_of_full_batches(
    notes_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load the relay goes from full batch to full batch without pausing; the
    backlog it reports must still fall while it works, not only once it catches up."""
    monkeypatch.setattr(outbox_module, "BACKLOG_REPORT_SECONDS", 0.0)
    for n in range(8):
        await write_note(notes_db, f"note {n}", commit=True)
    seen: list[float | None] = []

    async def look(_: Envelope) -> None:
        seen.append(REGISTRY.get_sample_value("colonnade_outbox_backlog"))

    bus = InProcessBus()
    bus.subscribe(NoteWritten.event_type, "test.watcher", look)
    relay = OutboxRelay(notes_db, bus, batch_size=2)
    await relay.report_backlog()

    assert await relay.publish_due() == 8
    # One look per event, two events a batch: the gauge moved between batches.
    assert seen[::2] == [8.0, 6.0, 4.0, 2.0]
