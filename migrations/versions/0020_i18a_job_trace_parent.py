"""Ledger rows keep the W3C traceparent of the span that wrote them (tracing: a job continues its cause's trace).

Revision ID: 0020_i18a_job_trace_parent
Revises: 0019_i17_task_reminders_series
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_i18a_job_trace_parent"
down_revision = "0019_i17_task_reminders_series"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.add_column(sa.Column("trace_parent", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.drop_column("trace_parent")
