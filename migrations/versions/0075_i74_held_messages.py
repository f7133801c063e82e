"""held messages (issue 74 item 6): a message to a lead held back by quiet hours or pacing keeps until
when and by what (`held_until`, `held_by`), so its thread, timeline and answers can say so.

Expand-only: two nullable columns; messages queued before it show no hold.

Revision ID: 0075_i74_held_messages
Revises: 0074_i73_booking_form_stamps
Create Date: 2026-11-29 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0075_i74_held_messages"
down_revision = "0074_i73_booking_form_stamps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("held_until", app.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("held_by", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("held_by")
        batch.drop_column("held_until")
