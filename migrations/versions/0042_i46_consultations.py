"""consultations: a lead's consultations (booked, moved, attended, missed, cancelled); the default
confirmation now at booking and the post-consultation follow-up counted from the check-in, in
clinics that never edited them

Revision ID: 0042_i46_consultations
Revises: 0041_i47_stream_events
Create Date: 2026-11-26 06:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import app.platform.db
from app.platform.db import JSONType, UTCDateTime

revision = "0042_i46_consultations"
down_revision = "0041_i47_stream_events"
branch_labels = None
depends_on = None

# Frozen here (not imported from app/) so this migration means the same whatever the defaults become.
NEW_DEFINITIONS = {
    "consultation_confirmation": {
        "name": "Consultation booked: confirmation",
        "description": "A consultation booked (or moved to a new time) gets a confirmation message at once, with its time in the family's timezone.",
        "trigger": "consultation.scheduled",
        "priority": 30,
        "conditions": [],
        "actions": [
            {
                "type": "send_email",
                "subject": "Your consultation at {{ clinic_name }}",
                "body": "Hi {{ first_name }},\n\nThank you for booking a consultation with {{ clinic_name }}: {{ consultation_time }}. We look forward to meeting you. Reply to this email if you need to change the time.",
            }
        ],
    },
    "consultation_follow_up": {
        "name": "Consultation attended: follow-up call",
        "description": "Three business days after the family checked in for their consultation, if the lead is still open, undecided and not contacted since, a call to answer questions and hear the decision; the owner is told.",
        "trigger": "consultation.attended",
        "priority": 40,
        "conditions": [],
        "actions": [
            {
                "type": "create_task",
                "title": "Follow up after the consultation",
                "task_type": "CALL",
                "priority": "NORMAL",
                "assignee": {"kind": "lead_owner"},
                "delay": {"amount": 3, "unit": "business_days"},
                "deferred": True,
                "recheck": {
                    "stages": ["consultation_completed", "pending_decision"],
                    "no_contact_since_event": True,
                },
                "notify_owner": True,
            }
        ],
    },
}


def upgrade() -> None:
    moment = app.platform.db.UTCDateTime(timezone=True)
    op.create_table(
        "consultations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("starts_at", moment, nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(200), nullable=True),
        sa.Column("provider_name", sa.String(120), nullable=True),
        sa.Column("external_id", sa.String(120), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", moment, nullable=True),
        sa.Column("reschedule_requested_at", moment, nullable=True),
        sa.Column("checked_in_at", moment, nullable=True),
        sa.Column("no_show_at", moment, nullable=True),
        sa.Column("cancelled_at", moment, nullable=True),
        sa.Column("source_updated_at", moment, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_consultations_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_consultations_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultations")),
        sa.UniqueConstraint("clinic_id", "external_id", name=op.f("uq_consultations_clinic_id_external_id")),
    )
    op.create_index("ix_consultations_clinic_starts_at", "consultations", ["clinic_id", "starts_at"])
    op.create_index("ix_consultations_lead_id", "consultations", ["lead_id"])
    _upgrade_unedited_defaults()


def _upgrade_unedited_defaults() -> None:
    """A default rule nobody edited (seeded, or last written by the system: 0024) takes the new
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
    op.drop_index("ix_consultations_lead_id", table_name="consultations")
    op.drop_index("ix_consultations_clinic_starts_at", table_name="consultations")
    op.drop_table("consultations")
