"""provider_send_windows: a clinic's current provider rate-limit window per channel

Revision ID: 0027_i17a_outreach_limits
Revises: 0027_i17a_message_templates
Create Date: 2026-11-23 09:30:00
"""

import sqlalchemy as sa
from alembic import op

from app.platform.db import UTCDateTime

revision = "0027_i17a_outreach_limits"
down_revision = "0027_i17a_message_templates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_send_windows",
        sa.Column("clinic_id", sa.Integer, sa.ForeignKey("clinics.id"), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("window_start", UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("provider_send_windows")
