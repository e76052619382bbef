"""The rehearsal's faults, each through the door a real failure would come by.

- **slow-provider** and **failing-provider** hold over a window: buyers checking out then pay
  with the test gateway's `tok_slow` (approved, late) or `tok_timeout` (never answered), so
  the shop meets a slow or failing card processor through its own payment path, retries,
  timeouts and circuit breaker included. They work against any shop on the test gateway.
- **kill-worker** sends SIGKILL to one worker process of a loopback `colonnade serve
  --workers N` (the server restarts it); requests in flight on it lose their connection.
- **cut-database** terminates every PostgreSQL backend of the shop's database
  (`pg_terminate_backend`), as a failover or a network cut would; the pools reconnect.

The two struck faults need the shop's machine, so the target check allows them on loopback
only.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from colonnade.rehearsal import machine
from colonnade.rehearsal.profile import Fault, Profile

TOKENS = {"slow-provider": "tok_slow", "failing-provider": "tok_timeout"}
APPROVES = "tok_visa"


@dataclass(frozen=True)
class Struck:
    """What a fault did, when."""

    kind: str
    at: float
    detail: str


def token_at(profile: Profile) -> Callable[[float], str]:
    """The card token a buyer pays with at each moment: the held provider fault's, else one
    that approves."""

    def token(moment: float) -> str:
        held = profile.held_faults_at(moment)
        return TOKENS[held[0].kind] if held else APPROVES

    return token


class Database:
    """A connection of the rehearsal's own to the shop's PostgreSQL: it names the shop's
    backends (whose CPU the rehearsal meters) and cuts them."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    @classmethod
    async def connect(cls, url: str) -> Database:
        # The shop's own URL names its driver; asyncpg takes the plain scheme.
        plain = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        return cls(await asyncpg.connect(plain, timeout=10))

    async def backends(self) -> list[int]:
        """The shop's backends now; none when the database does not answer (the reading of
        its CPU then skips an interval)."""
        try:
            rows = await self._connection.fetch(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()",
                timeout=5,
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            return []
        return [int(row["pid"]) for row in rows]

    async def cut(self) -> int:
        cut = await self._connection.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        return int(cut or 0)

    async def close(self) -> None:
        await self._connection.close()


def kill_worker(server_pid: int) -> str:
    workers = machine.workers(server_pid)
    if not workers:
        return "no worker to kill: the shop runs one process"
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    return f"killed worker {victim} of {len(workers)}"


async def strike(
    fault: Fault, at: float, server_pid: int | None, database: Database | None
) -> Struck:
    if fault.kind == "kill-worker":
        detail = kill_worker(server_pid) if server_pid else "no server process known"
    elif database is not None:
        detail = f"cut {await database.cut()} database connections"
    else:
        detail = "no database connection to cut"
    return Struck(fault.kind, at, detail)
