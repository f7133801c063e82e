"""sequences.allow_concurrent (a lead is in one active sequence unless the sequences allow more);
leads.hesitation_reason (why a family pending a decision hesitates)

Revision ID: 0035_i36_goals_and_playbook
Revises: 0034_i36_task_claims
Create Date: 2026-11-25 15:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035_i36_goals_and_playbook"
down_revision = "0034_i36_task_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: a batch rebuild of leads would drop a table others reference.
    op.add_column(
        "sequences", sa.Column("allow_concurrent", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("leads", sa.Column("hesitation_reason", sa.String(32), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): no rebuild of a table others reference.
    op.drop_column("leads", "hesitation_reason")
    op.drop_column("sequences", "allow_concurrent")
