"""What the cart tells the rest of the shop. Payloads hold JSON-ready values only, and few."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class CartUpdated(Event):
    """A cart's lines changed; `lines` is the whole new set, so consumers need no history."""

    event_type: ClassVar[str] = "cart.CartUpdated"

    cart_id: str
    market: str
    # One {"sku", "quantity"} per line, in the order they were added.
    lines: list[dict[str, str | int]]
    # When (ISO 8601, the shop's clock); None in events written before it was.
    updated_at: str | None = None
    # True when this change gave the empty cart its lines (the cart started); None in events
    # written before it was told.
    started: bool | None = None


@dataclass(frozen=True)
class CartExpired(Event):
    """A cart sat idle past its time and will take no more lines (an abandoned cart)."""

    event_type: ClassVar[str] = "cart.CartExpired"

    cart_id: str
    market: str
