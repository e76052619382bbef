"""payments: payments, refunds, gift cards and the test gateway's state

Revision ID: payments_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "payments_0001"
down_revision = None
branch_labels = ("payments",)
depends_on = None

STATUSES = (
    "'authorizing', 'pending', 'authorized', 'captured', 'refunded', 'voided', 'failed', 'unknown'"
)


def upgrade() -> None:
    op.create_table(
        "payments_payments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("checkout_id", sa.String(200), nullable=False, unique=True),
        sa.Column("order_id", sa.String(200), nullable=True),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("authorized_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("captured_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refunded_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_reference", sa.String(200), nullable=True),
        sa.Column("decline_reason", sa.String(100), nullable=True),
        sa.Column("gift_card_id", sa.String(36), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_payments_payments_amount"),
        sa.CheckConstraint(
            "authorized_amount >= 0 AND authorized_amount <= amount",
            name="ck_payments_payments_authorized",
        ),
        sa.CheckConstraint(
            "captured_amount >= 0 AND captured_amount <= authorized_amount",
            name="ck_payments_payments_captured",
        ),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= captured_amount",
            name="ck_payments_payments_refunded",
        ),
        sa.CheckConstraint(
            "method IN ('card', 'bank_transfer', 'gift_card')",
            name="ck_payments_payments_method",
        ),
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_payments_payments_status"),
    )
    op.create_index("ix_payments_payments_status", "payments_payments", ["status"])
    op.create_table(
        "payments_refunds",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("payment_id", sa.String(36), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_payments_refunds_amount"),
        sa.CheckConstraint(
            "status IN ('requested', 'succeeded')", name="ck_payments_refunds_status"
        ),
    )
    op.create_index("ix_payments_refunds_payment", "payments_refunds", ["payment_id"])
    op.create_table(
        "payments_gift_cards",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("initial_amount", sa.BigInteger, nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_payments_gift_cards_balance"),
    )
    op.create_table(
        "payments_gateway_charges",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("authorize_key", sa.String(200), nullable=False, unique=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("captured_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refunded_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("capture_fails", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "captured_amount >= 0 AND captured_amount <= amount",
            name="ck_payments_gateway_charges_captured",
        ),
        sa.CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= captured_amount",
            name="ck_payments_gateway_charges_refunded",
        ),
        sa.CheckConstraint(
            "status IN ('authorized', 'captured', 'voided')",
            name="ck_payments_gateway_charges_status",
        ),
    )
    op.create_table(
        "payments_gateway_requests",
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("charge_id", sa.String(36), nullable=True),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("decline_reason", sa.String(100), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("payments_gateway_requests")
    op.drop_table("payments_gateway_charges")
    op.drop_table("payments_gift_cards")
    op.drop_index("ix_payments_refunds_payment", "payments_refunds")
    op.drop_table("payments_refunds")
    op.drop_index("ix_payments_payments_status", "payments_payments")
    op.drop_table("payments_payments")
