"""What inventory tells the rest of the shop. Payloads hold JSON-ready values only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class StockReserved(Event):
    event_type: ClassVar[str] = "inventory.StockReserved"

    reservation_id: str
    reference: str
    # One dict per warehouse piece: {"sku", "warehouse", "quantity"}.
    lines: list[dict[str, Any]]


@dataclass(frozen=True)
class StockReleased(Event):
    event_type: ClassVar[str] = "inventory.StockReleased"

    reservation_id: str
    reason: str  # "released" or "expired"


@dataclass(frozen=True)
class StockCommitted(Event):
    event_type: ClassVar[str] = "inventory.StockCommitted"

    reservation_id: str


@dataclass(frozen=True)
class StockDepleted(Event):
    """The SKU's last available unit was taken: it is sold out until units come back."""

    event_type: ClassVar[str] = "inventory.StockDepleted"

    sku: str
    # When (ISO 8601, the shop's clock); None in events written before it was.
    depleted_at: str | None = None


@dataclass(frozen=True)
class StockLevelSet(Event):
    event_type: ClassVar[str] = "inventory.StockLevelSet"

    sku: str
    warehouse: str
    on_hand: int
    # The SKU's units available in every warehouse after it; None in events written before.
    available: int | None = None
    # When (ISO 8601, the shop's clock); None in events written before it was.
    set_at: str | None = None


@dataclass(frozen=True)
class StockReturned(Event):
    """Sold stock went back on the shelf: its order was cancelled."""

    event_type: ClassVar[str] = "inventory.StockReturned"

    reservation_id: str
