"""A shop upgraded past the operations page: its existing admins may watch it at once."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from colonnade.kernel.db import Database
from colonnade.migrations import alembic_config, upgrade
from colonnade.modules import MODULES
from colonnade.modules.identity.schema import staff

BEFORE_OPS = sorted({"catalog:write", "orders:read", "staff:write"})


async def step_identity_to(db: Database, revision: str) -> None:
    config = alembic_config(MODULES)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with db.transaction() as uow:
        await uow.connection.run_sync(run)
        await uow.commit()


async def test_admins_made_before_the_operations_page_are_given_its_scope(db: Database) -> None:
    await step_identity_to(db, "identity_0002")
    async with db.transaction() as uow:
        for name, roles in (("Ada", ["admin"]), ("Sam", ["support"])):
            await uow.execute(
                insert(staff).values(
                    id=f"staff-{name}",
                    email=f"{name.lower()}@shop.example",
                    name=name,
                    password_hash="not used here",
                    scopes=BEFORE_OPS,
                    roles=roles,
                    disabled=False,
                    created_at=datetime.now(UTC),
                )
            )
        await uow.commit()

    await upgrade(db, MODULES)

    async with db.reading() as conn:
        rows = await conn.execute(select(staff.c.name, staff.c.scopes))
        scopes = {row.name: row.scopes for row in rows}
    assert sorted(scopes["Ada"]) == sorted([*BEFORE_OPS, "ops:read"])
    assert sorted(scopes["Sam"]) == BEFORE_OPS, "only admins hold every scope"
