"""The pipeline board's index (issue 64 item 2's board, measured by `bench workspace`): leads by
stage and when they entered it, for the board's counts and its closed columns' last 30 days (leads
of a terminal stage by stage entry, newest first), instead of a terminal stage's every lead. Over
100,000 leads (5,000 open, the rest converted or lost over two years) the board's reads took a third
of the time with it; a partial index of open leads by (stage, created_at), also suggested, measured
no better than the existing (clinic_id, pipeline_stage, created_at) and is not added
(docs/performance.md, "Staff workspace").

Expand-only: one index.

Revision ID: 0062_i64_board_index
Revises: 0061_i64_duplicates
Create Date: 2026-11-28 03:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0062_i64_board_index"
down_revision = "0061_i64_duplicates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_leads_clinic_stage_entered", "leads", ["clinic_id", "pipeline_stage", "stage_entered_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_leads_clinic_stage_entered", table_name="leads")
