"""Events the identity module publishes."""

from __future__ import annotations

from dataclasses import dataclass

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class StaffCreated(Event):
    event_type = "identity.StaffCreated"
    staff_id: str
    scopes: list[str]
