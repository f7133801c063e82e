"""snoozing a conversation (issue 76 item 5): staff put a thread away until a chosen time; it leaves
the inbox's Open view until then, or until the family writes again (`conversations.snoozed_until`).

Expand-only: one nullable column; every conversation starts not snoozed.

Revision ID: 0082_i76_conversation_snooze
Revises: 0081_i76_lead_patients
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0082_i76_conversation_snooze"
down_revision = "0081_i76_lead_patients"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "conversations", sa.Column("snoozed_until", app.platform.db.UTCDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # Not in a batch: SQLite drops an unindexed column in place, where a batch copies the table.
    op.drop_column("conversations", "snoozed_until")
