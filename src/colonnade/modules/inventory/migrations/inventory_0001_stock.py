"""inventory: warehouses, stock levels, reservations and the stock ledger

Revision ID: inventory_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "inventory_0001"
down_revision = None
branch_labels = ("inventory",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventory_warehouses",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "inventory_stock",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column(
            "warehouse", sa.String(40), sa.ForeignKey("inventory_warehouses.code"), nullable=False
        ),
        sa.Column("on_hand", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sold", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("sku", "warehouse", name="pk_inventory_stock"),
        sa.CheckConstraint("on_hand >= 0", name="ck_inventory_stock_on_hand"),
        sa.CheckConstraint("reserved >= 0", name="ck_inventory_stock_reserved"),
        sa.CheckConstraint("sold >= 0", name="ck_inventory_stock_sold"),
        sa.CheckConstraint("reserved + sold <= on_hand", name="ck_inventory_stock_not_oversold"),
    )
    op.create_table(
        "inventory_reservations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "status IN ('held', 'committed', 'released', 'expired', 'returned')",
            name="ck_inventory_reservations_status",
        ),
    )
    op.create_index(
        "ix_inventory_reservations_due", "inventory_reservations", ["status", "expires_at"]
    )
    op.create_index("ix_inventory_reservations_reference", "inventory_reservations", ["reference"])
    op.create_table(
        "inventory_reservation_lines",
        sa.Column(
            "reservation_id",
            sa.String(36),
            sa.ForeignKey("inventory_reservations.id"),
            nullable=False,
        ),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("warehouse", sa.String(40), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "reservation_id", "sku", "warehouse", name="pk_inventory_reservation_lines"
        ),
        sa.CheckConstraint("quantity > 0", name="ck_inventory_reservation_lines_quantity"),
    )
    op.create_table(
        "inventory_ledger",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("warehouse", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("delta_on_hand", sa.Integer, nullable=False),
        sa.Column("delta_reserved", sa.Integer, nullable=False),
        sa.Column("delta_sold", sa.Integer, nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "reason IN ('set_on_hand', 'reserve', 'commit', 'release', 'expire', 'return')",
            name="ck_inventory_ledger_reason",
        ),
    )
    op.create_index("ix_inventory_ledger_sku", "inventory_ledger", ["sku", "id"])


def downgrade() -> None:
    op.drop_index("ix_inventory_ledger_sku", "inventory_ledger")
    op.drop_table("inventory_ledger")
    op.drop_table("inventory_reservation_lines")
    op.drop_index("ix_inventory_reservations_reference", "inventory_reservations")
    op.drop_index("ix_inventory_reservations_due", "inventory_reservations")
    op.drop_table("inventory_reservations")
    op.drop_table("inventory_stock")
    op.drop_table("inventory_warehouses")
