"""booking page (issue 62 item 3): each clinic's booking page settings: its public key (the page's
address), the website origins that may embed it, the cut-off for a family's own changes.

Expand-only: a new table; a clinic without a row has no public page until an admin opens its settings.

Revision ID: 0056_i62_booking_page
Revises: 0053_i64_search_trigrams (0047_i58_signing_secrets in the wave's plan: re-chained at merge)
Create Date: 2026-11-27 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0056_i62_booking_page"
down_revision = "0053_i64_search_trigrams"
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


def downgrade() -> None:
    op.drop_table("booking_page_settings")
