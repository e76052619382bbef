"""Inventory's admin routes: thin, they parse, authorize and call one service method."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from colonnade.modules.inventory.domain import (
    MAX_WAREHOUSE_NAME_LENGTH,
    WAREHOUSE_CODE_SHAPE,
    InvalidQuantity,
    InvalidSku,
    InvalidWarehouse,
    StockBelowCommitments,
    UnknownSku,
    UnknownWarehouse,
)
from colonnade.modules.inventory.service import (
    InventoryService,
    LedgerEntry,
    StockLevel,
    Warehouse,
)
from colonnade.web.auth import requires
from colonnade.web.fields import Count, Sku, declared
from colonnade.web.problems import refusals

READ = "inventory:read"
WRITE = "inventory:write"

WarehouseCode = Annotated[StrictStr, declared(pattern=f"^{WAREHOUSE_CODE_SHAPE}$")]
"""A warehouse's code: 1 to 40 letters, digits, '-' or '_', starting with a letter or digit."""


class SetStock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_hand: Count = Field(description="Units on the shelf in the warehouse.")
    warehouse: WarehouseCode | None = Field(
        default=None, description="Warehouse code; the default warehouse when left out."
    )


class SetWarehouse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        StrictStr, declared(minLength=1, maxLength=MAX_WAREHOUSE_NAME_LENGTH, pattern=r"\S")
    ]


class WarehouseStockOut(BaseModel):
    code: str
    on_hand: int
    reserved: int
    sold: int
    available: int


class StockLevelOut(BaseModel):
    sku: str
    on_hand: int
    reserved: int
    sold: int
    available: int
    warehouses: list[WarehouseStockOut]

    @classmethod
    def of(cls, level: StockLevel) -> StockLevelOut:
        return cls(
            sku=level.sku,
            on_hand=level.on_hand,
            reserved=level.reserved,
            sold=level.sold,
            available=level.available,
            warehouses=[WarehouseStockOut(**vars(w)) for w in level.warehouses],
        )


class LedgerEntryOut(BaseModel):
    id: int
    warehouse: str
    reason: str
    delta_on_hand: int
    delta_reserved: int
    delta_sold: int
    reference: str | None
    at: datetime

    @classmethod
    def of(cls, entry: LedgerEntry) -> LedgerEntryOut:
        return cls(
            id=entry.id,
            warehouse=entry.warehouse,
            reason=entry.reason.value,
            delta_on_hand=entry.delta_on_hand,
            delta_reserved=entry.delta_reserved,
            delta_sold=entry.delta_sold,
            reference=entry.reference,
            at=entry.at,
        )


class LedgerOut(BaseModel):
    sku: str
    entries: list[LedgerEntryOut]


class WarehouseOut(BaseModel):
    code: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, warehouse: Warehouse) -> WarehouseOut:
        return cls(code=warehouse.code, name=warehouse.name, created_at=warehouse.created_at)


def router(inventory: InventoryService, sku_exists: Callable[[str], Awaitable[bool]]) -> APIRouter:
    routes = APIRouter(tags=["inventory"])

    async def known(sku: str) -> str:
        if not await sku_exists(sku):
            raise UnknownSku(sku)
        return sku

    @routes.put(
        "/admin/inventory/{sku}",
        dependencies=[Depends(requires(WRITE))],
        response_model=StockLevelOut,
        responses=refusals(
            UnknownSku,
            InvalidSku,
            InvalidQuantity,
            InvalidWarehouse,
            UnknownWarehouse,
            StockBelowCommitments,
        ),
    )
    async def set_stock(sku: Sku, body: SetStock) -> StockLevelOut:
        """Set how many units of a SKU are on hand in a warehouse."""
        await known(sku)
        return StockLevelOut.of(await inventory.set_on_hand(sku, body.on_hand, body.warehouse))

    @routes.get(
        "/admin/inventory/{sku}",
        dependencies=[Depends(requires(READ))],
        response_model=StockLevelOut,
        responses=refusals(UnknownSku),
    )
    async def stock_level(sku: Sku) -> StockLevelOut:
        """A SKU's stock: on hand, reserved, sold and available, per warehouse and in total."""
        await known(sku)
        return StockLevelOut.of(await inventory.stock(sku))

    @routes.get(
        "/admin/inventory/{sku}/ledger",
        dependencies=[Depends(requires(READ))],
        response_model=LedgerOut,
        responses=refusals(UnknownSku),
    )
    async def stock_ledger(sku: Sku, limit: int = Query(default=100, ge=1, le=1000)) -> LedgerOut:
        """Every change to a SKU's stock, newest first."""
        await known(sku)
        entries = await inventory.ledger(sku, limit)
        return LedgerOut(sku=sku, entries=[LedgerEntryOut.of(e) for e in entries])

    @routes.put(
        "/admin/warehouses/{code}",
        dependencies=[Depends(requires(WRITE))],
        response_model=WarehouseOut,
        responses=refusals(InvalidWarehouse),
    )
    async def set_warehouse(code: WarehouseCode, body: SetWarehouse) -> WarehouseOut:
        """Create a warehouse or rename it."""
        return WarehouseOut.of(await inventory.set_warehouse(code, body.name))

    return routes
