"""identity: admins made before the operations page may watch it too (scope ops:read)

Scopes are stored with each staff member when they are made, so the admins of a shop that
existed before `ops:read` do not hold it; an admin holds every scope, so they get it here.

Revision ID: identity_0003
Revises: identity_0002
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "identity_0003"
down_revision = "identity_0002"
branch_labels = None
depends_on = None

SCOPE = "ops:read"

staff = sa.table(
    "identity_staff",
    sa.column("id", sa.String),
    sa.column("roles", sa.JSON),
    sa.column("scopes", sa.JSON),
)


def upgrade() -> None:
    bind = op.get_bind()
    for row in bind.execute(sa.select(staff.c.id, staff.c.roles, staff.c.scopes)).all():
        roles, scopes = _listed(row.roles), _listed(row.scopes)
        if "admin" in roles and SCOPE not in scopes:
            bind.execute(staff.update().where(staff.c.id == row.id).values(scopes=[*scopes, SCOPE]))


def downgrade() -> None:
    """Nothing to take back: an admin holds every scope there is."""


def _listed(value: str | list[str] | None) -> list[str]:
    # JSON comes back decoded on PostgreSQL, and may come back as text on SQLite.
    found = json.loads(value) if isinstance(value, str) else value
    return [str(item) for item in found or []]
