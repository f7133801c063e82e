"""leads: fewer index entries per new lead: drop (clinic_id, created_at), which the analytics cohort
index already leads with; index phone_alt, email and the DOB digest only where set

Revision ID: 0012_lead_write_indexes
Revises: 0011_analytics_monthly
Create Date: 2026-11-22 10:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0012_lead_write_indexes"
down_revision = "0011_analytics_monthly"
branch_labels = None
depends_on = None

PARTIAL = {
    "ix_leads_clinic_phone_alt": "phone_alt",
    "ix_leads_clinic_email": "email",
    "ix_leads_clinic_dob_index": "patient_dob_index",
}


def upgrade() -> None:
    op.drop_index("ix_leads_clinic_created", table_name="leads")
    for name, column in PARTIAL.items():
        op.drop_index(name, table_name="leads")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "leads", ["clinic_id", column], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for name, column in PARTIAL.items():
        op.drop_index(name, table_name="leads")
        op.create_index(name, "leads", ["clinic_id", column])
    op.create_index("ix_leads_clinic_created", "leads", ["clinic_id", "created_at"])
