"""booking page (issue 73 item 6): the form stamps spent on a booking or a move, so a form posted
again is refused rather than booking again.

Expand-only: a new table; a stamp is spent at most an hour after it was drawn, and rows older than
that are deleted as new ones are written.

Revision ID: 0074_i73_booking_form_stamps
Revises: 0073_i74_attempt_failed_break_up
Create Date: 2026-11-29 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0074_i73_booking_form_stamps"
down_revision = "0073_i74_attempt_failed_break_up"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booking_form_stamps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submission_id", sa.String(64), nullable=False, unique=True),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("spent_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_booking_form_stamps_clinic_spent_at", "booking_form_stamps", ["clinic_id", "spent_at"])


def downgrade() -> None:
    op.drop_table("booking_form_stamps")
