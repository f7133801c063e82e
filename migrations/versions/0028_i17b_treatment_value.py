"""leads.treatment_value (the value a conversion records, for revenue and ROI per source) and
notification_preferences.summary_frequency (an admin's daily / weekly / off analytics summary)

Revision ID: 0028_i17b_treatment_value
Revises: 0027_i17a_outreach_limits
Create Date: 2026-11-23 09:10:00

Both nullable, no backfill: a lead converted before has no recorded value (revenue counts it as
"no value"); no preference means the default (rules.DEFAULT_SUMMARY_FREQUENCY).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028_i17b_treatment_value"
down_revision = "0027_i17a_outreach_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("leads", sa.Column("treatment_value", sa.Numeric(12, 2), nullable=True))
    op.create_index(
        "ix_leads_clinic_converted",
        "leads",
        ["clinic_id", "converted_at"],
        postgresql_where=sa.text("converted_at IS NOT NULL"),
        sqlite_where=sa.text("converted_at IS NOT NULL"),
    )
    op.add_column("notification_preferences", sa.Column("summary_frequency", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification_preferences") as batch:
        batch.drop_column("summary_frequency")
    op.drop_index("ix_leads_clinic_converted", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("treatment_value")
