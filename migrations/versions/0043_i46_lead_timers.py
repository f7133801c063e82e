"""lead_timers: a lead's long timers (recalls, the records expiry reminder, benefits reset nudges)

Revision ID: 0043_i46_lead_timers
Revises: 0042_i46_consultations
Create Date: 2026-11-27 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db
import app.platform.db.protected

revision = "0043_i46_lead_timers"
down_revision = "0042_i46_consultations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = app.platform.db.UTCDateTime(timezone=True)
    op.create_table(
        "lead_timers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("consultation_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fires_on", sa.Date(), nullable=False),
        sa.Column("due_at", moment, nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("note", app.platform.db.protected.EncryptedString(), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("dedupe_key", sa.String(120), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.Column("fired_at", moment, nullable=True),
        sa.Column("cancelled_at", moment, nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_lead_timers_clinic_id_clinics")),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_lead_timers_lead_id_leads")),
        sa.ForeignKeyConstraint(
            ["consultation_id"],
            ["consultations.id"],
            name=op.f("fk_lead_timers_consultation_id_consultations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_timers")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_lead_timers_dedupe_key")),
    )
    op.create_index("ix_lead_timers_lead_id", "lead_timers", ["lead_id"])
    op.create_index("ix_lead_timers_clinic_status", "lead_timers", ["clinic_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_lead_timers_clinic_status", table_name="lead_timers")
    op.drop_index("ix_lead_timers_lead_id", table_name="lead_timers")
    op.drop_table("lead_timers")
