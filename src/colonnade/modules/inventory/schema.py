"""Inventory's tables. The CHECK constraints on inventory_stock are the last word on
overselling: whatever the code does, reserved + sold never exceeds on hand."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

warehouses = Table(
    "inventory_warehouses",
    metadata,
    Column("code", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

stock = Table(
    "inventory_stock",
    metadata,
    Column("sku", String(100), nullable=False),
    Column("warehouse", String(40), ForeignKey("inventory_warehouses.code"), nullable=False),
    Column("on_hand", Integer, nullable=False, server_default="0"),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("sold", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("sku", "warehouse", name="pk_inventory_stock"),
    CheckConstraint("on_hand >= 0", name="ck_inventory_stock_on_hand"),
    CheckConstraint("reserved >= 0", name="ck_inventory_stock_reserved"),
    CheckConstraint("sold >= 0", name="ck_inventory_stock_sold"),
    CheckConstraint("reserved + sold <= on_hand", name="ck_inventory_stock_not_oversold"),
)

reservations = Table(
    "inventory_reservations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(
        "status IN ('held', 'committed', 'released', 'expired', 'returned')",
        name="ck_inventory_reservations_status",
    ),
)
Index("ix_inventory_reservations_due", reservations.c.status, reservations.c.expires_at)
Index("ix_inventory_reservations_reference", reservations.c.reference)

reservation_lines = Table(
    "inventory_reservation_lines",
    metadata,
    Column("reservation_id", String(36), ForeignKey("inventory_reservations.id"), nullable=False),
    Column("sku", String(100), nullable=False),
    Column("warehouse", String(40), nullable=False),
    Column("quantity", Integer, nullable=False),
    PrimaryKeyConstraint(
        "reservation_id", "sku", "warehouse", name="pk_inventory_reservation_lines"
    ),
    CheckConstraint("quantity > 0", name="ck_inventory_reservation_lines_quantity"),
)

ledger = Table(
    "inventory_ledger",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("sku", String(100), nullable=False),
    Column("warehouse", String(40), nullable=False),
    Column("reason", String(16), nullable=False),
    Column("delta_on_hand", Integer, nullable=False),
    Column("delta_reserved", Integer, nullable=False),
    Column("delta_sold", Integer, nullable=False),
    Column("reference", String(200), nullable=True),
    Column("at", UTCDateTime, nullable=False),
    CheckConstraint(
        "reason IN ('set_on_hand', 'reserve', 'commit', 'release', 'expire', 'return')",
        name="ck_inventory_ledger_reason",
    ),
)
Index("ix_inventory_ledger_sku", ledger.c.sku, ledger.c.id)
