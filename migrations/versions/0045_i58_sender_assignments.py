"""SMS senders the platform operator assigns to a clinic (the clinics' own numbers and Messaging
Services recorded as assigned); the source of each lead's channel opt-outs

Revision ID: 0045_i58_sender_assignments
Revises: 0044_i45_turns_and_lanes
Create Date: 2026-11-28 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0045_i58_sender_assignments"
down_revision = "0044_i45_turns_and_lanes"
branch_labels = None
depends_on = None

clinics_t = sa.table(
    "clinics",
    sa.column("id", sa.Integer),
    sa.column("sms_number", sa.String),
    sa.column("sms_messaging_service_sid", sa.String),
    sa.column("created_at", app.platform.db.UTCDateTime(timezone=True)),
)
assigned_t = sa.table(
    "assigned_sms_senders",
    sa.column("clinic_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("sender", sa.String),
    sa.column("assigned_at", app.platform.db.UTCDateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table(
        "assigned_sms_senders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("sender", sa.String(34), nullable=False),
        sa.Column("assigned_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_assigned_sms_senders_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assigned_sms_senders")),
        sa.UniqueConstraint("sender", name=op.f("uq_assigned_sms_senders_sender")),
    )
    op.create_index(op.f("ix_assigned_sms_senders_clinic_id"), "assigned_sms_senders", ["clinic_id"])
    _assign_what_clinics_hold()
    # Nullable, no default: PostgreSQL adds them without rewriting the table. An opt-out already
    # recorded keeps a null source, which counts as the person's own (app/domains/leads/rules.py).
    op.add_column("leads", sa.Column("sms_opt_out_source", sa.String(32), nullable=True))
    op.add_column("leads", sa.Column("email_opt_out_source", sa.String(32), nullable=True))


def _assign_what_clinics_hold() -> None:
    """A number or Messaging Service a clinic already sends from keeps working: recorded as assigned
    to it (the columns are unique, so each is one clinic's). The shared SMS_FROM is configuration,
    not known here: a clinic's claim on it is recorded too, and never honoured (the application
    treats SMS_FROM as no clinic's own, whatever is recorded); the operator may release it."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            clinics_t.c.id,
            clinics_t.c.sms_number,
            clinics_t.c.sms_messaging_service_sid,
            clinics_t.c.created_at,
        ).order_by(clinics_t.c.id)
    ).all()
    values = [
        {"clinic_id": clinic_id, "kind": kind, "sender": sender, "assigned_at": created_at}
        for clinic_id, number, service, created_at in rows
        for kind, sender in (("number", number), ("messaging_service", service))
        if sender
    ]
    if values:
        conn.execute(sa.insert(assigned_t), values)


def downgrade() -> None:
    # Plain DROP COLUMN on both engines: a batch rebuild would drop a table others reference.
    op.drop_column("leads", "email_opt_out_source")
    op.drop_column("leads", "sms_opt_out_source")
    op.drop_index(op.f("ix_assigned_sms_senders_clinic_id"), table_name="assigned_sms_senders")
    op.drop_table("assigned_sms_senders")
