"""leads: index the phone only where set, like phone_alt, email and the DOB digest

Before a table's first ANALYZE (a new database's first minute), PostgreSQL costed (clinic_id, phone)
the same as (clinic_id, created_at) and could pick the latter for the duplicate lookup's phone arm,
reading every lead of the clinic. The partial index is the cheaper one by the planner's own rules.

Revision ID: 0014_lead_phone_index
Revises: 0013_drain_index
Create Date: 2026-11-22 19:45:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0014_lead_phone_index"
down_revision = "0013_drain_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_leads_clinic_phone", table_name="leads")
    where = sa.text("phone IS NOT NULL")
    op.create_index(
        "ix_leads_clinic_phone", "leads", ["clinic_id", "phone"], postgresql_where=where, sqlite_where=where
    )


def downgrade() -> None:
    op.drop_index("ix_leads_clinic_phone", table_name="leads")
    op.create_index("ix_leads_clinic_phone", "leads", ["clinic_id", "phone"])
