"""The audit log on both databases: a hash chain the database keeps append-only, which
`colonnade audit verify` walks to find any row changed, removed or cut off behind its back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from colonnade.cli import cli
from colonnade.kernel.clock import SettableClock
from colonnade.kernel.crypto import Keyring, decode_master_key, new_master_key
from colonnade.kernel.db import Database
from colonnade.modules.compliance.domain import canonical_json
from colonnade.modules.compliance.service import PAYLOAD_CONTEXT, AuditLog, AuditRecord

START = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)
SQLITE_TRIGGERS = (
    "compliance_audit_log_no_update",
    "compliance_audit_log_no_delete",
    "compliance_audit_head_forward",
    "compliance_audit_head_no_delete",
)


def staff_change(n: int = 1, actor: str = "staff-1") -> AuditRecord:
    return AuditRecord(
        actor_kind="staff",
        actor_id=actor,
        client_address="10.0.0.7",
        action="PUT /admin/inventory/{sku}",
        target={"sku": f"MUG-{n}"},
        status=200,
        before={"on_hand": n},
        after={"on_hand": n + 1},
    )


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
def audit(db: Database, keyring: Keyring, clock: SettableClock) -> AuditLog:
    return AuditLog(db, keyring=keyring, clock=clock)


async def append_many(audit: AuditLog, clock: SettableClock, count: int) -> None:
    for n in range(1, count + 1):
        await audit.append(staff_change(n))
        clock.advance(timedelta(seconds=1))


async def write(db: Database, statement: str) -> None:
    async with db.transaction() as uow:
        await uow.execute(text(statement))
        await uow.commit()


async def tamper(db: Database, statement: str, parameters: dict[str, object] | None = None) -> None:
    """What someone with write access to the database can do: switch the guards off, write."""
    async with db.transaction() as uow:
        if db.is_sqlite:
            for trigger in SQLITE_TRIGGERS:
                await uow.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
        else:
            await uow.execute(text("SET LOCAL session_replication_role = replica"))
        await uow.execute(text(statement), parameters or {})
        await uow.commit()


async def test_appended_rows_verify_and_read_back_newest_first_with_payloads_opened(
    audit: AuditLog, clock: SettableClock
) -> None:
    await append_many(audit, clock, 3)
    await audit.append(staff_change(9, actor="staff-2"))

    verdict = await audit.verify()
    page = await audit.entries(limit=2)
    rest = await audit.entries(limit=2, before=page.next_before)

    assert (verdict.intact, verdict.rows, verdict.problem) == (True, 4, None)
    assert [e.seq for e in page.entries] == [4, 3]
    assert [e.seq for e in rest.entries] == [2, 1]
    assert rest.next_before is None
    first = rest.entries[-1]
    assert (first.actor_id, first.action, first.target) == (
        "staff-1",
        "PUT /admin/inventory/{sku}",
        {"sku": "MUG-1"},
    )
    assert (first.before, first.after, first.client_address) == (
        {"on_hand": 1},
        {"on_hand": 2},
        "10.0.0.7",
    )
    by_actor = await audit.entries(actor="staff-2")
    assert [e.seq for e in by_actor.entries] == [4]
    since = await audit.entries(since=START + timedelta(seconds=2))
    assert [e.seq for e in since.entries] == [4, 3]


async def test_payloads_are_stored_encrypted(audit: AuditLog, db: Database) -> None:
    await audit.append(staff_change(41))

    async with db.reading() as conn:
        stored = (await conn.execute(text("SELECT payload FROM compliance_audit_log"))).scalar()

    assert stored is not None
    assert stored.startswith("enc1:")
    assert "on_hand" not in stored


async def test_the_database_refuses_to_delete_or_rewrite_audit_rows(
    audit: AuditLog, db: Database, clock: SettableClock
) -> None:
    await append_many(audit, clock, 2)
    refused = [
        "DELETE FROM compliance_audit_log WHERE seq = 2",
        "UPDATE compliance_audit_log SET status = 500 WHERE seq = 1",
        "UPDATE compliance_audit_log SET actor_id = 'someone-else' WHERE seq = 1",
        "UPDATE compliance_audit_log SET payload = NULL WHERE seq = 1",
        "UPDATE compliance_audit_log SET salt = 'ab' WHERE seq = 1",
        "DELETE FROM compliance_audit_head",
        "UPDATE compliance_audit_head SET last_seq = 1",
    ]
    for statement in refused:
        with pytest.raises(DBAPIError):
            await write(db, statement)

    assert (await audit.verify()).intact
    assert [e.status for e in (await audit.entries()).entries] == [200, 200]


async def test_clearing_a_payload_with_its_salt_is_allowed_and_the_chain_still_verifies(
    audit: AuditLog, db: Database, clock: SettableClock
) -> None:
    await append_many(audit, clock, 3)

    await write(db, "UPDATE compliance_audit_log SET payload = NULL, salt = NULL WHERE seq = 2")

    assert (await audit.verify()).intact
    erased = (await audit.entries()).entries[1]
    assert (erased.seq, erased.erased, erased.before, erased.after) == (2, True, None, None)


async def test_payloads_reencrypt_under_a_new_key_and_the_chain_still_verifies(
    audit: AuditLog, keyring: Keyring, clock: SettableClock
) -> None:
    await append_many(audit, clock, 3)
    await keyring.add_key()

    assert await audit.stale_rows() == 3
    assert await audit.reencrypt() == 3
    assert await audit.stale_rows() == 0
    assert (await audit.verify()).intact
    assert (await audit.entries()).entries[0].after == {"on_hand": 4}


async def test_concurrent_appends_never_fork_the_chain(
    database_url: str, keyring: Keyring, db: Database
) -> None:
    # Two engines: appends from two processes, not only two tasks of one.
    other = Database(database_url)
    try:
        logs = [
            AuditLog(db, keyring=keyring, clock=SettableClock(START)),
            AuditLog(other, keyring=keyring, clock=SettableClock(START)),
        ]
        seqs = await asyncio.gather(*(logs[n % 2].append(staff_change(n)) for n in range(60)))
    finally:
        await other.dispose()

    verdict = await logs[0].verify(batch_size=7)
    assert sorted(seqs) == list(range(1, 61))
    assert (verdict.intact, verdict.rows) == (True, 60)


@pytest.mark.parametrize(
    ("attack", "problem"),
    [
        ("UPDATE compliance_audit_log SET status = 404 WHERE seq = 3", "row 3 was changed"),
        (
            "UPDATE compliance_audit_log SET client_address = '10.9.9.9' WHERE seq = 2",
            "row 2 was changed",
        ),
        ("DELETE FROM compliance_audit_log WHERE seq = 3", "row 3 is missing"),
        (
            "DELETE FROM compliance_audit_log WHERE seq >= 4",
            "rows 4 to 5 are missing (the log ended at row 5)",
        ),
        (
            "UPDATE compliance_audit_log SET payload = NULL, salt = NULL, "
            "payload_digest = '" + "0" * 64 + "' WHERE seq = 1",
            "row 1 was changed",
        ),
    ],
)
async def test_verification_names_the_first_changed_or_missing_row(
    audit: AuditLog, db: Database, clock: SettableClock, attack: str, problem: str
) -> None:
    await append_many(audit, clock, 5)

    await tamper(db, attack)
    verdict = await audit.verify()

    assert (verdict.intact, verdict.problem) == (False, problem)


async def test_a_payload_swapped_for_another_is_found(
    audit: AuditLog, db: Database, keyring: Keyring, clock: SettableClock
) -> None:
    await append_many(audit, clock, 3)
    forged = keyring.encrypt(
        canonical_json({"before": {"on_hand": 2}, "after": {"on_hand": 0}}), context=PAYLOAD_CONTEXT
    )

    await tamper(db, "UPDATE compliance_audit_log SET payload = :p WHERE seq = 2", {"p": forged})
    verdict = await audit.verify()

    assert (verdict.intact, verdict.problem) == (False, "row 2 was changed (its payload)")


def test_the_audit_verify_command_says_intact_or_names_the_broken_row(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = new_master_key()
    monkeypatch.setenv("COLONNADE_DATABASE_URL", database_url)
    monkeypatch.setenv("COLONNADE_ENCRYPTION_KEY", master)

    async def with_log(work: str) -> None:
        db = Database(database_url)
        try:
            ring = Keyring(db, decode_master_key(master), clock=SettableClock(START))
            await ring.load()
            if work == "append":
                await append_many(
                    AuditLog(db, keyring=ring, clock=SettableClock(START)), SettableClock(START), 4
                )
            else:
                await tamper(db, "UPDATE compliance_audit_log SET status = 201 WHERE seq = 2")
        finally:
            await db.dispose()

    asyncio.run(with_log("append"))
    runner = CliRunner()
    intact = runner.invoke(cli, ["audit", "verify"])
    asyncio.run(with_log("tamper"))
    broken = runner.invoke(cli, ["audit", "verify"])

    assert intact.exit_code == 0, intact.output
    assert "intact" in intact.output
    assert "4 rows" in intact.output
    assert broken.exit_code == 1, broken.output
    assert "row 2 was changed" in broken.output
