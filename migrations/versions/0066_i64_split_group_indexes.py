"""Speed to lead's split over two years without sorting the cohort by group (issue 64 item 6): the
medians by coordinator and by source (routing and human minutes) read a range's leads already in
group order from an index each, the split's firsts included (index-only), instead of the whole
range from the cohort index sorted by coordinator, then again by source. Over `bench analytics`'s
100,000 leads the split's statement took ~550 ms (its sort by group ~80 ms, the grouped medians the
rest) and each grouping 60-70 ms through these indexes (PostgreSQL, vacuumed, a busy 2-core host;
docs/performance.md, "Reports over two years").

Expand-only: one index gains included columns (same key), one index is new.

Revision ID: 0066_i64_split_group_indexes
Revises: 0065_i64_board_value_index
Create Date: 2026-11-28 09:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0066_i64_split_group_indexes"
down_revision = "0065_i64_board_value_index"
branch_labels = None
depends_on = None

SPLIT_FIRSTS = ["deleted_at", "assigned_at", "first_task_at", "first_attempt_at", "first_contact_at"]


def _source_index(include: list[str]) -> None:
    op.drop_index("ix_leads_clinic_source_created", table_name="leads")
    op.create_index(
        "ix_leads_clinic_source_created",
        "leads",
        ["clinic_id", "source_id", "created_at"],
        postgresql_include=include,
    )


def upgrade() -> None:
    _source_index(SPLIT_FIRSTS)
    op.create_index(
        "ix_leads_analytics_owner_created",
        "leads",
        ["clinic_id", "assigned_to_id", "created_at"],
        postgresql_include=SPLIT_FIRSTS,
    )


def downgrade() -> None:
    op.drop_index("ix_leads_analytics_owner_created", table_name="leads")
    _source_index([])
