"""booking page (issue 62 items 3 and 6): each clinic's booking page settings: its public key (the
page's address), the website origins that may embed it, the cut-off for a family's own changes; and
booking-link events (a link sent in a message, a booking through a link) for the bookings report.

Expand-only: new tables; a clinic without a settings row gets one (and its key) when it is first read.

Revision ID: 0056_i62_booking_page
Revises: 0050_i60_priority
Create Date: 2026-11-27 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0056_i62_booking_page"
down_revision = "0050_i60_priority"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booking_page_settings",
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False, unique=True),
        sa.Column("embed_origins", app.platform.db.JSONType, nullable=False),
        sa.Column("change_cutoff_hours", sa.Integer(), nullable=False, server_default="24"),
        sa.Column("updated_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "booking_link_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_booking_link_events_clinic_at", "booking_link_events", ["clinic_id", "at"])
    op.create_index("ix_booking_link_events_lead_id", "booking_link_events", ["lead_id"])


def downgrade() -> None:
    op.drop_table("booking_link_events")
    op.drop_table("booking_page_settings")
