"""Orders' tables. The database itself refuses an order whose total does not add up,
a refund larger than the payment, and a second order for one checkout.

The buyer's e-mail and shipping address are stored only encrypted (kernel field encryption);
staff find orders by e-mail through its blind index. An anonymized order keeps its amounts,
lines and history for the books and has neither.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
    Text,
)

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

STATUSES = "'placed', 'paid', 'fulfilled', 'shipped', 'delivered', 'cancelled', 'refunded'"
# The totals rule of domain.order_total, for the database.
TOTAL_RULE = "total = subtotal + shipping + CASE WHEN tax_inclusive THEN 0 ELSE tax END"

orders = Table(
    "orders_orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("number", String(20), nullable=False, unique=True),
    Column("checkout_id", String(64), nullable=False, unique=True),
    Column("customer_id", String(64), nullable=True),
    Column("email_encrypted", Text, nullable=True),
    # keyring.blind_index(e-mail, context="email"): the same digest identity keeps.
    Column("email_index", String(64), nullable=True),
    Column("market", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("shipping", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("tax_inclusive", Boolean, nullable=False),
    Column("paid_amount", BigInteger, nullable=False, server_default="0"),
    Column("refunded_amount", BigInteger, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False),
    # The address as JSON text, encrypted.
    Column("shipping_address_encrypted", Text, nullable=True),
    Column("payment_id", String(64), nullable=True),
    # SHA-256 of the guest's per-order secret; the secret itself is shown once and not kept.
    Column("access_token_hash", String(64), nullable=False),
    Column("placed_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # When the buyer's personal data was removed (erasure or retention).
    Column("anonymized_at", UTCDateTime, nullable=True),
    CheckConstraint(f"status IN ({STATUSES})", name="ck_orders_orders_status"),
    CheckConstraint(TOTAL_RULE, name="ck_orders_orders_total"),
    CheckConstraint(
        "subtotal >= 0 AND tax >= 0 AND shipping >= 0", name="ck_orders_orders_amounts"
    ),
    CheckConstraint(
        "paid_amount >= 0 AND refunded_amount >= 0 AND refunded_amount <= paid_amount",
        name="ck_orders_orders_refund",
    ),
)
Index("ix_orders_orders_placed", orders.c.placed_at, orders.c.id)
Index("ix_orders_orders_status", orders.c.status, orders.c.placed_at)
Index("ix_orders_orders_email_index", orders.c.email_index, orders.c.placed_at)
Index("ix_orders_orders_customer", orders.c.customer_id, orders.c.placed_at)

lines = Table(
    "orders_lines",
    metadata,
    Column("order_id", String(36), ForeignKey("orders_orders.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("sku", String(100), nullable=False),
    Column("title", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("line_total", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    # What promotions took off the line: line_total + discount = unit_price * quantity.
    Column("discount", BigInteger, nullable=False, server_default="0"),
    # The ids of the promotions that did, comma-separated; None without one.
    Column("promotions", String(400), nullable=True),
    # Units refunded by line (or set aside for a refund under way); never more than bought.
    Column("refunded_quantity", Integer, nullable=False, server_default="0"),
    PrimaryKeyConstraint("order_id", "position", name="pk_orders_lines"),
    CheckConstraint("quantity > 0", name="ck_orders_lines_quantity"),
)

# The units each refund by line took back, under its idempotency key: asked again, the
# refund finds them and takes nothing more.
line_refunds = Table(
    "orders_line_refunds",
    metadata,
    Column("order_id", String(36), nullable=False),
    Column("refund_key", String(200), nullable=False),
    Column("sku", String(100), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("order_id", "refund_key", "sku", name="pk_orders_line_refunds"),
    CheckConstraint("quantity > 0 AND amount >= 0", name="ck_orders_line_refunds"),
)

history = Table(
    "orders_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("order_id", String(36), ForeignKey("orders_orders.id"), nullable=False),
    # None for the placement itself.
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(120), nullable=False),
    Column("note", Text, nullable=True),
)
Index("ix_orders_history_order", history.c.order_id, history.c.id)
