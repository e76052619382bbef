"""Field encryption on both databases: values carry their key, survive a new key, resist swaps."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, Text, insert, select

from colonnade.kernel.clock import SystemClock
from colonnade.kernel.crypto import (
    Keyring,
    KeyringError,
    count_stale,
    decode_master_key,
    new_master_key,
    reencrypt,
)
from colonnade.kernel.db import Database

CONTEXT = "test.people.email"


async def test_a_value_opens_only_in_its_own_context_and_hides_its_plaintext(
    keyring: Keyring,
) -> None:
    token = keyring.encrypt("ada@example.com", context=CONTEXT)

    assert "ada" not in token
    assert token.startswith(f"enc1:{keyring.active_key_id}:")
    assert await keyring.decrypt(token, context=CONTEXT) == "ada@example.com"
    with pytest.raises(KeyringError, match="does not open"):
        await keyring.decrypt(token, context="test.people.name")


async def test_the_same_value_encrypts_differently_each_time_but_indexes_the_same(
    keyring: Keyring,
) -> None:
    first = keyring.encrypt("ada@example.com", context=CONTEXT)
    second = keyring.encrypt("ada@example.com", context=CONTEXT)

    assert first != second
    assert keyring.blind_index("ada@example.com", context="email") == keyring.blind_index(
        "ada@example.com", context="email"
    )
    assert keyring.blind_index("ada@example.com", context="email") != keyring.blind_index(
        "bob@example.com", context="email"
    )


async def test_another_master_key_cannot_open_the_data_keys(db: Database, keyring: Keyring) -> None:
    stranger = Keyring(db, decode_master_key(new_master_key()), clock=SystemClock())

    with pytest.raises(KeyringError, match="does not open with this master key"):
        await stranger.load()


async def test_values_under_an_older_key_still_open_after_a_new_key(keyring: Keyring) -> None:
    old = keyring.encrypt("ada@example.com", context=CONTEXT)
    await keyring.add_key()
    new = keyring.encrypt("ada@example.com", context=CONTEXT)

    assert old.split(":")[1] != new.split(":")[1]
    assert await keyring.decrypt(old, context=CONTEXT) == "ada@example.com"
    assert await keyring.decrypt(new, context=CONTEXT) == "ada@example.com"


async def test_reencrypt_moves_every_row_to_the_newest_key_and_resumes(
    db: Database, keyring: Keyring
) -> None:
    people = Table(
        "test_people",
        MetaData(),
        Column("id", String(10), primary_key=True),
        Column("email", Text, nullable=True),
    )
    async with db.transaction() as uow:
        await uow.connection.run_sync(people.metadata.create_all)
        await uow.execute(
            insert(people),
            [
                {"id": f"p{i:02}", "email": keyring.encrypt(f"p{i}@example.com", context=CONTEXT)}
                for i in range(25)
            ]
            + [{"id": "empty", "email": None}],
        )
        await uow.commit()
    await keyring.add_key()
    assert await count_stale(db, keyring, people, ["email"]) == 25

    def interrupt(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await reencrypt(
            db, keyring, people, [("email", CONTEXT)], batch_size=10, progress=interrupt
        )
    assert await count_stale(db, keyring, people, ["email"]) == 15

    seen: list[int] = []
    assert await reencrypt(db, keyring, people, [("email", CONTEXT)], progress=seen.append) == 15
    assert sum(seen) == 15
    async with db.reading() as conn:
        rows = (await conn.execute(select(people).order_by(people.c.id))).all()
    for row in rows:
        if row.id == "empty":
            assert row.email is None
        else:
            assert row.email.split(":")[1] == keyring.active_key_id
            assert (
                await keyring.decrypt(row.email, context=CONTEXT)
                == f"p{int(row.id[1:])}@example.com"
            )


async def test_a_key_added_by_another_process_is_learned_on_first_sight(db: Database) -> None:
    master = decode_master_key(new_master_key())
    here = Keyring(db, master, clock=SystemClock())
    there = Keyring(db, master, clock=SystemClock())
    await here.load()
    await there.load()

    await there.add_key()
    token = there.encrypt("ada@example.com", context=CONTEXT)

    assert await here.decrypt(token, context=CONTEXT) == "ada@example.com"


async def test_a_running_process_encrypts_under_a_rotated_key_once_it_refreshes(
    db: Database,
) -> None:
    master = decode_master_key(new_master_key())
    server = Keyring(db, master, clock=SystemClock())
    rotation = Keyring(db, master, clock=SystemClock())
    await server.load()
    await rotation.load()

    newest = await rotation.add_key()

    assert server.active_key_id != newest
    assert await server.refresh() == 1
    assert server.active_key_id == newest
    assert server.encrypt("ada@example.com", context=CONTEXT).startswith(f"enc1:{newest}:")
