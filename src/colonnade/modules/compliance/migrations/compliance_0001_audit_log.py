"""compliance: the audit log (append-only, hash-chained), its head, erasure records

Revision ID: compliance_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from colonnade.kernel.types import UTCDateTime

revision = "compliance_0001"
down_revision = None
branch_labels = ("compliance",)
depends_on = None

# Columns no UPDATE may change; payload and salt may only be cleared together (erasure), or
# the payload re-encrypted under a newer key with its salt kept.
_FIXED = (
    "seq",
    "at",
    "actor_kind",
    "actor_id",
    "client_address",
    "action",
    "target",
    "status",
    "subject_customer_id",
    "payload_digest",
    "prev_hash",
    "row_hash",
)
_REFUSED = "the audit log is append-only"


def _sqlite_triggers() -> list[str]:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _FIXED)
    return [
        "CREATE TRIGGER compliance_audit_log_no_delete BEFORE DELETE ON compliance_audit_log "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END",
        "CREATE TRIGGER compliance_audit_log_no_update BEFORE UPDATE ON compliance_audit_log "
        f"WHEN {changed} OR NOT ("
        "(NEW.payload IS NULL AND NEW.salt IS NULL) OR "
        "(NEW.salt IS OLD.salt AND OLD.payload IS NOT NULL AND NEW.payload IS NOT NULL)) "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END",
        "CREATE TRIGGER compliance_audit_head_no_delete BEFORE DELETE ON compliance_audit_head "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END",
        "CREATE TRIGGER compliance_audit_head_forward BEFORE UPDATE ON compliance_audit_head "
        "WHEN NEW.id IS NOT OLD.id OR NEW.last_seq <= OLD.last_seq "
        f"BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END",
    ]


def _postgresql_triggers() -> list[str]:
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _FIXED)
    refuse = f"RAISE EXCEPTION '{_REFUSED}' USING ERRCODE = 'integrity_constraint_violation'"
    return [
        f"""
        CREATE FUNCTION compliance_audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                {refuse};
            END IF;
            IF {changed} OR NOT (
                (NEW.payload IS NULL AND NEW.salt IS NULL)
                OR (NEW.salt IS NOT DISTINCT FROM OLD.salt
                    AND OLD.payload IS NOT NULL AND NEW.payload IS NOT NULL)
            ) THEN
                {refuse};
            END IF;
            RETURN NEW;
        END $$
        """,
        "CREATE TRIGGER compliance_audit_log_append_only BEFORE UPDATE OR DELETE "
        "ON compliance_audit_log FOR EACH ROW EXECUTE FUNCTION compliance_audit_log_guard()",
        f"""
        CREATE FUNCTION compliance_audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' OR NEW.id IS DISTINCT FROM OLD.id
                OR NEW.last_seq <= OLD.last_seq THEN
                {refuse};
            END IF;
            RETURN NEW;
        END $$
        """,
        "CREATE TRIGGER compliance_audit_head_forward BEFORE UPDATE OR DELETE "
        "ON compliance_audit_head FOR EACH ROW EXECUTE FUNCTION compliance_audit_head_guard()",
    ]


def upgrade() -> None:
    op.create_table(
        "compliance_audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("client_address", sa.String(64), nullable=True),
        sa.Column("action", sa.String(300), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("subject_customer_id", sa.String(64), nullable=True),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("salt", sa.String(64), nullable=True),
        sa.Column("payload_digest", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_compliance_audit_log_subject_customer_id",
        "compliance_audit_log",
        ["subject_customer_id"],
    )
    op.create_index("ix_compliance_audit_log_actor", "compliance_audit_log", ["actor_id"])
    op.create_index("ix_compliance_audit_log_at", "compliance_audit_log", ["at"])
    op.create_table(
        "compliance_audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "compliance_erasures",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("requested_by_kind", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("erased_at", UTCDateTime, nullable=False),
        sa.Column("orders_anonymized", sa.Integer, nullable=False),
        sa.Column("carts_forgotten", sa.Integer, nullable=False),
        sa.Column("audit_rows_cleared", sa.Integer, nullable=False),
    )
    op.create_index("ix_compliance_erasures_customer_id", "compliance_erasures", ["customer_id"])
    dialect = op.get_bind().dialect.name
    triggers = _postgresql_triggers() if dialect == "postgresql" else _sqlite_triggers()
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER compliance_audit_head_forward ON compliance_audit_head")
        op.execute("DROP TRIGGER compliance_audit_log_append_only ON compliance_audit_log")
        op.execute("DROP FUNCTION compliance_audit_head_guard()")
        op.execute("DROP FUNCTION compliance_audit_log_guard()")
    op.drop_table("compliance_erasures")
    op.drop_table("compliance_audit_head")
    op.drop_table("compliance_audit_log")
