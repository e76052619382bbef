"""What the catalog tells the rest of the shop. Payloads hold JSON-ready values only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from colonnade.kernel.events import Event


@dataclass(frozen=True)
class ProductPublished(Event):
    """A product became visible in the store, with the SKUs it can be bought as."""

    event_type: ClassVar[str] = "catalog.ProductPublished"

    product_id: str
    skus: list[str]


@dataclass(frozen=True)
class ProductChanged(Event):
    """A product's texts or status changed (search indexes and caches refresh)."""

    event_type: ClassVar[str] = "catalog.ProductChanged"

    product_id: str


@dataclass(frozen=True)
class CategoryChanged(Event):
    """A category was created, renamed or moved (listings by category change with it)."""

    event_type: ClassVar[str] = "catalog.CategoryChanged"

    slug: str
