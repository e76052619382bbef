"""Events the compliance module publishes. They carry ids only, never personal data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class CustomerDataErased(Event):
    """Every module holding data about the customer has forgotten who they were."""

    event_type: ClassVar[str] = "compliance.CustomerDataErased"

    customer_id: str
    erasure_id: str
