"""What promotions tell the rest of the shop. Payloads hold JSON-ready values only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class PromotionChanged(Event):
    """A promotion was made or changed (ended early, say)."""

    event_type: ClassVar[str] = "promotions.PromotionChanged"

    promotion_id: str
    code: str
