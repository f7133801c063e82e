"""The follow-up report's automated messages over a long range from monthly counts (issue 64 item 6):
one row per clinic and UTC month counts the automated messages and those replied
(analytics_message_months), kept by the rollups; each message says whether it is counted
(lead_activities.month_counted), so a replayed event never counts it twice. Over `bench analytics`'s
two years the count read ~290,000 messages from their index (~42 ms of the report); a range's whole
months are now ~24 rows (docs/performance.md).

Expand-only: one column with a default, one table, both filled here (every automated message
counted; the statements frozen, as analytics.rollups.rebuild_message_months runs them).

Revision ID: 0069_i64_message_months
Revises: 0068_i64_speed_spans
Create Date: 2026-11-28 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0069_i64_message_months"
down_revision = "0068_i64_speed_spans"
branch_labels = None
depends_on = None

AUTOMATED = "direction = 'OUTBOUND' AND actor = 'system' AND type IN ('EMAIL', 'SMS', 'DIRECT_MESSAGE')"
MONTH = {
    "postgresql": "CAST(date_trunc('month', timezone('UTC', occurred_at)) AS DATE)",
    "sqlite": "date(occurred_at, 'start of month')",
}


def upgrade() -> None:
    with op.batch_alter_table("lead_activities") as batch:
        batch.add_column(sa.Column("month_counted", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "analytics_message_months",
        sa.Column("clinic_id", sa.Integer, primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("replied", sa.Integer, nullable=False),
    )
    month = MONTH[op.get_bind().dialect.name]
    op.execute(f"UPDATE lead_activities SET month_counted = true WHERE {AUTOMATED}")
    op.execute(
        f"""INSERT INTO analytics_message_months (clinic_id, month, messages, replied)
        SELECT clinic_id, {month}, count(*), count(CASE WHEN replied THEN 1 END)
        FROM lead_activities WHERE {AUTOMATED} AND month_counted
        GROUP BY clinic_id, {month}"""
    )


def downgrade() -> None:
    op.drop_table("analytics_message_months")
    with op.batch_alter_table("lead_activities") as batch:
        batch.drop_column("month_counted")
