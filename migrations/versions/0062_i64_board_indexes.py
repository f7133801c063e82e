"""The pipeline board's indexes (issue 64 item 2's board, measured by `bench workspace`): its open
columns' first cards (open leads of a stage, oldest first) and its closed columns' last 30 days
(leads of a terminal stage by when they entered it), each read from an index instead of the stage's
every lead. Over 100,000 leads (5,000 open) the board's reads took half the time with them
(docs/performance.md, "Staff workspace").

Expand-only: two indexes.

Revision ID: 0062_i64_board_indexes
Revises: 0058_i59_media
Create Date: 2026-11-28 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0062_i64_board_indexes"
down_revision = "0058_i59_media"
branch_labels = None
depends_on = None

OPEN_LEAD_SQL = "status IN ('NEW', 'ACTIVE') AND deleted_at IS NULL"  # frozen: models.OPEN_LEAD_SQL


def upgrade() -> None:
    op.create_index(
        "ix_leads_board_open",
        "leads",
        ["clinic_id", "pipeline_stage", "created_at"],
        postgresql_where=sa.text(OPEN_LEAD_SQL),
        sqlite_where=sa.text(OPEN_LEAD_SQL),
    )
    op.create_index(
        "ix_leads_clinic_stage_entered", "leads", ["clinic_id", "pipeline_stage", "stage_entered_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_leads_clinic_stage_entered", table_name="leads")
    op.drop_index("ix_leads_board_open", table_name="leads")
