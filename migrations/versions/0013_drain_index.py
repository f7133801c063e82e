"""scheduled_jobs: the open rows of a kind by due time, for a draining worker's next claim

Revision ID: 0013_drain_index
Revises: 0012_lead_write_indexes
Create Date: 2026-11-22 10:45:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0013_drain_index"
down_revision = "0012_lead_write_indexes"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('pending', 'dispatched')")


def upgrade() -> None:
    op.create_index(
        "ix_scheduled_jobs_open_kind_due",
        "scheduled_jobs",
        ["kind", "due_at"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_scheduled_jobs_open_kind_due", table_name="scheduled_jobs")
