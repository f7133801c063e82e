"""analytics rollups (first outbound contact, furthest stage, cohort time of stays, replied messages)
with covering indexes; webhook delivery attempts (claim, POST after commit, outcome)

Revision ID: 0010_analytics_rollups
Revises: 0009_outreach
Create Date: 2026-11-23 06:30:00

The summary columns are backfilled here from the raw rows, with the statements frozen in this file
(app/domains/analytics/rollups.py keeps them right afterwards and has the same definitions).
"""

from alembic import op
import sqlalchemy as sa
import app.platform.db

revision = '0010_analytics_rollups'
down_revision = '0009_outreach'
branch_labels = None
depends_on = None

AUTOMATED = "direction = 'OUTBOUND' AND actor = 'system' AND type IN ('EMAIL', 'SMS')"
CONTACT_TYPES = "('PHONE_CALL', 'EMAIL', 'SMS', 'IN_PERSON')"
REPLY_WINDOW_SECONDS = 72 * 3600

# PostgreSQL: set-based (one pass over each table). SQLite: correlated subqueries.
BACKFILL_POSTGRESQL = [
    f"""
    UPDATE leads SET first_outbound_contact_at = f.first
    FROM (SELECT lead_id, min(occurred_at) AS first FROM lead_activities
          WHERE direction = 'OUTBOUND' AND type IN {CONTACT_TYPES} AND actor <> 'system'
          GROUP BY lead_id) AS f
    WHERE leads.id = f.lead_id
    """,
    """
    UPDATE leads SET furthest_stage = f.slug
    FROM (SELECT DISTINCT ON (h.lead_id) h.lead_id, s.slug
          FROM lead_stage_history h
          JOIN pipeline_stages s ON s.clinic_id = h.clinic_id AND s.slug = h.to_stage
          WHERE s.slug <> 'lost'
          ORDER BY h.lead_id, s.position DESC) AS f
    WHERE leads.id = f.lead_id
    """,
    """
    UPDATE lead_stage_history SET lead_created_at = leads.created_at,
        stay_seconds = date_part('epoch', lead_stage_history.left_at - lead_stage_history.entered_at)
    FROM leads WHERE leads.id = lead_stage_history.lead_id
    """,
    f"""
    UPDATE lead_activities m SET replied = true
    WHERE m.{AUTOMATED.replace(' AND ', ' AND m.')} AND EXISTS (
        SELECT 1 FROM lead_activities r
        WHERE r.lead_id = m.lead_id AND r.direction = 'INBOUND' AND r.occurred_at > m.occurred_at
          AND r.occurred_at <= m.occurred_at + interval '{REPLY_WINDOW_SECONDS} seconds')
    """,
]
BACKFILL_SQLITE = [
    f"""
    UPDATE leads SET first_outbound_contact_at = (
        SELECT min(occurred_at) FROM lead_activities a
        WHERE a.lead_id = leads.id AND a.direction = 'OUTBOUND' AND a.type IN {CONTACT_TYPES}
          AND a.actor <> 'system')
    """,
    """
    UPDATE leads SET furthest_stage = (
        SELECT s.slug FROM lead_stage_history h
        JOIN pipeline_stages s ON s.clinic_id = h.clinic_id AND s.slug = h.to_stage
        WHERE h.lead_id = leads.id AND s.slug <> 'lost' ORDER BY s.position DESC LIMIT 1)
    """,
    """
    UPDATE lead_stage_history SET lead_created_at = (
        SELECT created_at FROM leads WHERE leads.id = lead_stage_history.lead_id),
        stay_seconds = (julianday(left_at) - julianday(entered_at)) * 86400.0
    """,
    f"""
    UPDATE lead_activities SET replied = 1
    WHERE {AUTOMATED} AND EXISTS (
        SELECT 1 FROM lead_activities r
        WHERE r.lead_id = lead_activities.lead_id AND r.direction = 'INBOUND'
          AND r.occurred_at > lead_activities.occurred_at
          AND (julianday(r.occurred_at) - julianday(lead_activities.occurred_at)) * 86400.0
              <= {REPLY_WINDOW_SECONDS})
    """,
]


