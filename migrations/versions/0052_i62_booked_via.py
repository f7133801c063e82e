"""consultations.booked_via: how each consultation was booked (staff, webhook, self), for the reports

Existing rows: the ones the booking system's webhook made (created_by 'booking_system') are
'webhook', every other one 'staff' (a person or an API key). The column has a server default, so
the previous release, which does not know it, keeps inserting during a rolling deploy ('staff').

Revision ID: 0052_i62_booked_via
Revises: 0051_i62_availability
Create Date: 2026-11-27 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0052_i62_booked_via"
down_revision = "0051_i62_availability"
branch_labels = None
depends_on = None

# app/domains/consultations/appointments.py: the webhook's actor
WEBHOOK_ACTOR = "booking_system"


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: a batch rebuild would drop a table others reference.
    op.add_column(
        "consultations",
        sa.Column("booked_via", sa.String(16), server_default="staff", nullable=False),
    )
    consultations = sa.table("consultations", sa.column("created_by"), sa.column("booked_via"))
    op.execute(
        consultations.update().where(consultations.c.created_by == WEBHOOK_ACTOR).values(booked_via="webhook")
    )


def downgrade() -> None:
    op.drop_column("consultations", "booked_via")
