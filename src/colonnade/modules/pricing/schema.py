"""Pricing's tables. Rates are kept as decimal strings: exact on both databases, never floats."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
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
)

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

markets = Table(
    "pricing_markets",
    metadata,
    Column("code", String(10), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("locale", String(40), nullable=False),
    Column("tax_inclusive", Boolean, nullable=False),
    # A decimal fraction such as "0.19".
    Column("tax_rate", String(20), nullable=False),
    # An IANA time zone such as Europe/Berlin: the market's clock, as its shoppers read it.
    Column("time_zone", String(64), nullable=False, server_default="UTC"),
)

prices = Table(
    "pricing_prices",
    metadata,
    Column("sku", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    # Minor units; BIGINT because JPY and similar currencies reach large counts.
    Column("amount", BigInteger, nullable=False),
    PrimaryKeyConstraint("sku", "currency", name="pk_pricing_prices"),
    CheckConstraint("amount >= 0", name="ck_pricing_prices_amount"),
)

fx_rates = Table(
    "pricing_fx_rates",
    metadata,
    Column("base_currency", String(3), nullable=False),
    Column("quote_currency", String(3), nullable=False),
    # Units of the quote currency per unit of the base, as a decimal string such as "0.92".
    Column("rate", String(40), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("base_currency", "quote_currency", name="pk_pricing_fx_rates"),
)

# A scheduled sale: in one market, from `starts_at` until `ends_at` (UTC), the SKUs listed in
# `sale_prices` sell at their fixed sale price, or at `percent_off` their price, and so do the
# products and categories its `target` names ({"products": [ids], "categories": [slugs]}).
sales = Table(
    "pricing_sales",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("market", String(10), nullable=False),
    # The market's currency when the sale was made: its fixed prices are in it.
    Column("currency", String(3), nullable=False),
    Column("percent_off", Integer, nullable=True),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # None: the sale lists SKUs only.
    Column("target", JSON(none_as_null=True), nullable=True),
    CheckConstraint(
        "percent_off IS NULL OR (percent_off >= 1 AND percent_off <= 99)",
        name="ck_pricing_sales_percent",
    ),
)
Index("ix_pricing_sales_market", sales.c.market, sales.c.ends_at)

sale_prices = Table(
    "pricing_sale_prices",
    metadata,
    Column("sale_id", String(36), ForeignKey("pricing_sales.id"), nullable=False),
    Column("sku", String(200), nullable=False),
    # Minor units of the market's currency; None: the sale's percentage off the SKU's price.
    Column("amount", BigInteger, nullable=True),
    PrimaryKeyConstraint("sale_id", "sku", name="pk_pricing_sale_prices"),
    CheckConstraint("amount IS NULL OR amount >= 0", name="ck_pricing_sale_prices_amount"),
)
# Prices are asked for by SKU: a page's or a cart's sale prices come with their prices.
Index("ix_pricing_sale_prices_sku", sale_prices.c.sku)
