"""Follow-up response over two years without joins or sorts (issue 64 item 6): each automated message
keeps the channel and the sequence the report counts it under (lead_activities.message_channel and
message_sequence_id, kept by app/domains/analytics/rollups.py), and two partial indexes hold the
automated messages in (clinic, channel | sequence, occurred_at) order with what the grouped medians
read. Over `bench analytics`'s 286,000 messages the report's statement joined each message to its
thread message and step (~95 ms) and sorted them by channel, then by sequence (~100 ms each), of
~380 ms (docs/performance.md, "Reports over two years").

Expand-only: two nullable columns, backfilled here (the statements frozen; the rollups keep them
after), and two new indexes.

Revision ID: 0067_i64_response_group_columns
Revises: 0066_i64_split_group_indexes
Create Date: 2026-11-28 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0067_i64_response_group_columns"
down_revision = "0066_i64_split_group_indexes"
branch_labels = None
depends_on = None

AUTOMATED = "direction = 'OUTBOUND' AND actor = 'system' AND type IN ('EMAIL', 'SMS', 'DIRECT_MESSAGE')"
GROUPS = ("channel", "sequence_id")


def _backfill(details_id) -> str:
    """The UPDATE setting both columns, `details_id(key)` the dialect's integer read from `details`."""
    return f"""
        UPDATE lead_activities SET
            message_channel = coalesce(
                (SELECT t.channel FROM conversation_messages t
                 WHERE t.notification_id = {details_id("notification_id")}
                   AND t.clinic_id = lead_activities.clinic_id AND t.direction = 'outbound'
                 ORDER BY t.id LIMIT 1),
                CASE type WHEN 'EMAIL' THEN 'email' WHEN 'SMS' THEN 'sms' END,
                'direct_message'),
            message_sequence_id = (
                SELECT e.sequence_id FROM automation_steps s
                JOIN sequence_enrollments e ON e.id = s.enrollment_id
                WHERE s.id = {details_id("automation_step_id")} LIMIT 1)
        WHERE {AUTOMATED}
    """


def upgrade() -> None:
    with op.batch_alter_table("lead_activities") as batch:
        batch.add_column(sa.Column("message_channel", sa.String(32), nullable=True))
        batch.add_column(sa.Column("message_sequence_id", sa.Integer, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_backfill(lambda key: f"CAST(lead_activities.details ->> '{key}' AS INTEGER)"))
    else:
        op.execute(
            _backfill(lambda key: f"CAST(json_extract(lead_activities.details, '$.{key}') AS INTEGER)")
        )
    for group in GROUPS:
        op.create_index(
            f"ix_lead_activities_automated_by_{group}",
            "lead_activities",
            ["clinic_id", f"message_{group}", "occurred_at"],
            postgresql_include=["lead_id", "replied", "replied_at"],
            postgresql_where=sa.text(AUTOMATED),
            sqlite_where=sa.text(AUTOMATED),
        )


def downgrade() -> None:
    for group in GROUPS:
        op.drop_index(f"ix_lead_activities_automated_by_{group}", table_name="lead_activities")
    with op.batch_alter_table("lead_activities") as batch:
        batch.drop_column("message_sequence_id")
        batch.drop_column("message_channel")
