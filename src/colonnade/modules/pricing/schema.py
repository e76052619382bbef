"""Pricing's tables. Rates are kept as decimal strings: exact on both databases, never floats."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
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
