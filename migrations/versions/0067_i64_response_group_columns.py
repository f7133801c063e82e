"""Follow-up response over two years without joins or sorts (issue 64 item 6): each automated message
keeps the channel and the sequence the report counts it under (lead_activities.message_channel and
message_sequence_id) and the seconds to the family's reply (reply_seconds), kept by
app/domains/analytics/rollups.py. Two partial indexes hold the automated messages in (clinic,
channel | sequence, reply_seconds) order, so each grouping reads its messages in group order and
its median finds the values already sorted; the automated messages' index covers the three for a
short range. Over `bench analytics`'s 286,000 messages the report's statement joined each message to
its thread message and step (~95 ms) and sorted them by channel, then by sequence (~100 ms each), of
~380 ms (docs/performance.md, "Reports over two years").

Expand-only: three nullable columns, backfilled here (the statements frozen; the rollups keep them
after), two new indexes, and one index gains included columns (same key).

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
AUTOMATED_INCLUDE = ["lead_id", "replied", "replied_at", "type", "details"]
RESPONSE_COLUMNS = ["message_channel", "message_sequence_id", "reply_seconds"]
# The seconds as the report worked them out (analytics.queries.seconds_between), to the last bit.
SECONDS_POSTGRESQL = "date_part('epoch', replied_at - occurred_at)"
SECONDS_SQLITE = "(julianday(replied_at) - julianday(occurred_at)) * 86400.0"


def _backfill(details_id, seconds: str) -> str:
    """The UPDATE setting the three columns, `details_id(key)` the dialect's integer read from
    `details`, `seconds` its seconds from the message to its reply."""
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
                WHERE s.id = {details_id("automation_step_id")} LIMIT 1),
            reply_seconds = {seconds}
        WHERE {AUTOMATED}
    """


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
    with op.batch_alter_table("lead_activities") as batch:
        for column in RESPONSE_COLUMNS:
            kind = {
                "message_channel": sa.String(32),
                "message_sequence_id": sa.Integer,
                "reply_seconds": sa.Float,
            }
            batch.add_column(sa.Column(column, kind[column], nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            _backfill(lambda key: f"CAST(lead_activities.details ->> '{key}' AS INTEGER)", SECONDS_POSTGRESQL)
        )
    else:
        op.execute(
            _backfill(
                lambda key: f"CAST(json_extract(lead_activities.details, '$.{key}') AS INTEGER)",
                SECONDS_SQLITE,
            )
        )
    for group in GROUPS:
        op.create_index(
            f"ix_lead_activities_automated_by_{group}",
            "lead_activities",
            ["clinic_id", f"message_{group}", "reply_seconds", "occurred_at"],
            postgresql_include=["lead_id", "replied"],
            postgresql_where=sa.text(AUTOMATED),
            sqlite_where=sa.text(AUTOMATED),
        )
    _automated_index([*AUTOMATED_INCLUDE, *RESPONSE_COLUMNS])


def downgrade() -> None:
    _automated_index(AUTOMATED_INCLUDE)
    for group in GROUPS:
        op.drop_index(f"ix_lead_activities_automated_by_{group}", table_name="lead_activities")
    with op.batch_alter_table("lead_activities") as batch:
        for column in reversed(RESPONSE_COLUMNS):
            batch.drop_column(column)
