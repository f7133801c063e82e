"""lead_tasks: per-task reminder offsets, a recurrence interval, and the series a task belongs to

Revision ID: 0019_i17_task_reminders_series
Revises: 0018_i14a_rule_vocabulary
Create Date: 2026-11-23 06:20:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "0019_i17_task_reminders_series"
down_revision = "0018_i14a_rule_vocabulary"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("lead_tasks", sa.Column("reminder_offsets_minutes", JSON, nullable=True))
    op.add_column("lead_tasks", sa.Column("recurrence_interval", sa.Integer(), nullable=True))
    op.add_column("lead_tasks", sa.Column("series_id", sa.Integer(), nullable=True))
    op.add_column("lead_tasks", sa.Column("series", JSON, nullable=True))
    op.create_index("ix_lead_tasks_series", "lead_tasks", ["series_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_lead_tasks_series", table_name="lead_tasks")
    for column in ("series", "series_id", "recurrence_interval", "reminder_offsets_minutes"):
        op.drop_column("lead_tasks", column)
