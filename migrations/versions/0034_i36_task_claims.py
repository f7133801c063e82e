"""lead_tasks: claimed_by_id and claimed_until, the lease of "my next call"

Revision ID: 0034_i36_task_claims
Revises: 0033_i34_phi_at_rest
Create Date: 2026-11-25 14:40:00

A coordinator's POST /api/me/next-task holds a task until claimed_until; a lapsed claim is free
again without a sweep. No index: next-task reads a caller's or a clinic's open tasks by the
existing (assignee, status, due) and (clinic, status, due) indexes and filters the claim there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0034_i36_task_claims"
down_revision = "0033_i34_phi_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lead_tasks") as batch:
        batch.add_column(sa.Column("claimed_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claimed_until", app.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.create_foreign_key("fk_lead_tasks_claimed_by_id_users", "users", ["claimed_by_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("lead_tasks") as batch:
        batch.drop_constraint("fk_lead_tasks_claimed_by_id_users", type_="foreignkey")
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by_id")
