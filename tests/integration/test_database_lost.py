"""A database connection that dies under a request (a failover, a restarted server, a cut
connection) on PostgreSQL: the request is answered 503 `database_unavailable` with a
Retry-After, never a 500, and the next one is served on a new connection."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest

from colonnade.kernel.settings import Settings
from tests.conftest import POSTGRES_ADMIN_DSN, PostgresServer
from tests.integration.storefront import SECRET, client, started


async def _cut(database: str) -> int:
    """Ends every connection to `database` as an operator or a failover would."""
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        cut: int = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        return cut
    finally:
        await admin.close()


@pytest.fixture
def dsn(postgres: PostgresServer) -> str:
    """A database of this test's own: cutting its connections touches no other test's."""
    return postgres.create_database()


async def test_a_request_whose_connection_was_cut_is_told_to_repeat_it(dsn: str) -> None:
    database = dsn.rsplit("/", 1)[1]
    settings = Settings(
        database_url=dsn.replace("postgresql://", "postgresql+asyncpg://", 1), secret_key=SECRET
    )
    async with started(settings, us_tax=Decimal("0.1")) as app, client(app) as http:
        answers = []
        # The shop's own jobs may meet a cut connection first (and the pool then replaces
        # it before the request comes): a few cuts make sure a request meets one.
        for _ in range(5):
            made = await http.post("/store/carts", json={"market": "US"})
            assert made.status_code == 201, made.text
            assert await _cut(database) >= 1
            answer = await http.post("/store/carts", json={"market": "US"})
            answers.append(answer)
            if answer.status_code == 503:
                break

        assert {a.status_code for a in answers} <= {201, 503}
        lost = answers[-1]
        assert (lost.status_code, lost.json()["code"], lost.headers["Retry-After"]) == (
            503,
            "database_unavailable",
            "1",
        )
        again = await http.post("/store/carts", json={"market": "US"})
        assert again.status_code == 201, again.text
