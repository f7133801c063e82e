"""Staleness kept on the lead (once per stay, once per quiet spell, whatever the ledger's purge);
the orphan sweep's position and counts; the default post-consultation follow-up and pending-decision
check-in become deferred steps in clinics that never edited them.

Revision ID: 0024_i14b_staleness
"""

import sqlalchemy as sa
from alembic import op

from datetime import UTC, datetime

from app.platform.db import JSONType, UTCDateTime

revision = "0024_i14b_staleness"
down_revision = "0023_i16a_token_version"
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


    _upgrade_unedited_defaults()


RULE_FIELDS = ("name", "description", "trigger", "conditions", "actions", "priority")
# Frozen here (not imported from app/) so this migration means the same whatever the defaults become.
NEW_DEFINITIONS = {'consultation_follow_up': {'name': 'Consultation completed: follow-up call', 'description': 'Three business days after the consultation, if the lead is still open, undecided and not contacted since, a call to answer questions and hear the decision; the owner is told.', 'trigger': 'lead.stage_changed', 'conditions': [{'field': 'event.new_stage', 'operator': 'equals', 'value': 'consultation_completed'}], 'actions': [{'type': 'create_task', 'title': 'Follow up after the consultation', 'task_type': 'CALL', 'priority': 'NORMAL', 'assignee': {'kind': 'lead_owner'}, 'delay': {'amount': 3, 'unit': 'business_days'}, 'deferred': True, 'recheck': {'stages': ['consultation_completed', 'pending_decision'], 'no_contact_since_event': True}, 'notify_owner': True}], 'priority': 40}, 'pending_decision_check_in': {'name': 'Pending decision: check in', 'description': 'A lead still pending a decision 7 days after entering that stage gets one check-in call for that stay; the owner is told.', 'trigger': 'lead.stage_changed', 'conditions': [{'field': 'event.new_stage', 'operator': 'equals', 'value': 'pending_decision'}], 'actions': [{'type': 'create_task', 'title': 'Check in on the treatment decision', 'task_type': 'CALL', 'priority': 'NORMAL', 'assignee': {'kind': 'lead_owner'}, 'delay': {'amount': 7, 'unit': 'days'}, 'deferred': True, 'recheck': {'stages': ['pending_decision'], 'same_stay': True}, 'notify_owner': True}], 'priority': 50}}


def _upgrade_unedited_defaults() -> None:
    """A default rule still at its seeded version 1 takes the new definition, as version 2 (a
    clinic's own edits, version 2 and up, are left alone)."""
    rules = sa.table(
        "automation_rules",
        sa.column("id", sa.Integer),
        sa.column("default_key", sa.String),
        sa.column("version", sa.Integer),
        sa.column("stop_processing", sa.Boolean),
        sa.column("active", sa.Boolean),
        sa.column("updated_at", UTCDateTime(timezone=True)),
        sa.column("updated_by", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("trigger", sa.String),
        sa.column("conditions", JSONType),
        sa.column("actions", JSONType),
        sa.column("priority", sa.Integer),
    )
    versions = sa.table(
        "automation_rule_versions",
        sa.column("rule_id", sa.Integer),
        sa.column("version", sa.Integer),
        sa.column("definition", JSONType),
        sa.column("created_at", UTCDateTime(timezone=True)),
        sa.column("created_by", sa.String),
    )
    conn, now = op.get_bind(), datetime.now(UTC)
    for default_key, new in NEW_DEFINITIONS.items():
        stale = conn.execute(
            sa.select(rules.c.id, rules.c.stop_processing, rules.c.active).where(
                rules.c.default_key == default_key, rules.c.version == 1
            )
        ).all()
        for rule_id, stop_processing, active in stale:
            conn.execute(
                sa.update(rules)
                .where(rules.c.id == rule_id)
                .values(**new, version=2, updated_at=now, updated_by="system")
            )
            conn.execute(
                sa.insert(versions).values(
                    rule_id=rule_id,
                    version=2,
                    definition={**new, "stop_processing": stop_processing, "active": active},
                    created_at=now,
                    created_by="system",
                )
            )


def downgrade() -> None:
    op.drop_table("orphan_sweeps")
    op.drop_index("ix_leads_quiet_due", table_name="leads")
    op.drop_index("ix_leads_stage_stale_due", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("quiet_flagged_at")
        batch.drop_column("last_activity_at")
        batch.drop_column("stage_stale_at")
