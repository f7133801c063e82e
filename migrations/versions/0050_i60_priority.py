"""leads.priority (normal, high, urgent; default normal) with an index of the leads above normal;
lead_tasks.escalate_after_minutes (a rule's urgent call escalates minutes after its due time); where
no clinic edited them, the default "pending decision: check in" becomes a weekly follow-up and speed
to lead leaves an urgent lead to the urgent call

Revision ID: 0050_i60_priority
Revises: 0049_i60_engagement
Create Date: 2026-11-27 23:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.platform.db import JSONType, UTCDateTime

revision = "0050_i60_priority"
down_revision = "0049_i60_engagement"
branch_labels = None
depends_on = None

ABOVE_NORMAL = sa.text("priority <> 'normal'")

# Frozen here (not imported from app/) so this migration means the same whatever the defaults become.
NEW_DEFINITIONS = {
    "speed_to_lead": {
        "name": "Speed to lead: initial contact",
        "description": "A new lead gets a call task due 5 business minutes after capture; its coordinator is told. An urgent lead gets the urgent call instead (one call task, not two).",
        "trigger": "lead.created",
        "priority": 10,
        "conditions": [{"field": "lead.priority", "operator": "not_equals", "value": "urgent"}],
        "actions": [
            {
                "type": "create_task",
                "title": "Initial contact",
                "task_type": "CALL",
                "priority": "HIGH",
                "description": "Call the new lead: speed to lead wins consultations.",
                "assignee": {"kind": "lead_owner"},
                "delay": {"amount": 5, "unit": "business_minutes"},
            },
            {
                "type": "notify",
                "lead_owner": True,
                "kind": "new_lead",
                "title": "New lead: {{ first_name }} {{ last_name }}",
                "body": "Call before {{ task_due_at }}",
            },
        ],
    },
    "pending_decision_check_in": {
        "name": "Pending decision: weekly follow-up",
        "description": "A lead pending a decision gets a check-in call every 7 days of that stay, up to 4 times; the owner is told. Leaving the stage, or closing, ends it.",
        "trigger": "lead.stage_changed",
        "priority": 50,
        "conditions": [{"field": "event.new_stage", "operator": "equals", "value": "pending_decision"}],
        "actions": [
            {
                "type": "recurring_follow_up",
                "every_days": 7,
                "times": 4,
                "while_stage": "pending_decision",
                "title": "Check in on the treatment decision",
                "task_type": "CALL",
                "priority": "NORMAL",
                "assignee": {"kind": "lead_owner"},
                "notify_owner": True,
            }
        ],
    },
}


def upgrade() -> None:
    # Plain ADD COLUMN on both engines (a batch rebuild would drop a table others reference); a
    # server default, so the previous release's INSERTs (which do not name it) still work.
    op.add_column(
        "leads", sa.Column("priority", sa.String(8), nullable=False, server_default=sa.text("'normal'"))
    )
    op.create_index(
        "ix_leads_clinic_priority",
        "leads",
        ["clinic_id", "priority", "created_at"],
        postgresql_where=ABOVE_NORMAL,
        sqlite_where=ABOVE_NORMAL,
    )
    op.add_column("lead_tasks", sa.Column("escalate_after_minutes", sa.Integer(), nullable=True))
    _upgrade_unedited_defaults()


def _upgrade_unedited_defaults() -> None:
    """A default rule nobody edited (seeded, or last written by the system) takes the new
    definition as its next version; a clinic's own edits are left alone."""
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
            sa.select(rules.c.id, rules.c.version, rules.c.stop_processing, rules.c.active).where(
                rules.c.default_key == default_key,
                sa.or_(rules.c.version == 1, rules.c.updated_by == "system"),
            )
        ).all()
        for rule_id, version, stop_processing, active in stale:
            conn.execute(
                sa.update(rules)
                .where(rules.c.id == rule_id)
                .values(**new, version=version + 1, updated_at=now, updated_by="system")
            )
            conn.execute(
                sa.insert(versions).values(
                    rule_id=rule_id,
                    version=version + 1,
                    definition={**new, "stop_processing": stop_processing, "active": active},
                    created_at=now,
                    created_by="system",
                )
            )


def downgrade() -> None:
    # The weekly follow-up's rule stays as upgraded: the release before it skips its steps (no
    # executor) and a clinic can edit it back; the columns go.
    op.drop_column("lead_tasks", "escalate_after_minutes")
    op.drop_index("ix_leads_clinic_priority", table_name="leads")
    op.drop_column("leads", "priority")
