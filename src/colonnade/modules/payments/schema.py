"""Payments' tables. The CHECK constraints are the last word on money: a payment never
captures more than was authorized nor refunds more than was captured, and a gift card's
balance never goes below zero, whatever the code does."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    MetaData,
    String,
    Table,
)

from colonnade.kernel.types import UTCDateTime

metadata = MetaData()

STATUSES = (
    "'authorizing', 'pending', 'authorized', 'captured', 'refunded', 'voided', 'failed', 'unknown'"
)

payments = Table(
    "payments_payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("checkout_id", String(200), nullable=False, unique=True),
    Column("order_id", String(200), nullable=True),
    Column("method", String(20), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("authorized_amount", BigInteger, nullable=False, server_default="0"),
    Column("captured_amount", BigInteger, nullable=False, server_default="0"),
    Column("refunded_amount", BigInteger, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False),
    Column("provider_reference", String(200), nullable=True),
    Column("decline_reason", String(100), nullable=True),
    # Which gift card paid (its row id), so a void or refund can credit it back.
    Column("gift_card_id", String(36), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("amount > 0", name="ck_payments_payments_amount"),
    CheckConstraint(
        "authorized_amount >= 0 AND authorized_amount <= amount",
        name="ck_payments_payments_authorized",
    ),
    CheckConstraint(
        "captured_amount >= 0 AND captured_amount <= authorized_amount",
        name="ck_payments_payments_captured",
    ),
    CheckConstraint(
        "refunded_amount >= 0 AND refunded_amount <= captured_amount",
        name="ck_payments_payments_refunded",
    ),
    CheckConstraint(
        "method IN ('card', 'bank_transfer', 'gift_card')", name="ck_payments_payments_method"
    ),
    CheckConstraint(f"status IN ({STATUSES})", name="ck_payments_payments_status"),
)
Index("ix_payments_payments_status", payments.c.status)

refunds = Table(
    "payments_refunds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("payment_id", String(36), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("amount > 0", name="ck_payments_refunds_amount"),
    CheckConstraint("status IN ('requested', 'succeeded')", name="ck_payments_refunds_status"),
)
Index("ix_payments_refunds_payment", refunds.c.payment_id)

gift_cards = Table(
    "payments_gift_cards",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("initial_amount", BigInteger, nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("balance >= 0", name="ck_payments_gift_cards_balance"),
)

# The test gateway's own state: what a card processor in test mode would remember.
gateway_charges = Table(
    "payments_gateway_charges",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("authorize_key", String(200), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("captured_amount", BigInteger, nullable=False, server_default="0"),
    Column("refunded_amount", BigInteger, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False),
    Column("capture_fails", Boolean, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(
        "captured_amount >= 0 AND captured_amount <= amount",
        name="ck_payments_gateway_charges_captured",
    ),
    CheckConstraint(
        "refunded_amount >= 0 AND refunded_amount <= captured_amount",
        name="ck_payments_gateway_charges_refunded",
    ),
    CheckConstraint(
        "status IN ('authorized', 'captured', 'voided')",
        name="ck_payments_gateway_charges_status",
    ),
)

gateway_requests = Table(
    "payments_gateway_requests",
    metadata,
    # Every idempotency key the gateway has answered, with the answer it gave.
    Column("idempotency_key", String(200), primary_key=True),
    Column("operation", String(16), nullable=False),
    Column("charge_id", String(36), nullable=True),
    Column("approved", Boolean, nullable=False),
    Column("decline_reason", String(100), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
