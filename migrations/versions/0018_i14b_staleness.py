"""Staleness kept on the lead (once per stay, once per quiet spell, whatever the ledger's purge);
the orphan sweep's position and counts.

Revision ID: 0018_i14b_staleness
"""

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision = "0018_i14b_staleness"
down_revision = "0017_i18b_lead_import"
branch_labels = None
depends_on = None

OPEN_LEAD_SQL = "status IN ('NEW', 'ACTIVE') AND deleted_at IS NULL"


def _open_where(column: str):
    return sa.text(f"{column} IS NULL AND {OPEN_LEAD_SQL}")


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("stage_stale_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_activity_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("quiet_flagged_at", UTCDateTime(timezone=True), nullable=True))
    # A lead's quiet spell starts at its newest activity by a person or the lead, else its capture.
    op.execute(
        """
        UPDATE leads SET last_activity_at = COALESCE(
            (SELECT MAX(a.occurred_at) FROM lead_activities a
             WHERE a.lead_id = leads.id AND a.actor <> 'system'),
            leads.created_at)
        """
    )
    # Stays already flagged by the old ledger-only sweep stay flagged.
    op.execute(
        """
        UPDATE leads SET stage_stale_at = stage_entered_at
        WHERE EXISTS (SELECT 1 FROM events e
                      WHERE e.type = 'lead.stale' AND e.subject_type = 'lead' AND e.subject_id = leads.id
                        AND e.occurred_at >= leads.stage_entered_at)
        """
    )
    # The sweep now flags the lead itself; the old per-lead flag jobs have nothing left to do.
    op.execute(
        "UPDATE scheduled_jobs SET status = 'cancelled' "
        "WHERE kind = 'lead.flag_stale' AND status IN ('pending', 'dispatched')"
    )
    op.create_index(
        "ix_leads_stage_stale_due",
        "leads",
        ["clinic_id", "pipeline_stage", "stage_entered_at"],
        postgresql_where=_open_where("stage_stale_at"),
        sqlite_where=_open_where("stage_stale_at"),
    )
    op.create_index(
        "ix_leads_quiet_due",
        "leads",
        ["clinic_id", "last_activity_at"],
        postgresql_where=_open_where("quiet_flagged_at"),
        sqlite_where=_open_where("quiet_flagged_at"),
    )


    op.create_table(
        "orphan_sweeps",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("after_lead_id", sa.BigInteger(), nullable=False),
        sa.Column("found_this_pass", sa.Integer(), nullable=False),
        sa.Column("found_last_pass", sa.Integer(), nullable=True),
        sa.Column("last_pass_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("tasks_made", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orphan_sweeps")
    op.drop_index("ix_leads_quiet_due", table_name="leads")
    op.drop_index("ix_leads_stage_stale_due", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("quiet_flagged_at")
        batch.drop_column("last_activity_at")
        batch.drop_column("stage_stale_at")
