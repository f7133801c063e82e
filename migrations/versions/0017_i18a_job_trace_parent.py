"""Ledger rows keep the W3C traceparent of the span that wrote them (tracing: a job continues its cause's trace).

Revision ID: 0017_i18a_job_trace_parent
Revises: 0016_i17_task_outcome
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_i18a_job_trace_parent"
down_revision = "0016_i17_task_outcome"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.add_column(sa.Column("trace_parent", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.drop_column("trace_parent")
