"""lead_activities.replied_at: on an automated message the family answered within the reply window,
when its first answer came (app/domains/analytics/rollups.py keeps it with `replied`), so the
follow-up response report reads the time to the family's reply instead of probing each message's
first reply at report time (1.8 s for two years over 20,000 leads and 200,000 activities).

Expand-only: a nullable column, backfilled here (the statements frozen; rollups keeps it after).

Revision ID: 0060_w2_reply_rollup
Revises: 0058_i59_media
Create Date: 2026-11-28 02:50:00
"""

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0060_w2_reply_rollup"
down_revision = "0058_i59_media"
branch_labels = None
depends_on = None

AUTOMATED = "direction = 'OUTBOUND' AND actor = 'system' AND type IN ('EMAIL', 'SMS', 'DIRECT_MESSAGE')"
REPLY_WINDOW_SECONDS = 72 * 3600

BACKFILL_POSTGRESQL = f"""
    UPDATE lead_activities m SET replied_at = (
        SELECT min(r.occurred_at) FROM lead_activities r
        WHERE r.lead_id = m.lead_id AND r.direction = 'INBOUND' AND r.occurred_at > m.occurred_at
          AND r.occurred_at <= m.occurred_at + interval '{REPLY_WINDOW_SECONDS} seconds')
    WHERE m.replied AND m.{AUTOMATED.replace(" AND ", " AND m.")}
"""
BACKFILL_SQLITE = f"""
    UPDATE lead_activities SET replied_at = (
        SELECT min(r.occurred_at) FROM lead_activities r
        WHERE r.lead_id = lead_activities.lead_id AND r.direction = 'INBOUND'
          AND r.occurred_at > lead_activities.occurred_at
          AND (julianday(r.occurred_at) - julianday(lead_activities.occurred_at)) * 86400.0
              <= {REPLY_WINDOW_SECONDS})
    WHERE replied AND {AUTOMATED}
"""


def upgrade() -> None:
    with op.batch_alter_table("lead_activities") as batch:
        batch.add_column(sa.Column("replied_at", app.platform.db.UTCDateTime(timezone=True), nullable=True))
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute(BACKFILL_POSTGRESQL if postgresql else BACKFILL_SQLITE)


def downgrade() -> None:
    with op.batch_alter_table("lead_activities") as batch:
        batch.drop_column("replied_at")