def upgrade() -> None:
    with op.batch_alter_table('leads') as batch:
        batch.add_column(sa.Column('first_outbound_contact_at', app.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('furthest_stage', sa.String(length=64), nullable=True))
    with op.batch_alter_table('lead_stage_history') as batch:
        batch.add_column(sa.Column('lead_created_at', app.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('stay_seconds', sa.Float(), nullable=True))
    with op.batch_alter_table('lead_activities') as batch:
        batch.add_column(sa.Column('replied', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('webhook_deliveries') as batch:
        batch.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('sending_at', app.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('next_attempt_at', app.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('last_error', sa.Text(), nullable=True))

    bind = op.get_bind()
    for statement in BACKFILL_POSTGRESQL if bind.dialect.name == 'postgresql' else BACKFILL_SQLITE:
        op.execute(statement)
    # Deliveries made before this revision: their attempts were counted by their ledger job.
    op.execute(
        "UPDATE webhook_deliveries SET attempts = coalesce("
        "(SELECT attempts FROM scheduled_jobs j WHERE j.id = webhook_deliveries.job_id), 0)"
    )

    op.create_index(
        'ix_leads_analytics_cohort', 'leads', ['clinic_id', 'created_at'], unique=False,
        postgresql_include=[
            'deleted_at', 'status', 'assigned_to_id', 'source_id', 'lost_reason', 'pipeline_stage',
            'furthest_stage', 'first_outbound_contact_at',
        ],
    )
    op.create_index(
        'ix_lead_stage_history_stay_lengths', 'lead_stage_history', ['clinic_id', 'to_stage', 'stay_seconds'],
        unique=False, postgresql_include=['lead_created_at', 'lead_id'],
        postgresql_where=sa.text('stay_seconds IS NOT NULL'), sqlite_where=sa.text('stay_seconds IS NOT NULL'),
    )
    op.create_index(
        'ix_lead_activities_automated_messages', 'lead_activities', ['clinic_id', 'occurred_at'],
        unique=False, postgresql_include=['lead_id', 'replied'],
        postgresql_where=sa.text(AUTOMATED), sqlite_where=sa.text(AUTOMATED),
    )
    op.create_index(
        'ix_leads_clinic_deleted', 'leads', ['clinic_id'], unique=False,
        postgresql_where=sa.text('deleted_at IS NOT NULL'), sqlite_where=sa.text('deleted_at IS NOT NULL'),
    )
    op.create_index(
        'ix_lead_tasks_clinic_due', 'lead_tasks', ['clinic_id', 'due_at'], unique=False,
        postgresql_include=['status', 'completed_at', 'assigned_to_id', 'lead_id'],
    )


def downgrade() -> None:
    op.drop_index('ix_lead_tasks_clinic_due', table_name='lead_tasks')
    op.drop_index('ix_lead_activities_automated_messages', table_name='lead_activities')
    op.drop_index('ix_lead_stage_history_stay_lengths', table_name='lead_stage_history')
    op.drop_index('ix_leads_clinic_deleted', table_name='leads')
    op.drop_index('ix_leads_analytics_cohort', table_name='leads')
    with op.batch_alter_table('webhook_deliveries') as batch:
        batch.drop_column('last_error')
        batch.drop_column('next_attempt_at')
        batch.drop_column('sending_at')
        batch.drop_column('attempts')
    with op.batch_alter_table('lead_activities') as batch:
        batch.drop_column('replied')
    with op.batch_alter_table('lead_stage_history') as batch:
        batch.drop_column('stay_seconds')
        batch.drop_column('lead_created_at')
    with op.batch_alter_table('leads') as batch:
        batch.drop_column('furthest_stage')
        batch.drop_column('first_outbound_contact_at')
