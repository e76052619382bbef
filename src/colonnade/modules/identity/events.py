"""Events the identity module publishes. They carry ids only, never personal data."""

from __future__ import annotations

from dataclasses import dataclass

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class StaffCreated(Event):
    event_type = "identity.StaffCreated"
    staff_id: str
    scopes: list[str]


@dataclass(frozen=True)
class CustomerRegistered(Event):
    event_type = "identity.CustomerRegistered"
    customer_id: str


@dataclass(frozen=True)
class CustomerErased(Event):
    event_type = "identity.CustomerErased"
    customer_id: str
