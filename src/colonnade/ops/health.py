"""Health: is the process alive (`/health/live`), and can it serve (`/health/ready`)?

Readiness checks each dependency on its own: the database, the event bus, the outbox relay.
The public port says only whether the process is ready; which check fails, and how (a relay's
lag, events waiting), is for operators: on the metrics port's `/health/details` and in the log.
A probe is hit every few seconds, so each check is one cheap statement under a short time limit.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import make_url

from colonnade.kernel.bus import EventBus
from colonnade.kernel.db import Database
from colonnade.kernel.outbox import OutboxRelay
from colonnade.web.problems import problem_response

log = structlog.get_logger(__name__)

OK = "ok"


class DatabaseFileMoved(Exception):
    """The SQLite file at the configured path is not the one the shop has open (deleted,
    moved or replaced): what the shop writes now would be lost on its next start."""


class Readiness:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        relay: OutboxRelay | None,
        *,
        timeout_seconds: float,
        relay_stuck_seconds: float,
    ) -> None:
        self._db = db
        self._bus = bus
        self._relay = relay
        self._timeout = timeout_seconds
        self._stuck_after = relay_stuck_seconds
        self._sqlite_path = _sqlite_file(db)
        self._sqlite_identity: tuple[int, int] | None = None

    async def checks(self) -> dict[str, str]:
        """Each dependency's state: "ok", or what is wrong with it. A process whose relay
        runs elsewhere (`relay` None) does not answer for it."""
        database = await self._database()
        states = {"database": database, "bus": await self._bus_state()}
        if self._relay is not None:
            states["outbox_relay"] = await self._relay_state(
                self._relay, database_answers=database == OK
            )
        return states

    async def _database(self) -> str:
        try:
            async with asyncio.timeout(self._timeout), self._db.reading() as conn:
                await conn.execute(text("SELECT 1"))
            self._check_sqlite_file()
        except TimeoutError:
            return f"failing: no answer within {self._timeout:g} s"
        except Exception as error:  # noqa: BLE001 - whatever fails, the database is failing
            return f"failing: {type(error).__name__}"
        return OK

    def _check_sqlite_file(self) -> None:
        """A SQLite connection keeps working on a file that was deleted or replaced, so the
        file at the path must still be the one first seen there."""
        if self._sqlite_path is None:
            return
        try:
            found = os.stat(self._sqlite_path)
        except FileNotFoundError:
            raise DatabaseFileMoved(f"{self._sqlite_path} is gone") from None
        identity = (found.st_dev, found.st_ino)
        if self._sqlite_identity is None:
            self._sqlite_identity = identity
        elif identity != self._sqlite_identity:
            raise DatabaseFileMoved(f"{self._sqlite_path} was replaced")

    async def _bus_state(self) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._bus.health()
        except TimeoutError:
            return f"failing: no answer within {self._timeout:g} s"
        except Exception as error:  # noqa: BLE001 - whatever fails, the bus is failing
            return f"failing: {type(error).__name__}"

    async def _relay_state(self, relay: OutboxRelay, *, database_answers: bool) -> str:
        if not relay.running:
            return "stopped"
        idle = relay.idle_seconds()
        # Without the database the relay cannot move; the database check says so already.
        if idle < self._stuck_after or not database_answers:
            return OK
        try:
            async with asyncio.timeout(self._timeout):
                waiting = await relay.pending()
        except Exception:  # noqa: BLE001 - no count: judge by the idle time alone
            waiting = None
        if waiting == 0:
            return OK
        return f"stuck: no progress for {idle:.0f} s while {waiting or 'some'} events wait"


def _sqlite_file(db: Database) -> Path | None:
    if not db.is_sqlite:
        return None
    name = make_url(db.url).database
    if not name or name == ":memory:":
        return None
    return Path(name).expanduser().resolve()


def router(readiness: Readiness) -> APIRouter:
    routes = APIRouter(tags=["health"])

    @routes.get("/health/live")
    async def live() -> dict[str, str]:
        """The process answers."""
        return {"status": "live"}

    @routes.get("/health/ready", responses={503: {"description": "not ready"}})
    async def ready() -> Response:
        """The process can serve: its database answers, its event bus takes events and its
        outbox relay publishes them. Which one fails is logged and shown on the metrics port."""
        checks = await readiness.checks()
        if all(state == OK for state in checks.values()):
            return JSONResponse({"status": "ready"})
        log.warning("health.not_ready", **checks)
        return problem_response(
            {
                "type": "https://colonnade.dev/problems/not-ready",
                "title": "Not ready",
                "status": 503,
                "detail": "not ready",
                "code": "not_ready",
            }
        )

    return routes


def details(checks: dict[str, str]) -> Response:
    """Readiness with each check's state, for operators: 503 names what fails."""
    if all(state == OK for state in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    failing = ", ".join(f"{name} {state}" for name, state in checks.items() if state != OK)
    return problem_response(
        {
            "type": "https://colonnade.dev/problems/not-ready",
            "title": "Not ready",
            "status": 503,
            "detail": f"not ready: {failing}",
            "code": "not_ready",
            "checks": checks,
        }
    )
