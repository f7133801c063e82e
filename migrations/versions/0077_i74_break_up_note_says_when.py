"""The break-up rule's note to the coordinator says when the email goes, in the clinic's time
("The break-up email goes at 8:00 AM unless they reply or book first"), instead of "at the first
hour the family may be written to" (issue 74); in clinics whose rule still has the seeded note (a
clinic's own edit stays). No schema change.

Revision ID: 0077_i74_break_up_note_says_when
Revises: 0076_i74_follow_up_pass
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.platform.db import JSONType, UTCDateTime

revision = "0077_i74_break_up_note_says_when"
down_revision = "0076_i74_follow_up_pass"
branch_labels = None
depends_on = None

DEFAULT_KEY = "three_failed_attempts"
OLD_NOTE = (
    "A break-up email is planned: it goes at the first hour the family may be written to, unless "
    "they reply or book first. Consider marking the lead lost."
)
NEW_NOTE = "The break-up email {{ email_goes_at }}. Consider marking the lead lost."
# Frozen here (not imported from app/) so this migration means the same whatever the defaults become.
NEW_DEFINITION = {
    "name": "Three failed attempts: break-up email",
    "description": "At the third failed attempt in a row (a call nobody answered; an email or text whose reply window passed unanswered; staff's or automation's; one a business day) with no contact between: one break-up email, a 'mark lost' suggestion and a note to the coordinator. Any engagement before it goes cancels it.",
    "trigger": "lead.attempt_failed",
    "priority": 70,
    "conditions": [{"field": "event.failed_attempts", "operator": "equals", "value": 3}],
    "actions": [
        {
            "type": "send_email",
            "once_per_lead": True,
            "break_up": True,
            "subject": "Should we close your file, {{ first_name }}?",
            "body": "Hi {{ first_name }},\n\nWe have tried to reach you a few times about your visit to {{ clinic_name }} and have not managed to. We don't want to keep bothering you, so we will close your file unless we hear from you. If you are still interested, just reply to this email and we will be in touch, or book your consultation yourself: {{ booking_link }}\n\nAll the best,\n{{ clinic_name }}",
        },
        {"type": "suggest", "suggestion": "mark_lost"},
        {
            "type": "notify",
            "lead_owner": True,
            "kind": "automation",
            "title": "Three failed attempts: {{ first_name }} {{ last_name }}",
            "body": NEW_NOTE,
        },
    ],
}


def upgrade() -> None:
    """The unedited rule (seeded, or last written by the system, still with the old note) takes the
    new definition as its next version."""
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
    unedited = conn.execute(
        sa.select(rules.c.id, rules.c.version, rules.c.stop_processing, rules.c.active, rules.c.actions).where(
            rules.c.default_key == DEFAULT_KEY,
            sa.or_(rules.c.version == 1, rules.c.updated_by == "system"),
        )
    ).all()
    stale = [row[:4] for row in unedited if _has_old_note(row.actions)]
    for rule_id, version, stop_processing, active in stale:
        conn.execute(
            sa.update(rules)
            .where(rules.c.id == rule_id)
            .values(**NEW_DEFINITION, version=version + 1, updated_at=now, updated_by="system")
        )
        conn.execute(
            sa.insert(versions).values(
                rule_id=rule_id,
                version=version + 1,
                definition={**NEW_DEFINITION, "stop_processing": stop_processing, "active": active},
                created_at=now,
                created_by="system",
            )
        )


def _has_old_note(actions) -> bool:
    return any(a.get("type") == "notify" and a.get("body") == OLD_NOTE for a in actions or [])


def downgrade() -> None:
    # The rule keeps the new note: the release before it fills no email_goes_at, so a clinic on it
    # would read the field's name; edit the note there if going back.
    pass
