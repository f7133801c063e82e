"""Every active lead has a next step (issue 74 item 1): a lead the orphan sweep cannot give one keeps
why (`leads.next_step_blocked`: no owner and nobody to assign, or unreachable on every channel), and
the sweep counts the leads it could not help (`orphan_sweeps.not_helped`).

Expand-only: a nullable column and a counter that starts at 0.

Revision ID: 0078_i74_no_next_step_reason
Revises: 0077_i74_break_up_note_says_when
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0078_i74_no_next_step_reason"
down_revision = "0077_i74_break_up_note_says_when"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("next_step_blocked", sa.String(32), nullable=True))
    op.add_column("orphan_sweeps", sa.Column("not_helped", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    # Not in a batch: SQLite drops an unindexed column in place, where a batch copies the table (its
    # foreign keys then block older downgrades).
    op.drop_column("orphan_sweeps", "not_helped")
    op.drop_column("leads", "next_step_blocked")
