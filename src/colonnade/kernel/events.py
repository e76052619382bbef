"""Events as data: small frozen dataclasses, carried between modules in envelopes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from colonnade.kernel.ids import new_id


@dataclass(frozen=True)
class Event:
    """Base of every published event. Fields hold JSON-ready values only."""

    event_type: ClassVar[str]

    def payload(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Envelope:
    """An event on its way: what the outbox stores and the bus carries."""

    event_type: str
    payload: dict[str, Any]
    occurred_at: datetime
    event_id: str = field(default_factory=new_id)
    headers: dict[str, str] = field(default_factory=dict)

    def open(self, kind: type[E]) -> E:
        """The payload as its event type."""
        return kind(**self.payload)
