"""Promotions' tables. The database itself refuses a use beyond a promotion's limit.

A promotion's `used` counts the uses held now: a checkout holds its use from the moment it
is accepted; one that fails, or an order that is cancelled, gives it back. Each use is a row
of `promotions_uses` under the checkout's id, so giving back happens once however often it
is asked for.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    false,
)

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

promotions = Table(
    "promotions_promotions",
    metadata,
    Column("id", String(36), primary_key=True),
    # Upper case: codes are the same whatever case shoppers type them in. None: automatic.
    Column("code", String(40), nullable=True, unique=True),
    Column("title", String(200), nullable=True),
    Column("percent_off", Integer, nullable=True),
    # {"USD": 500, ...}: minor units per currency.
    Column("amount_off", JSON, nullable=False),
    Column("min_subtotal", JSON, nullable=False),
    Column("markets", JSON, nullable=False),
    Column("customers_only", Boolean, nullable=False),
    Column("usage_limit", Integer, nullable=True),
    Column("per_customer_limit", Integer, nullable=True),
    Column("used", Integer, nullable=False, server_default="0"),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # {"skus": [...], "products": [...], "categories": [...]}; None: the whole cart.
    Column("target", JSON, nullable=True),
    Column("buy_quantity", Integer, nullable=True),
    Column("get_quantity", Integer, nullable=True),
    Column("combines", Boolean, nullable=False, server_default=false()),
    Column("first_order", Boolean, nullable=False, server_default=false()),
    CheckConstraint(
        "used >= 0 AND (usage_limit IS NULL OR used <= usage_limit)",
        name="ck_promotions_promotions_used",
    ),
    CheckConstraint(
        "percent_off IS NULL OR (percent_off >= 1 AND percent_off <= 100)",
        name="ck_promotions_promotions_percent",
    ),
)

# One row per promotion a checkout uses: a checkout may use several that combine.
uses = Table(
    "promotions_uses",
    metadata,
    Column("checkout_id", String(64), primary_key=True),
    Column("promotion_id", String(36), primary_key=True),
    Column("customer_id", String(64), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("discount", BigInteger, nullable=False),
    # What the buyer pays with the discount taken off (the order's total).
    Column("total", BigInteger, nullable=False),
    Column("used_at", UTCDateTime, nullable=False),
    # The single-use code of a batch the use took; None for the promotion's own code.
    Column("code", String(40), nullable=True),
    CheckConstraint("discount >= 0 AND total >= 0", name="ck_promotions_uses_2"),
)
Index("ix_promotions_uses_promotion", uses.c.promotion_id, uses.c.customer_id)

# Batches of unique codes, each good for one order: a use holds its code (`checkout_id`)
# until the order stands, and a failed checkout or a cancelled order lets it go.
codes = Table(
    "promotions_codes",
    metadata,
    Column("code", String(40), primary_key=True),
    Column("promotion_id", String(36), nullable=False),
    Column("checkout_id", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_promotions_codes_promotion", codes.c.promotion_id, codes.c.checkout_id)
