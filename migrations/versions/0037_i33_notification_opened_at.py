"""notifications.opened_at: when the provider reported the email opened (SendGrid's `open` event)

Revision ID: 0037_i33_notification_opened_at
Revises: 0036_i36_sla_clocks
Create Date: 2026-11-25 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0037_i33_notification_opened_at"
down_revision = "0036_i36_sla_clocks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: a batch rebuild would drop a table others reference.
    op.add_column("notifications", sa.Column("opened_at", app.platform.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("notifications", "opened_at")
