"""ledger_turns (clinics take turns on a queue) and notifications.bulk (a campaign's message)

Revision ID: 0044_i45_turns_and_lanes
Revises: 0043_i46_lead_timers
Create Date: 2026-11-28 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0044_i45_turns_and_lanes"
down_revision = "0043_i46_lead_timers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_turns",
        sa.Column("queue", sa.String(32), nullable=False),
        sa.Column("clinic_key", sa.Integer(), nullable=False),
        sa.Column("served_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("queue", "clinic_key", name=op.f("pk_ledger_turns")),
    )
    # A constant default: PostgreSQL adds the column without rewriting the table.
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("bulk", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("bulk")
    op.drop_table("ledger_turns")
