"""analytics: monthly lead counts (per clinic, month of capture, owner, source, reached stage, lost
reason), kept on flush by app/domains/analytics/monthly.py, backfilled here from the leads; an index for
the completed stays of a short range's cohort

Revision ID: 0011_analytics_monthly
Revises: 0010_analytics_rollups
Create Date: 2026-11-22 07:30:00

The backfill statement is frozen in this file (app/domains/analytics/monthly.py has the same definitions).
"""

from alembic import op
import sqlalchemy as sa

revision = "0011_analytics_monthly"
down_revision = "0010_analytics_rollups"
branch_labels = None
depends_on = None

COLUMNS = (
    "clinic_id, month, coordinator_id, source_id, reached_stage, lost_reason,"
    " leads, converted, lost, within_5_min"
)
COUNTS = """count(*), count(CASE WHEN status = 'CONVERTED' THEN 1 END),
    count(CASE WHEN status = 'LOST' THEN 1 END), count(CASE WHEN round({seconds}) <= 300 THEN 1 END)"""
KEY = """clinic_id, {month}, coalesce(assigned_to_id, 0), coalesce(source_id, 0),
    coalesce(furthest_stage, pipeline_stage, ''), coalesce(lost_reason, '')"""
BACKFILL = """
    INSERT INTO analytics_lead_months ({columns})
    SELECT {key}, {counts} FROM leads WHERE deleted_at IS NULL GROUP BY {key}
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
        "analytics_lead_months",
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("coordinator_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("reached_stage", sa.String(length=64), nullable=False),
        sa.Column("lost_reason", sa.String(length=32), nullable=False),
        sa.Column("leads", sa.Integer(), nullable=False),
        sa.Column("converted", sa.Integer(), nullable=False),
        sa.Column("lost", sa.Integer(), nullable=False),
        sa.Column("within_5_min", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "clinic_id", "month", "coordinator_id", "source_id", "reached_stage", "lost_reason"
        ),
    )
    op.create_index(
        'ix_lead_stage_history_cohort_stays', 'lead_stage_history', ['clinic_id', 'lead_created_at'],
        unique=False, postgresql_include=['to_stage', 'stay_seconds', 'lead_id'],
        postgresql_where=sa.text('stay_seconds IS NOT NULL'), sqlite_where=sa.text('stay_seconds IS NOT NULL'),
    )
    parts = POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE
    key = KEY.format(month=parts["month"])
    op.execute(BACKFILL.format(columns=COLUMNS, key=key, counts=COUNTS.format(seconds=parts["seconds"])))


def downgrade() -> None:
    op.drop_index('ix_lead_stage_history_cohort_stays', table_name='lead_stage_history')
    op.drop_table("analytics_lead_months")
