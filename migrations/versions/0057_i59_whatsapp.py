"""leads.whatsapp_opt_out and its source: a STOP sent on WhatsApp opts the lead out of WhatsApp
(as a texted STOP does of SMS), and only the person's own START opts them back in

Revision ID: 0057_i59_whatsapp
Revises: 0059_i64_speed_rollups
Create Date: 2026-11-28 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0057_i59_whatsapp"
down_revision = "0059_i64_speed_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both engines (a batch rebuild would drop a table others reference); a
    # server default, so the previous release's INSERTs (which do not name it) still work.
    op.add_column(
        "leads", sa.Column("whatsapp_opt_out", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("leads", sa.Column("whatsapp_opt_out_source", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("whatsapp_opt_out_source")
        batch.drop_column("whatsapp_opt_out")
