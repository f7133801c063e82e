"""The pipeline board's value index (issue 64 item 10, measured by `bench workspace`): the clinic's
average recorded treatment value, which each board page reads for its columns' values, from an index
of the valued leads alone (their value its second column: read from the index alone) instead of a
scan of every lead. Over 100,000 leads with a value recorded on 31,667 converted ones the read took
37-60 ms by the scan and 5-9 ms by this index (PostgreSQL, vacuumed, a busy 2-core host;
docs/performance.md, "Staff workspace").

Expand-only: one index.

Revision ID: 0065_i64_board_value_index
Revises: 0064_i61_event_version
Create Date: 2026-11-28 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0065_i64_board_value_index"
down_revision = "0064_i61_event_version"
branch_labels = None
depends_on = None

VALUED = "converted_at IS NOT NULL AND treatment_value IS NOT NULL AND deleted_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_leads_clinic_treatment_value",
        "leads",
        ["clinic_id", "treatment_value"],
        postgresql_where=sa.text(VALUED),
        sqlite_where=sa.text(VALUED),
    )


def downgrade() -> None:
    op.drop_index("ix_leads_clinic_treatment_value", table_name="leads")
