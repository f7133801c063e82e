"""lead_tasks.outcome: the structured outcome a task was completed with

Revision ID: 0016_i17_task_outcome
Revises: 0015_i18b_api_key_rate_limit
Create Date: 2026-11-23 06:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0016_i17_task_outcome"
down_revision = "0015_i18b_api_key_rate_limit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("lead_tasks", sa.Column("outcome", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("lead_tasks", "outcome")
