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
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    """`value` as JSON-ready data. What `dataclasses.asdict` does, without deep-copying
    every leaf: a payload is built for each event the shop records, many per purchase."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


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
