"""Cart's tables. A line belongs to one cart and one SKU; the database refuses empty lines."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
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

carts = Table(
    "cart_carts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("market", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    # Kept from the market when the cart opens, so showing a cart needs one pricing call.
    Column("tax_inclusive", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("customer_id", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # Last shopper activity: idle expiry counts from here.
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    # The discount code the shopper entered (upper case); weighed again whenever the cart is
    # priced, and at checkout.
    Column("promotion_code", String(40), nullable=True),
    CheckConstraint("status IN ('open', 'checked_out', 'expired')", name="ck_cart_carts_status"),
    CheckConstraint("version >= 1", name="ck_cart_carts_version"),
)
Index("ix_cart_carts_idle", carts.c.status, carts.c.updated_at)
Index("ix_cart_carts_customer", carts.c.customer_id)

lines = Table(
    "cart_lines",
    metadata,
    Column("cart_id", String(36), ForeignKey("cart_carts.id"), nullable=False),
    Column("sku", String(100), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    # The cart's version when the line was first added: lines show in the order shoppers
    # added them, even when two were added within one clock tick.
    Column("position", Integer, nullable=False),
    PrimaryKeyConstraint("cart_id", "sku", name="pk_cart_lines"),
    CheckConstraint("quantity > 0", name="ck_cart_lines_quantity"),
)
