"""The dead letters for operators over HTTP: what waits to be replayed, and why it failed.
Replaying stays a deliberate act at the command line (`colonnade dead-letters replay`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from colonnade.kernel.dead_letters import DeadLetter, DeadLetters
from colonnade.web.auth import requires

SCOPE = "ops:read"


class DeadLetterOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    consumers: str | None
    last_error: str | None
    attempts: int
    occurred_at: datetime
    parked_at: datetime

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterOut:
        return cls(**vars(letter))


class DeadLettersOut(BaseModel):
    parked: int
    dead_letters: list[DeadLetterOut]


def router(dead_letters: DeadLetters) -> APIRouter:
    routes = APIRouter(tags=["operations"])

    @routes.get(
        "/admin/dead-letters",
        dependencies=[Depends(requires(SCOPE))],
        response_model=DeadLettersOut,
    )
    async def list_dead_letters(limit: int = Query(default=100, ge=1, le=1000)) -> DeadLettersOut:
        """Events the outbox gave up delivering, oldest first, with how many are parked."""
        letters = await dead_letters.parked(limit)
        return DeadLettersOut(
            parked=await dead_letters.waiting(),
            dead_letters=[DeadLetterOut.of(letter) for letter in letters],
        )

    return routes
