"""The automated messages' partial index covers what the follow-up response report reads of each
message (its type, when the family replied, and the ids in `details` that name its thread message
and automation step), so the report reads the messages of a range from the index alone instead of
a table page per message: 285,000 messages over two years in `bench analytics`
(docs/performance.md, "Reports over two years"). `details` of an automated message holds ids and
flags only (notification, step, template, break-up), no message text.

Revision ID: 0063_i64_reply_index
Revises: 0062_i64_board_index
Create Date: 2026-11-28 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0063_i64_reply_index"
down_revision = "0062_i64_board_index"
branch_labels = None
depends_on = None

AUTOMATED = "direction = 'OUTBOUND' AND actor = 'system' AND type IN ('EMAIL', 'SMS', 'DIRECT_MESSAGE')"


def _automated_index(include: list[str]) -> None:
    op.drop_index("ix_lead_activities_automated_messages", table_name="lead_activities")
    op.create_index(
        "ix_lead_activities_automated_messages",
        "lead_activities",
        ["clinic_id", "occurred_at"],
        postgresql_include=include,
        postgresql_where=sa.text(AUTOMATED),
        sqlite_where=sa.text(AUTOMATED),
    )


def upgrade() -> None:
    _automated_index(["lead_id", "replied", "replied_at", "type", "details"])


def downgrade() -> None:
    _automated_index(["lead_id", "replied"])
