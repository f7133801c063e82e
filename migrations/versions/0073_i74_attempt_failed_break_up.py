"""The break-up rule fires on a failed attempt that counts (lead.attempt_failed: a call nobody
answered at once, a text or email once its reply window passed, one a business day; issue 74)
instead of on every outbound activity, and its note to the coordinator says what will happen
rather than that the email went; in clinics that never edited it (a clinic's own edit stays).
No schema change.

Revision ID: 0073_i74_attempt_failed_break_up
Revises: 0072_i74_shared_sender_replies
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app.platform.db import JSONType, UTCDateTime

revision = "0073_i74_attempt_failed_break_up"
down_revision = "0072_i74_shared_sender_replies"
branch_labels = None
depends_on = None

DEFAULT_KEY = "three_failed_attempts"
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
            "body": "A break-up email is planned: it goes at the first hour the family may be written to, unless they reply or book first. Consider marking the lead lost.",
        },
    ],
}


def upgrade() -> None:
    """The unedited rule (seeded, or last written by the system) takes the new definition as its
    next version."""
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
    stale = conn.execute(
        sa.select(rules.c.id, rules.c.version, rules.c.stop_processing, rules.c.active).where(
            rules.c.default_key == DEFAULT_KEY,
            sa.or_(rules.c.version == 1, rules.c.updated_by == "system"),
        )
    ).all()
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


def downgrade() -> None:
    # The rule stays as upgraded: the release before it has no lead.attempt_failed events, so the
    # rule does not fire there; a clinic can edit it back.
    pass
