"""Schema migrations: Alembic, one branch per module, each module's scripts in its own folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from colonnade.kernel.db import Database

_PACKAGE = Path(__file__).resolve().parent.parent
# Any constant will do: it only keeps two migrating processes from racing on PostgreSQL.
_ADVISORY_LOCK = 7_201_994


def version_locations(modules: Sequence[str]) -> list[str]:
    locations = [str(_PACKAGE / "kernel" / "migrations")]
    locations += [str(_PACKAGE / "modules" / name / "migrations") for name in modules]
    return locations


def alembic_config(modules: Sequence[str]) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(version_locations(modules)))
    return config


async def upgrade(db: Database, modules: Sequence[str]) -> None:
    """Bring the kernel's and the given modules' tables to their newest revision."""
    config = alembic_config(modules)

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")

    async with db.transaction() as uow:
        await uow.connection.run_sync(run)
        await uow.commit()
