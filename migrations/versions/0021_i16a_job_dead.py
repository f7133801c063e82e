"""scheduled_jobs: a `dead` status (its attempts spent: the handler failed or its worker died each time)
and `started_at` (when the attempt in flight was counted)

An attempt now counts when its claim commits, before the handler runs, so a job that kills its
worker ends dead instead of being resent forever. Rows that gave up after their attempts before
this revision were `failed`; they become `dead` (what `failed` means from now on is "no handler").

Revision ID: 0021_i16a_job_dead
Revises: 0020_i18a_job_trace_parent
Create Date: 2026-11-23 06:20:00
"""

from alembic import op
import sqlalchemy as sa

import app.platform.db

revision = "0021_i16a_job_dead"
down_revision = "0020_i18a_job_trace_parent"
branch_labels = None
depends_on = None

OLD = "status IN ('pending', 'dispatched', 'done', 'cancelled', 'failed')"
NEW = "status IN ('pending', 'dispatched', 'done', 'cancelled', 'failed', 'dead')"
NO_HANDLER = "no handler is registered for job kind%"


def upgrade() -> None:
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.add_column(sa.Column("started_at", app.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.drop_constraint(op.f("ck_scheduled_jobs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_scheduled_jobs_status"), NEW)
    jobs = sa.table("scheduled_jobs", sa.column("status"), sa.column("last_error"))
    op.execute(
        jobs.update()
        .where(jobs.c.status == "failed", sa.not_(jobs.c.last_error.like(NO_HANDLER)))
        .values(status="dead")
    )


def downgrade() -> None:
    jobs = sa.table("scheduled_jobs", sa.column("status"))
    op.execute(jobs.update().where(jobs.c.status == "dead").values(status="failed"))
    with op.batch_alter_table("scheduled_jobs") as batch:
        batch.drop_constraint(op.f("ck_scheduled_jobs_status"), type_="check")
        batch.create_check_constraint(op.f("ck_scheduled_jobs_status"), OLD)
        batch.drop_column("started_at")
