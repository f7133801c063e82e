"""analytics: where each lead is counted in the monthly counts (analytics_counted_leads), so the
events consumer that now keeps the counts moves a lead by a difference and a replay changes nothing;
backfilled here from the leads (as the monthly counts were, by 0011)

Revision ID: 0030_i15analytics_counted_leads
Revises: 0029_i19_lead_age_group
Create Date: 2026-11-23 12:40:00

The backfill statement is frozen in this file (app/domains/analytics/monthly.py `rebuild` has the same
definitions). Events written before this revision and processed after it find their leads counted
as they are now and change nothing: the monthly counts already include them (kept on flush then).
"""

from alembic import op
import sqlalchemy as sa

revision = "0030_i15analytics_counted_leads"
down_revision = "0029_i19_lead_age_group"
branch_labels = None
depends_on = None

BACKFILL = """
    INSERT INTO analytics_counted_leads (lead_id, clinic_id, month, coordinator_id, source_id,
        reached_stage, lost_reason, converted, lost, within_5_min)
    SELECT id, clinic_id, {month}, coalesce(assigned_to_id, 0), coalesce(source_id, 0),
        coalesce(furthest_stage, pipeline_stage, ''), coalesce(lost_reason, ''),
        CASE WHEN status = 'CONVERTED' THEN 1 ELSE 0 END, CASE WHEN status = 'LOST' THEN 1 ELSE 0 END,
        CASE WHEN round({seconds}) <= 300 THEN 1 ELSE 0 END
    FROM leads WHERE deleted_at IS NULL
"""
POSTGRESQL = {
    "month": "CAST(date_trunc('month', timezone('UTC', created_at)) AS DATE)",
    "seconds": "date_part('epoch', first_outbound_contact_at - created_at)",
}
SQLITE = {
    "month": "date(created_at, 'start of month')",
    "seconds": "(julianday(first_outbound_contact_at) - julianday(created_at)) * 86400.0",
}


def upgrade() -> None:
    op.create_table(
        "analytics_counted_leads",
        sa.Column("lead_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=True),
        sa.Column("coordinator_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("reached_stage", sa.String(length=64), nullable=False),
        sa.Column("lost_reason", sa.String(length=32), nullable=False),
        sa.Column("converted", sa.Integer(), nullable=False),
        sa.Column("lost", sa.Integer(), nullable=False),
        sa.Column("within_5_min", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id"),
    )
    parts = POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE
    op.execute(BACKFILL.format(**parts))


def downgrade() -> None:
    op.drop_table("analytics_counted_leads")
