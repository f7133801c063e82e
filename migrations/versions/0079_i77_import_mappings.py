"""import from a clinic's spreadsheet (issue 77 item 3): the clinic's last mapping of spreadsheet
headers to lead fields, offered again at its next import.

Expand-only: a new table of one row per clinic; no PHI (column headers only).

Revision ID: 0079_i77_import_mappings
Revises: 0078_i74_no_next_step_reason
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0079_i77_import_mappings"
down_revision = "0078_i74_no_next_step_reason"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lead_import_mappings",
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), primary_key=True),
        sa.Column("columns", app.platform.db.JSONType, nullable=False),
        sa.Column("updated_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lead_import_mappings")
