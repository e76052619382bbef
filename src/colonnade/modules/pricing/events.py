"""What pricing tells the rest of the shop. Payloads hold JSON-ready values only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class PriceChanged(Event):
    event_type: ClassVar[str] = "pricing.PriceChanged"

    sku: str
    # The SKU's whole price list after the change: one {"amount", "currency"} per currency.
    prices: list[dict[str, Any]]


@dataclass(frozen=True)
class MarketChanged(Event):
    event_type: ClassVar[str] = "pricing.MarketChanged"

    code: str


@dataclass(frozen=True)
class FxRateChanged(Event):
    """Prices converted from `base` into `quote` changed with the rate."""

    event_type: ClassVar[str] = "pricing.FxRateChanged"

    base: str
    quote: str
    rate: str


@dataclass(frozen=True)
class SaleChanged(Event):
    """A scheduled sale was made or ended early: shelf prices in its market may change."""

    event_type: ClassVar[str] = "pricing.SaleChanged"

    sale_id: str
    market: str
