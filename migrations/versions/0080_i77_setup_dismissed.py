"""setup checklist (issue 77 item 2): a clinic admin may dismiss the console's setup checklist, after
which nobody is sent to it at login; when (`clinics.setup_dismissed_at`).

Expand-only: one nullable column; every clinic starts with its checklist not dismissed.

Revision ID: 0080_i77_setup_dismissed
Revises: 0079_i77_import_mappings
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0080_i77_setup_dismissed"
down_revision = "0079_i77_import_mappings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clinics", sa.Column("setup_dismissed_at", app.platform.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Not in a batch: SQLite drops an unindexed column in place, where a batch copies the table.
    op.drop_column("clinics", "setup_dismissed_at")
